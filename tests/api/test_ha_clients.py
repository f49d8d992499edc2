"""Home Assistant's own client libraries against a real hub: hass-client (Python) and home-assistant-js-websocket
(run by node). They read every entity, list the registries, rename a device and move it to an area, and see
the ``*_registry_updated`` events, as they would against Home Assistant.

The JavaScript client is installed by ``scripts/setup-js-clients.sh`` (called from ``scripts/test.sh``) into
``.cache/js-clients``; without it the JS test is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hass_client import HomeAssistantClient

from .conftest import LIGHT, Env

ROOT = Path(__file__).resolve().parents[2]
JS_CLIENT = ROOT / "tests" / "clients" / "js" / "ha_client.cjs"
JS_MODULES = ROOT / ".cache" / "js-clients"


def _device_of(env: Env, entity_id: str) -> str:
    entity = env.hub.entities.get(entity_id)
    assert entity is not None and entity.device_id is not None
    return entity.device_id


async def test_hass_client_lists_renames_moves_and_hears_registry_events(env: Env) -> None:
    device_id = _device_of(env, LIGHT)
    async with HomeAssistantClient(env.ws_url, env.admin) as client:
        states = {s["entity_id"]: s for s in await client.get_states()}
        assert states.keys() == {s.entity_id for s in env.hub.states.all()}  # every demo entity
        areas = await client.get_area_registry()
        assert {a["area_id"] for a in areas} == {"living_room", "kitchen", "bedroom"}
        devices = {d["id"]: d for d in await client.get_device_registry()}
        assert devices[device_id]["name"] == "Ceiling Light"
        entities = {e["entity_id"]: e for e in await client.get_entity_registry()}
        assert entities.keys() == states.keys() and entities[LIGHT]["device_id"] == device_id
        entry = await client.get_entity_registry_entry(LIGHT)
        assert entry["entity_id"] == LIGHT and entry["platform"] == "qilu_hub"

        heard: dict[str, list[dict[str, Any]]] = {"area_registry_updated": [], "device_registry_updated": [],
                                                  "entity_registry_updated": []}
        all_heard = asyncio.Event()

        def listener(event: dict[str, Any]) -> None:
            heard[event["event_type"]].append(event["data"])
            if all(heard.values()):
                all_heard.set()

        for event_type in heard:
            await client.subscribe_events(listener, event_type)
        area = await client.send_command("config/area_registry/create", name="Reading Corner")
        updated = await client.send_command("config/device_registry/update", device_id=device_id,
                                            name_by_user="Lamp by the sofa", area_id=area["area_id"])
        assert (updated["name_by_user"], updated["area_id"]) == ("Lamp by the sofa", "reading_corner")
        entity = await client.send_command("config/entity_registry/update", entity_id=LIGHT, icon="mdi:lamp")
        assert entity["entity_entry"]["icon"] == "mdi:lamp"
        await asyncio.wait_for(all_heard.wait(), 5)
        assert heard["area_registry_updated"][0] == {"action": "create", "area_id": "reading_corner"}
        assert heard["device_registry_updated"][0] == {
            "action": "update", "device_id": device_id,
            "changes": {"name_by_user": None, "area_id": "living_room"}}
        assert heard["entity_registry_updated"][0] == {"action": "update", "entity_id": LIGHT,
                                                       "changes": {"icon": None}}
        # the hub acts on the move at once: the light is now reached through its new area
        await client.call_service("light", "turn_on", {"brightness": 10}, {"area_id": "reading_corner"})
        assert env.hub.states.get(LIGHT).value == "on"  # type: ignore[union-attr]


def _js_modules() -> Path:
    if not (JS_MODULES / "node_modules" / "home-assistant-js-websocket").is_dir() or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("the JS client is not installed: scripts/setup-js-clients.sh must run before the suite")
        pytest.skip("run scripts/setup-js-clients.sh to install home-assistant-js-websocket")
    return JS_MODULES


async def run_js_client(env: Env, modules: Path) -> dict[str, Any]:
    args = {"url": env.url, "token": env.admin, "light": LIGHT, "device_id": _device_of(env, LIGHT)}
    process = await asyncio.create_subprocess_exec(
        "node", str(JS_CLIENT), json.dumps(args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "QILU_JS_CLIENTS": str(modules)})
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)  # type: ignore[no-any-return]


async def test_home_assistant_js_websocket_lists_renames_moves_and_hears_events(env: Env) -> None:
    modules = _js_modules()
    device_id = _device_of(env, LIGHT)
    seen = await run_js_client(env, modules)
    assert seen["haVersion"] == "2024.3.3"
    assert seen["entities"].keys() == {s.entity_id for s in env.hub.states.all()}
    assert seen["brightness"] == 77  # callService, seen back through subscribeEntities
    assert {a["area_id"] for a in seen["areas"]} == {"living_room", "kitchen", "bedroom"}
    assert device_id in {d["id"] for d in seen["devices"]}
    assert {e["entity_id"] for e in seen["entityRegistry"]} == set(seen["entities"])
    assert seen["area"]["area_id"] == "reading_corner"
    assert (seen["updated"]["name_by_user"], seen["updated"]["area_id"]) == ("Lamp by the sofa", "reading_corner")
    device_event = seen["events"]["device_registry_updated"][0]
    assert device_event["event_type"] == "device_registry_updated"
    assert device_event["data"] == {"action": "update", "device_id": device_id,
                                    "changes": {"name_by_user": None, "area_id": "living_room"}}
    assert seen["events"]["area_registry_updated"][0]["data"] == {"action": "create", "area_id": "reading_corner"}
    device = env.hub.devices.get(device_id)
    assert device is not None and device.area_id == "reading_corner"


def _expected_presentation(env: Env) -> dict[str, dict[str, Any]]:
    """What HA would show for each entity: a friendly name always, unit and device class where known."""
    out: dict[str, dict[str, Any]] = {}
    for state in env.hub.states.all():
        entity = env.hub.entities.get(state.entity_id)
        assert entity is not None
        expected: dict[str, Any] = {}
        if entity.unit:
            expected["unit_of_measurement"] = entity.unit
        if entity.device_class:
            expected["device_class"] = entity.device_class
        out[state.entity_id] = expected
    return out


async def test_ha_clients_show_friendly_name_unit_and_device_class(env: Env) -> None:
    """Done-when of issue 17: both client libraries read every demo entity with its friendly name, unit and
    device class."""
    expected = _expected_presentation(env)
    async with HomeAssistantClient(env.ws_url, env.admin) as client:
        python_seen = {s["entity_id"]: s["attributes"] for s in await client.get_states()}
    views = {"hass-client": python_seen}
    if (JS_MODULES / "node_modules").is_dir() and shutil.which("node"):
        views["home-assistant-js-websocket"] = {
            k: v["attributes"] for k, v in (await run_js_client(env, JS_MODULES))["entities"].items()}
    for client_name, seen in views.items():
        for entity_id, wanted in expected.items():
            attributes = seen[entity_id]
            assert isinstance(attributes.get("friendly_name"), str) and attributes["friendly_name"], \
                (client_name, entity_id)
            for key, value in wanted.items():
                assert attributes.get(key) == value, (client_name, entity_id, key)
