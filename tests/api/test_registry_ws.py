"""Home Assistant's registry commands: shapes, edits that persist and reach subscribers, bad input, scoped tokens."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from qilu_hub import Scopes
from qilu_hub.api import LoginLimiter

from .conftest import LIGHT, Env, start_env

KITCHEN_MOTION = "binary_sensor.kitchen_motion"


class Ws:
    """A raw HA WebSocket client: ``call`` answers with the result message, events are kept per subscription."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: dict[int, list[dict[str, Any]]] = {}

    async def call(self, type_: str, **fields: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "type": type_, **fields})
        for _ in range(1000):
            msg = await asyncio.wait_for(self.ws.receive_json(), 5)
            if msg["type"] == "event":
                self.events.setdefault(msg["id"], []).append(msg["event"])
            elif msg["id"] == self.next_id:
                return msg  # type: ignore[no-any-return]
        raise AssertionError("no result")

    async def ok(self, type_: str, **fields: Any) -> Any:
        reply = await self.call(type_, **fields)
        assert reply["success"] is True, reply
        return reply["result"]

    async def error(self, type_: str, **fields: Any) -> str:
        reply = await self.call(type_, **fields)
        assert reply["success"] is False, reply
        assert reply["error"]["message"]
        return reply["error"]["code"]  # type: ignore[no-any-return]

    async def subscribe(self, event_type: str) -> int:
        await self.ok("subscribe_events", event_type=event_type)
        return self.next_id

    async def wait_events(self, sub_id: int, count: int) -> list[dict[str, Any]]:
        """The first ``count`` events of a subscription, reading on (with pings) until they are there."""
        for _ in range(50):
            if len(self.events.get(sub_id, [])) >= count:
                break
            await self.call("ping")
        return self.events.get(sub_id, [])[:count]


async def connect(env: Env, session: aiohttp.ClientSession, token: str) -> Ws:
    ws = await session.ws_connect(env.ws_url)
    assert (await ws.receive_json())["type"] == "auth_required"
    await ws.send_json({"type": "auth", "access_token": token})
    assert (await ws.receive_json())["type"] == "auth_ok"
    return Ws(ws)


def _device_of(env: Env, entity_id: str) -> str:
    entity = env.hub.entities.get(entity_id)
    assert entity is not None and entity.device_id is not None
    return entity.device_id


def _snapshot(env: Env) -> dict[str, Any]:
    store = env.hub.storage
    return {kind: store.load(kind) for kind in ("area", "device", "entity")}


async def test_listings_have_home_assistants_shapes(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session, env.admin)
    areas = await ws.ok("config/area_registry/list")
    assert {a["area_id"] for a in areas} == {"living_room", "kitchen", "bedroom"}
    assert set(areas[0]) == {"aliases", "area_id", "floor_id", "icon", "labels", "name", "picture"}
    devices = await ws.ok("config/device_registry/list")
    light = next(d for d in devices if d["id"] == _device_of(env, LIGHT))
    assert light["name"] == "Ceiling Light" and light["area_id"] == "living_room" and light["disabled_by"] is None
    assert {"config_entries", "connections", "identifiers", "name_by_user", "via_device_id", "entry_type"} <= set(light)
    entities = {e["entity_id"]: e for e in await ws.ok("config/entity_registry/list")}
    assert entities.keys() == {e.entity_id for e in env.hub.entities.all()}
    entry = entities[LIGHT]
    assert entry["platform"] == "qilu_hub" and entry["device_id"] == light["id"] and entry["name"] is None
    assert entry["original_name"] and entry["unique_id"] and entry["has_entity_name"] is True
    full = await ws.ok("config/entity_registry/get", entity_id=LIGHT)
    assert full["original_device_class"] == env.hub.entities.get(LIGHT).device_class  # type: ignore[union-attr]
    assert {"aliases", "capabilities", "options", "original_icon"} <= set(full)
    assert await ws.error("config/entity_registry/get", entity_id="light.nope") == "not_found"
    assert await ws.ok("config/floor_registry/list") == []


async def test_edits_persist_and_reach_subscribers(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    env = await start_env(tmp_path, login_limiter=LoginLimiter(max_failures=1000))
    light_device = _device_of(env, LIGHT)
    try:
        ws = await connect(env, session, env.admin)
        area_sub = await ws.subscribe("area_registry_updated")
        device_sub = await ws.subscribe("device_registry_updated")
        entity_sub = await ws.subscribe("entity_registry_updated")
        hall = await ws.ok("config/area_registry/create", name="Hallway", floor_id="Ground", icon="mdi:door")
        assert hall == {"aliases": [], "area_id": "hallway", "floor_id": "ground", "icon": "mdi:door", "labels": [],
                        "name": "Hallway", "picture": None}
        assert await ws.ok("config/floor_registry/list") == [
            {"aliases": [], "floor_id": "ground", "icon": None, "level": None, "name": "Ground"}]
        renamed = await ws.ok("config/area_registry/update", area_id="hallway", name="Entrance Hall")
        assert renamed["area_id"] == "hallway" and renamed["name"] == "Entrance Hall"
        device = await ws.ok("config/device_registry/update", device_id=light_device, name_by_user="Reading Lamp",
                             area_id="hallway")
        assert device["name_by_user"] == "Reading Lamp" and device["area_id"] == "hallway"
        updated = await ws.ok("config/entity_registry/update", entity_id=LIGHT, name="Lamp", icon="mdi:lamp")
        assert updated["entity_entry"]["name"] == "Lamp" and updated["entity_entry"]["icon"] == "mdi:lamp"
        # HA's event shapes: action + id, and for an update the old values of what changed
        area_events = await ws.wait_events(area_sub, 2)
        assert [e["data"] for e in area_events] == [{"action": "create", "area_id": "hallway"},
                                                   {"action": "update", "area_id": "hallway"}]
        assert area_events[0]["event_type"] == "area_registry_updated"
        device_events = await ws.wait_events(device_sub, 1)
        assert device_events[0]["data"] == {"action": "update", "device_id": light_device,
                                            "changes": {"name_by_user": None, "area_id": "living_room"}}
        entity_events = await ws.wait_events(entity_sub, 1)
        assert entity_events[0]["data"] == {"action": "update", "entity_id": LIGHT,
                                            "changes": {"name": None, "icon": None}}
        # the area follows the device for scope checks and service targets at once
        assert env.hub.area_of(LIGHT) == "hallway"
        # switching a device off switches its entities off (HA's disabled_by "device"), and back on
        await ws.ok("config/device_registry/update", device_id=light_device, disabled_by="user")
        assert env.hub.entities.get(LIGHT).disabled_by == "device"  # type: ignore[union-attr]
        await ws.ok("config/device_registry/update", device_id=light_device, disabled_by=None)
        assert env.hub.entities.get(LIGHT).disabled_by is None  # type: ignore[union-attr]
        await ws.ws.close()
    finally:
        await env.hub.async_stop()
    env = await start_env(tmp_path, login_limiter=LoginLimiter(max_failures=1000))  # the same directory again
    try:
        device_after = env.hub.devices.get(light_device)
        assert device_after is not None
        assert (device_after.name_by_user, device_after.area_id) == ("Reading Lamp", "hallway")
        area = env.hub.areas.get("hallway")
        assert area is not None and (area.name, area.icon) == ("Entrance Hall", "mdi:door")
        entity = env.hub.entities.get(LIGHT)
        assert entity is not None and (entity.name_by_user, entity.icon) == ("Lamp", "mdi:lamp")
        # an empty area can go; the event says so
        ws = await connect(env, session, env.admin)
        await ws.ok("config/device_registry/update", device_id=light_device, area_id=None)
        area_sub = await ws.subscribe("area_registry_updated")
        assert await ws.ok("config/area_registry/delete", area_id="hallway") == "success"
        assert (await ws.wait_events(area_sub, 1))[0]["data"] == {"action": "remove", "area_id": "hallway"}
        assert env.hub.areas.get("hallway") is None
        await ws.ws.close()
    finally:
        await env.hub.async_stop()


async def test_bad_input_gets_a_clear_error_and_changes_nothing(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session, env.admin)
    light_device = _device_of(env, LIGHT)
    before = _snapshot(env)
    refused = [
        ("config/area_registry/create", {}, "invalid_format"),
        ("config/area_registry/create", {"name": "Kitchen"}, "invalid_info"),  # the name is taken
        ("config/area_registry/create", {"name": " kitchen "}, "invalid_info"),
        ("config/area_registry/create", {"name": "x" * 101}, "invalid_format"),
        ("config/area_registry/create", {"name": "   "}, "invalid_format"),
        ("config/area_registry/create", {"name": "Bad\nName"}, "invalid_format"),
        ("config/area_registry/create", {"name": 5}, "invalid_format"),
        ("config/area_registry/create", {"name": "Attic", "icon": "<script>"}, "invalid_format"),
        ("config/area_registry/create", {"name": "Attic", "colour": "red"}, "invalid_format"),
        ("config/area_registry/create", {"name": "Attic", "aliases": ["loft"]}, "not_supported"),
        ("config/area_registry/update", {"area_id": "nope", "name": "X"}, "not_found"),
        ("config/area_registry/update", {"area_id": "kitchen", "name": "Living Room"}, "invalid_info"),
        ("config/area_registry/delete", {"area_id": "kitchen"}, "invalid_info"),  # in use
        ("config/area_registry/delete", {"area_id": "nope"}, "not_found"),
        ("config/area_registry/delete", {"area_id": ["kitchen"]}, "not_found"),
        ("config/device_registry/update", {"device_id": "nope", "name_by_user": "X"}, "not_found"),
        ("config/device_registry/update", {"device_id": light_device, "area_id": "nowhere"}, "not_found"),
        ("config/device_registry/update", {"device_id": light_device, "disabled_by": "integration"},
         "invalid_format"),
        ("config/device_registry/update", {"device_id": light_device, "name_by_user": ["x"]}, "invalid_format"),
        # one bad field refuses the whole edit: the good one beside it is not applied either
        ("config/device_registry/update", {"device_id": light_device, "name_by_user": "Fine", "area_id": 7},
         "not_found"),
        ("config/entity_registry/update", {"entity_id": "light.nope", "name": "X"}, "not_found"),
        ("config/entity_registry/update", {"entity_id": LIGHT, "name": "y" * 500}, "invalid_format"),
        ("config/entity_registry/update", {"entity_id": LIGHT, "new_entity_id": "light.x"}, "invalid_format"),
    ]
    for type_, fields, code in refused:
        assert await ws.error(type_, **fields) == code, (type_, fields)
    assert _snapshot(env) == before
    assert (await ws.call("ping"))["type"] == "pong"  # the connection is still serving
    await ws.ws.close()


async def test_scoped_tokens_see_and_change_only_their_scope(env: Env, session: aiohttp.ClientSession) -> None:
    kitchen_device, light_device = _device_of(env, KITCHEN_MOTION), _device_of(env, LIGHT)
    admin = await connect(env, session, env.admin)
    ws = await connect(env, session, env.kitchen)
    assert [a["area_id"] for a in await ws.ok("config/area_registry/list")] == ["kitchen"]
    assert [d["id"] for d in await ws.ok("config/device_registry/list")] == [kitchen_device]
    assert {e["entity_id"] for e in await ws.ok("config/entity_registry/list")} == {
        KITCHEN_MOTION, "sensor.kitchen_motion_battery"}
    device_sub = await ws.subscribe("device_registry_updated")
    area_sub = await ws.subscribe("area_registry_updated")
    before = _snapshot(env)
    # outside the scope looks exactly like missing; structure changes need admin
    assert await ws.error("config/device_registry/update", device_id=light_device, name_by_user="X") == "not_found"
    assert await ws.error("config/entity_registry/update", entity_id=LIGHT, name="X") == "not_found"
    assert await ws.error("config/entity_registry/get", entity_id=LIGHT) == "not_found"
    assert await ws.error("config/device_registry/update", device_id=kitchen_device,
                          area_id="living_room") == "unauthorized"  # out of its own sight
    assert await ws.error("config/device_registry/update", device_id=kitchen_device, area_id=None) == "unauthorized"
    assert await ws.error("config/area_registry/create", name="Attic") == "unauthorized"
    assert await ws.error("config/area_registry/delete", area_id="kitchen") == "unauthorized"
    assert await ws.error("config/area_registry/update", area_id="bedroom", name="X") == "not_found"
    assert _snapshot(env) == before
    # inside it: rename the device and the area
    await ws.ok("config/device_registry/update", device_id=kitchen_device, name_by_user="Pantry Sensor")
    await ws.ok("config/area_registry/update", area_id="kitchen", name="Cookhouse")
    # what happens elsewhere is not told to it
    await admin.ok("config/device_registry/update", device_id=light_device, name_by_user="Elsewhere")
    await admin.ok("config/area_registry/create", name="Attic")
    events = await ws.wait_events(device_sub, 1)
    await ws.call("ping")
    assert [e["data"]["device_id"] for e in ws.events[device_sub]] == [kitchen_device]
    assert events[0]["data"]["changes"] == {"name_by_user": None}
    assert [e["data"]["area_id"] for e in ws.events[area_sub]] == ["kitchen"]
    # read-only: sees, never changes
    _, viewer_kitchen = env.hub.tokens.create("kitchen viewer", Scopes(read_only=True, areas=frozenset({"kitchen"})))
    for token in (env.read_only, viewer_kitchen):
        ro = await connect(env, session, token)
        assert await ro.error("config/device_registry/update", device_id=kitchen_device,
                              name_by_user="Nope") == "unauthorized"
        assert await ro.error("config/entity_registry/update", entity_id=KITCHEN_MOTION, icon="mdi:x") == "unauthorized"
        assert await ro.error("config/area_registry/update", area_id="kitchen", name="Nope") == "unauthorized"
        await ro.ws.close()
    assert env.hub.devices.get(kitchen_device).name_by_user == "Pantry Sensor"  # type: ignore[union-attr]
    await ws.ws.close()
    await admin.ws.close()


async def test_session_commands_and_service_schemas(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session, env.admin)
    user = await ws.ok("auth/current_user")
    assert user["is_admin"] is True and user["name"] == "admin" and user["id"]
    panels = await ws.ok("get_panels")
    assert panels["qilu_hub"]["component_name"] == "iframe"
    services = await ws.ok("get_services")
    turn_on = services["light"]["turn_on"]
    # the whole light domain from the catalogue, with HA's selectors and targets
    assert {"brightness", "color_temp_kelvin", "rgb_color", "transition"} <= set(turn_on["fields"])
    assert turn_on["fields"]["brightness"]["selector"] == {"number": {"step": 1, "min": 0, "max": 255,
                                                                       "mode": "slider"}}
    assert turn_on["fields"]["rgb_color"]["selector"] == {"color_rgb": {}}
    assert turn_on["target"] == {"entity": [{"domain": ["light"]}]}
    assert services["climate"]["set_hvac_mode"]["fields"]["hvac_mode"]["selector"]["select"]["options"][0] == "off"
    assert services["climate"]["set_hvac_mode"]["fields"]["hvac_mode"]["required"] is True
    viewer = await connect(env, session, env.kitchen)
    assert (await viewer.ok("auth/current_user"))["is_admin"] is False
    # only the domains of its own entities (sensor and binary_sensor; binary sensors take no services)
    assert set(await viewer.ok("get_services")) == {"sensor", "homeassistant"}
    async with session.get(env.url + "/api/services", headers={"Authorization": f"Bearer {env.admin}"}) as resp:
        assert resp.status == 200
        listing = await resp.json()
    assert {item["domain"]: item["services"] for item in listing} == services
    async with session.get(env.url + "/api/services", headers={"Authorization": f"Bearer {env.kitchen}"}) as resp:
        assert "light" not in {item["domain"] for item in await resp.json()}
    await ws.ws.close()
    await viewer.ws.close()
