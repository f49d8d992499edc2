"""``qilu-hub area ...`` and ``qilu-hub device rename|move``: on a stopped hub's database, and through a running hub."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from qilu_hub import Hub
from qilu_hub.cli import main
from qilu_hub.config import load_config
from qilu_hub.const import CONFIG_FILE, REGISTRY_DB
from qilu_hub.storage import RegistryStore
from tests.api.conftest import LIGHT, start_env


async def _demo_registry(config_dir: Path) -> None:
    """A stopped hub's directory holding the demo's areas and devices."""
    env = await start_env(config_dir)
    await env.hub.async_stop()


def _stored(config_dir: Path) -> dict[str, dict[str, dict[str, object]]]:
    store = RegistryStore(config_dir / REGISTRY_DB)
    try:
        return {kind: store.load(kind) for kind in ("area", "device", "entity")}
    finally:
        store.close()


def _device_named(stored: dict[str, dict[str, dict[str, object]]], name: str) -> dict[str, object]:
    return next(d for d in stored["device"].values() if d["name"] == name)


async def test_offline_edits_the_stopped_hubs_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _demo_registry(tmp_path)
    config = ["--config", str(tmp_path)]

    def cli(*args: str) -> int:
        return main([*args, *config])  # global options after the subcommand work too

    assert cli("area", "add", "Hallway", "--floor", "Ground") == 0
    assert "added area Hallway (id hallway)" in capsys.readouterr().out
    assert cli("device", "rename", "ceil", "Reading Lamp") == 0  # a unique, case-insensitive prefix
    assert cli("device", "move", "Reading", "hallway") == 0  # the new name finds it as well
    assert "is now in area hallway" in capsys.readouterr().out
    assert cli("area", "rename", "Hallway", "Entrance") == 0
    assert cli("area", "list") == 0
    listing = capsys.readouterr().out
    assert "hallway" in listing and "Entrance" in listing and "Reading Lamp" in listing
    stored = _stored(tmp_path)
    lamp = _device_named(stored, "Ceiling Light")
    assert (lamp["name_by_user"], lamp["area_id"]) == ("Reading Lamp", "hallway")
    assert stored["area"]["hallway"]["name"] == "Entrance"
    # refusals: one line, exit 1, nothing changed
    before = _stored(tmp_path)
    for args, says in [
        (("area", "remove", "Entrance"), "in use by 1 device"),
        (("area", "add", "kitchen"), "already in use"),
        (("device", "move", "Reading", "Attic"), "no area 'Attic'"),
        (("device", "rename", "nothing like it", "X"), "no device"),
        (("device", "rename", "Reading", "x" * 101), "longer than 100"),
        (("area", "rename", "Entrance", "Bedroom"), "already in use"),
    ]:
        assert cli(*args) == 1, args
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    assert _stored(tmp_path) == before
    # two devices share the prefix: refused, naming both
    assert cli("device", "rename", "TV Plug", "Reading Plug") == 0
    assert cli("device", "rename", "Reading", "X") == 1
    err = capsys.readouterr().err
    assert "matches 2 devices" in err and "Reading Lamp" in err and "Reading Plug" in err
    assert cli("device", "move", "Reading Lamp", "--no-area") == 0 and cli("area", "remove", "Entrance") == 0
    assert "hallway" not in _stored(tmp_path)["area"]
    # an area configuration.yaml lists comes back at the next start: removing it says so
    (tmp_path / CONFIG_FILE).write_text("areas:\n  - name: Porch\n")
    assert cli("area", "add", "Porch") == 0 and cli("area", "remove", "porch") == 0
    assert "configuration.yaml lists this area" in capsys.readouterr().err
    # and the hub starting afterwards sees it all
    hub = Hub(tmp_path, load_config(tmp_path), recorder=False)
    entity = hub.entities.get(LIGHT)
    assert entity is not None and entity.device_id is not None
    device = hub.devices.get(entity.device_id)
    assert device is not None and device.name_by_user == "Reading Lamp" and device.area_id is None
    hub.storage.close()


async def test_running_hub_is_changed_through_its_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = await start_env(tmp_path)
    try:
        events: list[dict[str, object]] = []
        env.hub.bus.listen("device_registry_updated", lambda event: events.append(event.data))
        base = ["--config", str(tmp_path), "--hub", env.url]  # --hub belongs to area/device: after them
        # the CLI runs its own event loop: in a thread, beside the hub's
        without_token = await asyncio.to_thread(main, ["area", "add", "Attic", "--config", str(tmp_path)])
        assert without_token == 1
        assert "must go through it" in capsys.readouterr().err and env.hub.areas.get("attic") is None
        assert await asyncio.to_thread(main, ["area", "add", "Attic", *base, "--token", env.admin]) == 0
        assert env.hub.areas.get("attic") is not None  # the running hub has it at once
        code = await asyncio.to_thread(main, ["device", "move", "Ceiling Light", "Attic", *base,
                                                     "--token", env.admin])
        assert code == 0, capsys.readouterr().err
        assert env.hub.area_of(LIGHT) == "attic"
        assert events[-1]["changes"] == {"area_id": "living_room"}
        # a scoped token is held to its scope through the CLI too
        code = await asyncio.to_thread(main, ["device", "rename", "Ceiling", "X", *base, "--token", env.kitchen])
        assert code == 1 and "no device" in capsys.readouterr().err
        code = await asyncio.to_thread(main, ["area", "remove", "kitchen", *base, "--token", env.kitchen])
        assert code == 1 and "admin" in capsys.readouterr().err
        # without --hub, the address comes from the configuration the hub runs with (its port, loopback)
        (tmp_path / CONFIG_FILE).write_text(f"hub:\n  port: {env.api.port}\n")
        code = await asyncio.to_thread(main, ["area", "rename", "attic", "Loft", "--config", str(tmp_path),
                                              "--token", env.admin])
        assert code == 0, capsys.readouterr().err
        assert env.hub.areas.get("attic").name == "Loft"  # type: ignore[union-attr]
    finally:
        await env.hub.async_stop()
