"""Home Assistant's REST API: states, services, history, config, OpenAPI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import jsonschema

from .conftest import LIGHT, PLUG, THERMOSTAT, Env, bearer


async def test_states_and_config(env: Env, session: aiohttp.ClientSession) -> None:
    h = bearer(env.admin)
    async with session.get(env.url + "/api/", headers=h) as resp:
        assert await resp.json() == {"message": "API running."}
    async with session.get(env.url + "/api/states", headers=h) as resp:
        states = {s["entity_id"]: s for s in await resp.json()}
    assert states[THERMOSTAT]["state"] == "heat"
    assert states[THERMOSTAT]["attributes"]["temperature"] == 21.0
    assert states["sensor.kitchen_motion_battery"]["state"] == "93.0"  # HA states are strings
    async with session.get(env.url + f"/api/states/{LIGHT}", headers=h) as resp:
        assert (await resp.json())["entity_id"] == LIGHT
    async with session.get(env.url + "/api/states/light.none", headers=h) as resp:
        assert resp.status == 404 and await resp.json() == {"message": "Entity not found."}
    async with session.get(env.url + "/api/config", headers=h) as resp:
        assert (await resp.json())["state"] == "RUNNING"


async def test_scoped_rest(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.get(env.url + "/api/states", headers=bearer(env.kitchen)) as resp:
        assert {s["entity_id"] for s in await resp.json()} == {"binary_sensor.kitchen_motion",
                                                               "sensor.kitchen_motion_battery"}
    async with session.get(env.url + f"/api/states/{LIGHT}", headers=bearer(env.kitchen)) as resp:
        assert resp.status == 404
    async with session.post(env.url + "/api/services/switch/turn_on", headers=bearer(env.read_only),
                            json={"entity_id": PLUG}) as resp:
        assert resp.status == 403
    assert env.hub.states.get(PLUG).value == "off"  # type: ignore[union-attr]


async def test_service_call_returns_changed_states(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.post(env.url + "/api/services/switch/turn_on", headers=bearer(env.admin),
                            json={"entity_id": PLUG}) as resp:
        assert resp.status == 200
        changed = {s["entity_id"]: s["state"] for s in await resp.json()}
    assert changed[PLUG] == "on"
    assert float(changed["sensor.living_room_tv_plug_power"]) > 50  # the plug now draws power
    async with session.post(env.url + "/api/services/climate/set_temperature", headers=bearer(env.admin),
                            json={"entity_id": THERMOSTAT, "temperature": 23.5}) as resp:
        assert resp.status == 200
    assert env.hub.states.get(THERMOSTAT).attributes["temperature"] == 23.5  # type: ignore[union-attr]
    async with session.post(env.url + "/api/services/homeassistant/turn_off", headers=bearer(env.admin),
                            json={"area_id": "living_room"}) as resp:
        assert resp.status == 200
    assert env.hub.states.get(PLUG).value == "off"  # type: ignore[union-attr]


async def test_service_errors(env: Env, session: aiohttp.ClientSession) -> None:
    h = bearer(env.admin)
    cases = [
        ("/api/services/light/turn_on", b"not json", 400, "Data should be valid JSON."),
        ("/api/services/light/turn_on", b"[1]", 400, "Data should be a JSON object."),
        ("/api/services/light/warp", b'{"entity_id": "%s"}' % LIGHT.encode(), 404, "Service light.warp not found."),
        ("/api/services/light/turn_on", b"{}", 400, None),
        ("/api/services/light/turn_on", b'{"entity_id": "%s", "brightness": -1}' % LIGHT.encode(), 400, None),
        ("/api/services/switch/turn_on", b'{"entity_id": "%s"}' % LIGHT.encode(), 400, None),
    ]
    for path, body, status, message in cases:
        async with session.post(env.url + path, headers=h, data=body) as resp:
            assert resp.status == status, (path, body, await resp.text())
            data = await resp.json()
            assert data["message"]
            if message:
                assert data["message"] == message


async def test_history(env: Env, session: aiohttp.ClientSession) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    env.hub.states.async_set(PLUG, "on")
    env.hub.states.async_set(PLUG, "off")
    await asyncio.sleep(0.1)
    url = env.url + "/api/history/period/" + start.isoformat()
    async with session.get(url, headers=bearer(env.admin), params={"filter_entity_id": PLUG}) as resp:
        history = await resp.json()
    assert [s["state"] for s in history[0]] == ["off", "on", "off"]
    assert all(s["entity_id"] == PLUG for s in history[0])
    async with session.get(url, headers=bearer(env.admin),
                           params={"filter_entity_id": PLUG, "minimal_response": ""}) as resp:
        minimal = (await resp.json())[0]
    assert set(minimal[1]) == {"state", "last_changed"} and minimal[2]["entity_id"] == PLUG
    async with session.get(env.url + "/api/history/period", headers=bearer(env.kitchen)) as resp:
        seen = {s[0]["entity_id"] for s in await resp.json()}
    assert seen == {"binary_sensor.kitchen_motion", "sensor.kitchen_motion_battery"}
    async with session.get(env.url + "/api/history/period/yesterday", headers=bearer(env.admin)) as resp:
        assert resp.status == 400


async def test_openapi_document_is_valid_and_matches_routes(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.get(env.url + "/api/openapi.json", headers=bearer(env.admin)) as resp:
        doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    # Every path in the document exists, and every REST route is documented.
    app = env.api._runner.app  # type: ignore[union-attr]
    routes = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    rest_routes = {r for r in routes if r.startswith("/api/") and r not in {"/api/websocket", "/api/stream"}
                   and not r.startswith(("/api/dashboard", "/api/discovery"))}
    assert rest_routes == set(doc["paths"])
    async with session.get(env.url + "/api/states", headers=bearer(env.admin)) as resp:
        states = await resp.json()
    schema = {**doc["components"]["schemas"]["State"], "components": doc["components"]}
    for state in states:
        jsonschema.validate(state, schema)


async def test_scope_follows_a_device_moved_to_another_area(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.get(env.url + f"/api/states/{PLUG}", headers=bearer(env.kitchen)) as resp:
        assert resp.status == 404
    entity = env.hub.entities.get(PLUG)
    assert entity is not None and entity.device_id is not None
    env.hub.devices.async_update(entity.device_id, area_id="kitchen")
    async with session.get(env.url + f"/api/states/{PLUG}", headers=bearer(env.kitchen)) as resp:
        assert resp.status == 200
    async with session.post(env.url + "/api/services/switch/turn_on", headers=bearer(env.kitchen),
                            json={"entity_id": PLUG}) as resp:
        assert resp.status == 200
