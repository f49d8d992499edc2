"""An attacker's matrix over all three protocols: read-only and area tokens, every command they might try.

REST, Home Assistant WebSocket and the msgpack stream must agree: a read-only token changes nothing
anywhere; an area token sees and controls only its areas' entities and hears no events from the rest.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgpack

from qilu_hub.api.services import services_of

from .conftest import LIGHT, Env, bearer
from .test_dashboard import Inbox

KITCHEN = {"binary_sensor.kitchen_motion", "sensor.kitchen_motion_battery"}


def _snapshot(env: Env) -> dict[str, Any]:
    return {s.entity_id: (s.value, dict(s.attributes)) for s in env.hub.states.all()}


def _every_service_call(env: Env) -> list[tuple[str, str, str]]:
    """(domain, service, entity_id) for every service of every entity, as an admin sees them."""
    calls = []
    for entity in env.hub.entities.all():
        for service in entity.commands:
            calls.append((entity.domain, service, entity.entity_id))
        for service in ("turn_on", "turn_off", "toggle"):
            calls.append(("homeassistant", service, entity.entity_id))
    return calls


async def _ha(env: Env, session: aiohttp.ClientSession, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(env.ws_url)
    await ws.receive_json()
    await ws.send_json({"type": "auth", "access_token": token})
    assert (await ws.receive_json())["type"] == "auth_ok"
    return ws


async def _stream(env: Env, session: aiohttp.ClientSession, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(env.stream_url)
    await ws.send_bytes(msgpack.packb({"type": "auth", "access_token": token}))
    assert msgpack.unpackb(await ws.receive_bytes())["type"] == "auth_ok"
    return ws


async def test_read_only_token_changes_nothing_over_any_protocol(env: Env, session: aiohttp.ClientSession) -> None:
    calls = _every_service_call(env)
    assert len(calls) >= 20
    before = _snapshot(env)
    # REST
    for domain, service, entity_id in calls:
        async with session.post(f"{env.url}/api/services/{domain}/{service}", json={"entity_id": entity_id},
                                headers=bearer(env.read_only)) as resp:
            assert resp.status in (401, 403), (domain, service, resp.status)
    # Home Assistant WebSocket
    ws = await _ha(env, session, env.read_only)
    for i, (domain, service, entity_id) in enumerate(calls, start=1):
        await ws.send_json({"id": i, "type": "call_service", "domain": domain, "service": service,
                            "target": {"entity_id": entity_id}})
        reply = await ws.receive_json()
        assert reply["success"] is False and reply["error"]["code"] == "unauthorized", reply
    await ws.close()
    # msgpack stream
    stream = await _stream(env, session, env.read_only)
    for i, (_, service, entity_id) in enumerate(calls, start=1):
        await stream.send_bytes(msgpack.packb({"type": "call", "id": i, "entity_id": entity_id, "command": service}))
        reply = msgpack.unpackb(await stream.receive_bytes())
        assert reply["success"] is False and reply["error"]["code"] == "unauthorized", reply
    await stream.close()
    await asyncio.sleep(0.05)
    assert _snapshot(env) == before


async def test_area_token_is_confined_to_its_area_over_every_protocol(
        env: Env, session: aiohttp.ClientSession) -> None:
    outside = [e for e in env.hub.entities.all() if e.entity_id not in KITCHEN]
    assert outside and {e.entity_id for e in env.hub.entities.all()} >= KITCHEN
    # REST: listing, single state, history, registry, services
    async with session.get(f"{env.url}/api/states", headers=bearer(env.kitchen)) as resp:
        assert {s["entity_id"] for s in await resp.json()} == KITCHEN
    for entity in outside:
        async with session.get(f"{env.url}/api/states/{entity.entity_id}", headers=bearer(env.kitchen)) as resp:
            assert resp.status == 404, entity.entity_id
    async with session.get(f"{env.url}/api/history/period", params={"filter_entity_id": LIGHT},
                           headers=bearer(env.kitchen)) as resp:
        body = await resp.json() if resp.status == 200 else []
        assert all(s["entity_id"] in KITCHEN for series in body for s in series)
    async with session.get(f"{env.url}/api/dashboard/registry", headers=bearer(env.kitchen)) as resp:
        text = await resp.text()
        assert LIGHT not in text
    before = _snapshot(env)
    for entity in outside:
        for service in entity.commands:
            async with session.post(f"{env.url}/api/services/{entity.domain}/{service}",
                                    json={"entity_id": entity.entity_id}, headers=bearer(env.kitchen)) as resp:
                assert resp.status in (403, 404), (entity.entity_id, service, resp.status)
        async with session.post(f"{env.url}/api/services/homeassistant/turn_on",
                                json={"area_id": entity.area_id or "living_room"},
                                headers=bearer(env.kitchen)) as resp:
            assert resp.status in (200, 403, 404)
    assert _snapshot(env) == before
    # Home Assistant WebSocket: listings, services, calls, and no events from outside
    ws = await _ha(env, session, env.kitchen)
    await ws.send_json({"id": 1, "type": "get_states"})
    assert {s["entity_id"] for s in (await ws.receive_json())["result"]} == KITCHEN
    await ws.send_json({"id": 2, "type": "config/entity_registry/list"})
    assert {e["entity_id"] for e in (await ws.receive_json())["result"]} == KITCHEN
    await ws.send_json({"id": 3, "type": "get_services"})
    services = (await ws.receive_json())["result"]
    assert services == services_of(env.hub, env.api.principal_for(env.kitchen))
    msg_id = 3
    for entity in outside:
        for service in entity.commands:
            msg_id += 1
            await ws.send_json({"id": msg_id, "type": "call_service", "domain": entity.domain, "service": service,
                                "target": {"entity_id": entity.entity_id}})
            reply = await ws.receive_json()
            assert reply["success"] is False, (entity.entity_id, service, reply)
    assert _snapshot(env) == before
    await ws.send_json({"id": msg_id + 1, "type": "subscribe_events", "event_type": "state_changed"})
    await ws.receive_json()
    # Stream: snapshot, calls, deltas
    stream = await _stream(env, session, env.kitchen)
    await stream.send_bytes(msgpack.packb({"type": "subscribe", "id": "all"}))
    snapshot = msgpack.unpackb(await stream.receive_bytes())
    assert set(snapshot["states"]) == KITCHEN
    controllable = [e for e in outside if e.commands]
    assert controllable
    for i, entity in enumerate(controllable, start=1):
        command = next(iter(entity.commands))
        await stream.send_bytes(msgpack.packb({"type": "call", "id": i, "entity_id": entity.entity_id,
                                               "command": command}))
        reply = msgpack.unpackb(await stream.receive_bytes())
        assert reply["success"] is False and reply["error"]["code"] in ("not_found", "unauthorized"), reply
    assert _snapshot(env) == before
    # An admin changes something outside the area, then something inside: only the inside change arrives.
    await env.hub.commands.async_call(LIGHT, "toggle", {})
    env.hub.states.async_set("sensor.kitchen_motion_battery", 42)
    event = await ws.receive_json()
    assert event["event"]["data"]["entity_id"] == "sensor.kitchen_motion_battery"
    delta = msgpack.unpackb(await stream.receive_bytes())
    assert set(delta["states"]) == {"sensor.kitchen_motion_battery"}
    await ws.close()
    await stream.close()


async def test_inbox_is_for_admins_only(env: Env, session: aiohttp.ClientSession) -> None:
    env.hub.components["discovery"] = Inbox()
    async with session.get(f"{env.url}/api/discovery", headers=bearer(env.admin)) as resp:
        assert (await resp.json())["entries"]
    for token in (env.read_only, env.kitchen):
        # Listing unadopted appliances would map the whole house for a guest's area token.
        async with session.get(f"{env.url}/api/discovery", headers=bearer(token)) as resp:
            assert resp.status == 200 and (await resp.json())["entries"] == []
        for action in ("adopt", "ignore", "unignore"):
            async with session.post(f"{env.url}/api/discovery/some-key/{action}", headers=bearer(token)) as resp:
                assert resp.status == 403, (action, resp.status)
