"""Scene files: schema, line-numbered errors, hub checks, triggers and activation."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from qilu_hub.capabilities import CommandError
from qilu_hub.scenes import (
    EVENT_SCENE_RECOGNIZED,
    FixedEntityCatalog,
    SceneError,
    SceneManager,
    SituationGate,
    load_scene_file,
    next_fire,
    parse_scene_text,
    schema,
)
from qilu_hub.scenes.model import ScheduleTrigger, SituationTrigger

ROOT = Path(__file__).resolve().parents[2]
LIGHT = {"turn_on", "turn_off", "toggle"}
CATALOG = FixedEntityCatalog(
    {
        "light.living_room": LIGHT,
        "light.kitchen": LIGHT,
        "light.living_room_ceiling_light": LIGHT,
        "switch.living_room_tv_plug": LIGHT,
        "sensor.living_room_tv_plug_power": set(),
        "climate.bedroom_thermostat": {"set_temperature", "set_hvac_mode", "turn_on", "turn_off"},
    }
)


def test_schema_is_valid_and_shipped_in_the_package() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert json.loads((ROOT / "scenes" / "schema.json").read_text()) == schema()


def test_every_example_scene_validates() -> None:
    examples = sorted((ROOT / "scenes" / "examples").glob("*.yaml"))
    assert examples
    for f in examples:
        sf = load_scene_file(f, CATALOG)
        assert sf.home_scenes or sf.immersive_scenes


def test_example_content() -> None:
    sf = load_scene_file(ROOT / "scenes" / "examples" / "living_room.yaml", CATALOG)
    movie = sf.home("movie_night")
    assert [(t.entity_id, t.call.command, t.call.args) for t in movie.targets] == [
        ("light.living_room_ceiling_light", "turn_on", {"brightness": 40}),
        ("switch.living_room_tv_plug", "turn_on", {}),
    ]
    assert movie.schedules[0].days == frozenset({4, 5}) and movie.situations[0].cooldown == 900
    vr = sf.immersive("living_room_vr")
    assert vr.panels[0].entities == (
        "light.living_room_ceiling_light",
        "switch.living_room_tv_plug",
        "sensor.living_room_tv_plug_power",
    )
    assert vr.panels[1].placement.relative_to == "area" and vr.panels[1].placement.yaw_deg == -30


def _issues(text: str, catalog: Any = CATALOG) -> list[str]:
    with pytest.raises(SceneError) as e:
        parse_scene_text(text, "f.yaml", catalog)
    return [str(i) for i in e.value.issues]


BASE = """\
version: 1
home_scenes:
  - name: evening
    targets:
      light.living_room: turn_on
immersive_scenes:
  - name: vr
    panels:
      - id: p
        placement: {relative_to: stage}
        controls:
          - {type: toggle, entity: light.kitchen}
"""


def test_unknown_entity_and_impossible_command_point_at_their_lines() -> None:
    bad = BASE.replace("light.living_room: turn_on", "light.living_room: set_temperature").replace(
        "entity: light.kitchen", "entity: light.garage"
    )
    assert _issues(bad) == [
        "f.yaml:5: light.living_room does not accept command 'set_temperature' (accepts: toggle, turn_off, turn_on)",
        "f.yaml:12: unknown entity 'light.garage'",
    ]


def test_binding_to_a_command_the_entity_lacks_is_refused() -> None:
    cat = FixedEntityCatalog({"light.living_room": LIGHT, "light.kitchen": {"turn_on", "turn_off"}})
    assert _issues(BASE, cat) == [
        "f.yaml:12: light.kitchen does not accept command 'toggle' (accepts: turn_off, turn_on)"
    ]


def test_schema_errors_have_lines() -> None:
    assert _issues(BASE.replace("relative_to: stage", "relative_to: moon")) == [
        "f.yaml:10: immersive_scenes/0/panels/0/placement/relative_to: 'moon' is not one of "
        "['device', 'area', 'anchor', 'stage']"
    ]
    issues = _issues(BASE.replace("placement: {relative_to: stage}", "placement: {relative_to: device}"))
    assert issues[0].startswith("f.yaml:10:") and "'ref' is a required property" in issues[0]
    assert _issues(BASE.replace("version: 1", "version: 2"))[0].startswith("f.yaml:1:")


def test_yaml_syntax_and_duplicate_keys() -> None:
    assert _issues("version: 1\nhome_scenes: [\n")[0].startswith("f.yaml:3: YAML")
    dup = BASE.replace(
        "      light.living_room: turn_on",
        "      light.living_room: turn_on\n      light.living_room: toggle",
    )
    assert _issues(dup)[0].startswith("f.yaml:6: YAML: duplicate key")


def test_semantic_rules_without_catalog() -> None:
    text = BASE.replace(
        "{type: toggle, entity: light.kitchen}",
        "{type: button, entity: light.kitchen}\n          - {type: slider, entity: light.kitchen}",
    )
    assert _issues(text, None) == [
        "f.yaml:12: a button needs a 'select' command binding",
        "f.yaml:13: a slider needs 'attribute' (the argument it sets, e.g. brightness)",
    ]
    dup = BASE + BASE.split("immersive_scenes:\n")[1]
    assert "duplicate scene name 'vr'" in _issues(dup, None)[0]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match="cannot read"):
        load_scene_file(tmp_path / "missing.yaml")


def test_trigger_event_and_labels_match_the_recognizer() -> None:
    from qilu_hub.recognition import component
    from qilu_hub.recognition.mapping import SCENES

    assert component.EVENT_SCENE_RECOGNIZED is EVENT_SCENE_RECOGNIZED  # one constant, shared
    sf = load_scene_file(ROOT / "scenes" / "examples" / "living_room.yaml", CATALOG)
    assert {t.label for s in sf.home_scenes for t in s.situations} <= set(SCENES)


def test_situation_gate_threshold_and_cooldown() -> None:
    now = [100.0]
    gate = SituationGate(SituationTrigger("movie", 0.8, 60), clock=lambda: now[0])
    assert not gate.offer("movie", 0.79)
    assert not gate.offer("cooking", 0.99)
    assert gate.offer("movie", 0.9)
    now[0] += 59
    assert not gate.offer("movie", 0.95)
    now[0] += 1
    assert gate.offer("movie", 0.95)


def test_next_fire_respects_days() -> None:
    tz = dt.UTC
    fri_2200 = dt.datetime(2026, 11, 27, 22, 0, tzinfo=tz)  # a Friday
    t = ScheduleTrigger(21, 30, frozenset({4, 5}))
    assert next_fire(fri_2200, t) == dt.datetime(2026, 11, 28, 21, 30, tzinfo=tz)
    assert next_fire(dt.datetime(2026, 11, 28, 22, 0, tzinfo=tz), t) == dt.datetime(2026, 12, 4, 21, 30, tzinfo=tz)
    assert next_fire(fri_2200, ScheduleTrigger(23, 0, None)) == dt.datetime(2026, 11, 27, 23, 0, tzinfo=tz)


async def test_manager_against_the_real_hub_with_virtual_appliances(tmp_path: Path) -> None:
    """The example file validates against `qilu-hub demo`'s appliances; the hub's own command validation
    refuses bad arguments at load time; a recognised situation on the hub's bus activates the scene."""
    from qilu_hub import Hub
    from qilu_hub.virtual import VirtualAppliances

    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "example.yaml").write_text((ROOT / "scenes" / "examples" / "living_room.yaml").read_text())
    (tmp_path / "scenes" / "bad.yaml").write_text(
        "version: 1\nhome_scenes:\n  - name: too_bright\n    targets:\n"
        "      light.living_room_ceiling_light: {command: turn_on, args: {brightness: 999}}\n"
    )
    hub = Hub(tmp_path / "config", {}, recorder=False)
    hub.add_component(VirtualAppliances(animate=False))
    mgr = SceneManager([tmp_path / "scenes"])
    hub.add_component(mgr)
    await hub.async_start()
    try:
        assert sorted(mgr.scenes) == ["good_night", "movie_night"]
        (err,) = mgr.errors
        assert "bad.yaml:5: light.living_room_ceiling_light.turn_on:" in str(err) and "brightness" in str(err)
        res = await mgr.async_activate("good_night")
        assert not res.failed
        assert hub.states.get("climate.bedroom_thermostat").attributes["temperature"] == 18
        # Each home scene is an entity any API can activate, like Home Assistant's scene.turn_on.
        assert hub.entities.get("scene.good_night") is not None
        hub.states.async_set("climate.bedroom_thermostat", "heat", {"temperature": 21.0})
        await hub.commands.async_call("scene.good_night", "turn_on")
        assert hub.states.get("climate.bedroom_thermostat").attributes["temperature"] == 18
        assert hub.states.get("scene.good_night").value.startswith("20")  # ISO time of the activation
        hub.bus.fire(EVENT_SCENE_RECOGNIZED, {"label": "relaxing", "confidence": 0.93, "probabilities": {}})
        hub.bus.fire(EVENT_SCENE_RECOGNIZED, {"label": "relaxing", "confidence": 0.95, "probabilities": {}})
        while hub.states.get("switch.living_room_tv_plug").value != "on":
            await asyncio.sleep(0.01)  # bounded by the suite's timeout
        assert hub.states.get("light.living_room_ceiling_light").attributes["brightness"] == 40
        await asyncio.sleep(0.05)
        # The second recognition fell inside the cooldown, and finished activations are dropped.
        assert [t for t in mgr._tasks if "_activate_logged" in repr(t.get_coro())] == []
    finally:
        await hub.async_stop()


async def test_a_file_waiting_for_an_appliance_loads_when_it_is_adopted(tmp_path: Path) -> None:
    """Appliances are discovered after start: a file refused only for unknown entities is retried when they
    appear (once per burst); a file whose other mistakes only show once the entity is known is then refused."""
    from qilu_hub import Hub

    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "later.yaml").write_text(
        "version: 1\nhome_scenes:\n  - name: porch_on\n    targets:\n"
        "      light.porch_lamp: {command: turn_on}\n"
    )
    (tmp_path / "scenes" / "wrong.yaml").write_text(
        "version: 1\nhome_scenes:\n  - name: nonsense\n    targets:\n"
        "      light.porch_lamp: {command: fly}\n"
    )
    hub = Hub(tmp_path / "config", {}, recorder=False)
    mgr = SceneManager([tmp_path / "scenes"])
    mgr.retry_delay = 0.01
    hub.add_component(mgr)
    await hub.async_start()
    try:
        assert mgr.scenes == {} and hub.entities.get("scene.porch_on") is None
        assert sorted(p.name for p in mgr.pending) == ["later.yaml", "wrong.yaml"] and mgr.errors == []
        assert "later.yaml:5: unknown entity 'light.porch_lamp'" in str(mgr.pending[tmp_path / "scenes" / "later.yaml"])

        calls: list[str] = []

        async def lamp(entity: Any, command: str, args: dict[str, Any], context: Any) -> None:
            calls.append(command)

        entity = hub.entities.async_get_or_create(unique_id="porch-lamp", capabilities=("on_off", "level"),
                                                  name="porch lamp")
        assert entity.entity_id == "light.porch_lamp"
        hub.commands.register_entity(entity.entity_id, lamp)
        while "porch_on" not in mgr.scenes:
            await asyncio.sleep(0.01)  # bounded by the suite's timeout
        assert mgr.pending == {}
        assert hub.entities.get("scene.porch_on") is not None  # activatable from every API now
        await hub.commands.async_call("scene.porch_on", "turn_on")
        assert calls == ["turn_on"]
        # Retried too, the other file now shows its real mistake and is refused for it, no longer pending.
        (err,) = mgr.errors
        assert "wrong.yaml:5: light.porch_lamp does not accept command 'fly'" in str(err)
        assert "nonsense" not in mgr.scenes
    finally:
        await hub.async_stop()


async def test_from_config_defaults_to_the_config_dir_and_tolerates_its_absence(tmp_path: Path) -> None:
    from qilu_hub import Hub
    from qilu_hub.scenes import from_config
    from qilu_hub.virtual import VirtualAppliances

    hub = Hub(tmp_path / "config", {}, recorder=False)
    hub.add_component(VirtualAppliances(animate=False))
    await hub.async_start()
    try:
        mgr = from_config(tmp_path, {})
        mgr.load(hub)  # no scenes/ folder yet: nothing loaded, nothing refused
        assert mgr.scenes == {} and mgr.errors == []
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "a.yaml").write_text((ROOT / "scenes" / "examples" / "living_room.yaml").read_text())
        mgr = from_config(tmp_path, {"scenes": {"paths": ["mine"]}})
        mgr.load(hub)
        assert sorted(mgr.scenes) == ["good_night", "movie_night"]
    finally:
        await hub.async_stop()


def test_configuration_yaml_scenes_section(tmp_path: Path) -> None:
    import qilu_hub.scenes.settings  # noqa: F401
    from qilu_hub.config import ConfigError, load_config
    from qilu_hub.scenes import from_config

    (tmp_path / "configuration.yaml").write_text("scenes:\n  paths: [mine, /srv/scenes]\n")
    config = load_config(tmp_path)
    assert config["scenes"]["paths"] == ["mine", "/srv/scenes"]
    assert [str(p) for p in from_config(tmp_path, config)._paths] == [str(tmp_path / "mine"), "/srv/scenes"]
    (tmp_path / "configuration.yaml").write_text("scenes:\n  paths: mine\n")
    with pytest.raises(ConfigError):
        load_config(tmp_path)


def _write(path: Path, text: str) -> None:
    """As an editor that saves by rename does: the watcher never reads half a file (in-place writes are also
    fine, a half-read file is refused and read again, but the waits below would then have more to sort out)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


async def _until(predicate: Any, what: str) -> None:
    """Wait for the watcher; the bound only ends a broken run, it asserts nothing about speed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20.0
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not reached: {what}")
        await asyncio.sleep(0.02)


async def test_home_scenes_follow_their_file_while_the_hub_runs(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Home scenes reload when their file changes, as immersive ones do: an edited target, a new scene and a gone
    one reach the scene.* entities and triggers without a restart; a broken edit is logged and listed in errors and
    changes nothing (not even the part of it that was valid); a scene name another file has refuses the newcomer."""
    from qilu_hub import Hub
    from qilu_hub.virtual import VirtualAppliances

    light = "light.living_room_ceiling_light"
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    a = scenes / "a.yaml"

    def home(*blocks: str) -> str:
        return "version: 1\nhome_scenes:\n" + "".join(blocks)

    def evening(brightness: int, label: str = "relaxing", command: str = "turn_on") -> str:
        return (f"  - name: evening\n    targets:\n"
                f"      {light}: {{command: {command}, args: {{brightness: {brightness}}}}}\n"
                f"    triggers:\n      - situation: {{label: {label}, min_confidence: 0.5, cooldown: 0}}\n")

    late = f"  - name: late\n    targets:\n      {light}: turn_off\n"
    _write(a, home(evening(40)))
    hub = Hub(tmp_path / "config", {}, recorder=False)
    hub.add_component(VirtualAppliances(animate=False))
    mgr = SceneManager([scenes], watch_interval=0.02)
    hub.add_component(mgr)
    await hub.async_start()

    def brightness() -> Any:
        return hub.states.get(light).attributes.get("brightness")

    def recognised(label: str) -> None:
        hub.bus.fire(EVENT_SCENE_RECOGNIZED, {"label": label, "confidence": 0.9, "probabilities": {}})

    try:
        await hub.commands.async_call("scene.evening", "turn_on")
        assert brightness() == 40

        # Edited target and trigger, and a new scene: all live, through the entity and the situation trigger.
        _write(a, home(evening(120, label="reading"), late))
        await _until(lambda: hub.entities.get("scene.late") is not None, "the new scene's entity")
        await hub.commands.async_call("scene.evening", "turn_on")
        assert brightness() == 120
        await hub.commands.async_call("scene.late", "turn_on")
        assert hub.states.get(light).value == "off"
        recognised("reading")
        await _until(lambda: brightness() == 120, "the edited situation trigger")

        # A broken edit (one target's command does not exist) that also adds a scene: refused whole.
        with caplog.at_level(logging.ERROR, logger="qilu_hub.scenes.manager"):
            _write(a, home(evening(200, command="fly"), late, "  - name: ghost\n    targets:\n"
                                                               f"      {light}: turn_on\n"))
            await _until(lambda: any("does not accept command 'fly'" in str(e) for e in mgr.errors),
                         "the broken edit refused")
        (err,) = mgr.errors
        assert "a.yaml:5:" in str(err)
        assert any("last good scenes keep working: evening, late" in r.getMessage() and "a.yaml:5:" in r.getMessage()
                   for r in caplog.records)
        assert "ghost" not in mgr.scenes and hub.entities.get("scene.ghost") is None
        await hub.commands.async_call("scene.late", "turn_on")
        await hub.commands.async_call("scene.evening", "turn_on")
        assert brightness() == 120  # the last good version, not the edit's 200

        # Fixed, with `late` deleted: its entity goes from every API; the error is gone too.
        _write(a, home(evening(80)))
        await _until(lambda: hub.entities.get("scene.late") is None, "the deleted scene's entity gone")
        assert mgr.errors == [] and sorted(mgr.scenes) == ["evening"] and hub.states.get("scene.late") is None
        with pytest.raises(CommandError):
            await hub.commands.async_call("scene.late", "turn_on")
        await hub.commands.async_call("scene.evening", "turn_on")
        assert brightness() == 80

        # Another file may not take a name this one has: the newcomer is refused, naming the owner.
        b = scenes / "b.yaml"
        _write(b, home(evening(10), late))
        await _until(lambda: mgr.errors != [], "the name clash refused")
        assert "b.yaml:3: scene name 'evening' is already used in" in str(mgr.errors[0]) and "a.yaml" in str(
            mgr.errors[0])
        assert hub.entities.get("scene.late") is None  # nothing of b.yaml was taken
        # The scene moved to b.yaml, and a.yaml saved without it afterwards: b.yaml is read again and taken.
        _write(a, home(late.replace("late", "morning")))
        await _until(lambda: hub.entities.get("scene.late") is not None, "b.yaml taken once the name is free")
        assert mgr.errors == [] and sorted(mgr.scenes) == ["evening", "late", "morning"]
        await hub.commands.async_call("scene.evening", "turn_on")
        assert brightness() == 10  # b.yaml's version
        # Deleted, a file's scenes go with it.
        b.unlink()
        a.unlink()
        await _until(lambda: hub.entities.get("scene.evening") is None, "the deleted file's scene gone")
        assert mgr.scenes == {} and mgr.errors == [] and hub.entities.get("scene.morning") is None
    finally:
        await hub.async_stop()
