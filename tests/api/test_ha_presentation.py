"""Every API serves states as Home Assistant shows them (friendly name, unit, classes), and a renamed device's new
name reaches subscribers at once: REST, subscribe_entities (hass-client) and the msgpack stream."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from hass_client import HomeAssistantClient

from .conftest import LIGHT, Env, bearer
from .test_stream import connect, recv, send

BATTERY = "sensor.kitchen_motion_battery"
MOTION = "binary_sensor.kitchen_motion"


async def test_every_api_shows_names_units_and_classes(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{env.url}/api/states", headers=bearer(env.admin)) as resp:
        states = {s["entity_id"]: s["attributes"] for s in await resp.json()}
    assert all(attributes.get("friendly_name") for attributes in states.values())
    assert states[BATTERY] | {"friendly_name": "Kitchen Motion Battery", "unit_of_measurement": "%",
                              "device_class": "battery", "state_class": "measurement"} == states[BATTERY]
    assert states[MOTION]["friendly_name"] == "Kitchen Motion"  # the motion sensor's main feature: its name alone
    assert states[LIGHT]["supported_color_modes"] == ["color_temp"] and states[LIGHT]["color_mode"] is None

    ws = await connect(env, session)
    await send(ws, {"type": "subscribe", "id": 1, "entities": [BATTERY]})
    snapshot = await recv(ws)
    assert snapshot["states"][BATTERY]["a"]["unit_of_measurement"] == "%"
    await ws.close()


async def test_a_device_rename_reaches_subscribers(env: Env) -> None:
    changes: list[dict[str, Any]] = []
    changed = asyncio.Event()

    def on_update(event: dict[str, Any]) -> None:
        if "c" in event:
            changes.append(event["c"])
            changed.set()

    device_id = env.hub.entities.get(BATTERY).device_id  # type: ignore[union-attr]
    assert device_id is not None
    async with HomeAssistantClient(env.ws_url, env.admin) as client:
        await client.subscribe_entities(on_update, [BATTERY])
        env.hub.devices.async_update(device_id, name_by_user="Hall Motion")
        await asyncio.wait_for(changed.wait(), 5)
        states = {s["entity_id"]: s for s in await client.get_states()}
    assert changes[0][BATTERY]["+"]["a"] == {"friendly_name": "Hall Motion Battery"}
    assert states[BATTERY]["attributes"]["friendly_name"] == "Hall Motion Battery"
    assert states[MOTION]["attributes"]["friendly_name"] == "Hall Motion"
