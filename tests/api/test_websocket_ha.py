"""The Home Assistant WebSocket protocol, driven by a real client library (hass-client) and raw frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import pytest
from hass_client import HomeAssistantClient
from hass_client.exceptions import AuthenticationFailed, FailedCommand

from .conftest import LIGHT, PLUG, THERMOSTAT, Env


async def test_hass_client_reads_subscribes_and_calls(env: Env) -> None:
    async with HomeAssistantClient(env.ws_url, env.admin) as client:
        assert client.version == "2024.3.3"
        states = {s["entity_id"]: s for s in await client.get_states()}
        assert states[LIGHT]["state"] == "off"
        assert states[LIGHT]["last_changed"].endswith("+00:00")
        config = await client.get_config()
        assert config["location_name"] == "Home" and "api" in config["components"]
        services = await client.get_services()
        assert "brightness" in services["light"]["turn_on"]["fields"]
        assert services["climate"]["set_temperature"]["fields"]["temperature"]["required"] is True

        events: list[dict[str, Any]] = []
        got = asyncio.Event()

        def on_event(event: dict[str, Any]) -> None:
            events.append(event)
            if event["data"]["entity_id"] == LIGHT:
                got.set()

        unsubscribe = await client.subscribe_events(on_event, "state_changed")
        result = await client.call_service("light", "turn_on", {"brightness": 128}, {"entity_id": LIGHT})
        assert result["context"]["id"]
        await asyncio.wait_for(got.wait(), 5)
        event = next(e for e in events if e["data"]["entity_id"] == LIGHT)
        assert event["event_type"] == "state_changed"
        assert event["data"]["old_state"]["state"] == "off"
        assert event["data"]["new_state"]["state"] == "on"
        assert event["data"]["new_state"]["attributes"]["brightness"] == 128
        assert env.hub.states.get(LIGHT).value == "on"  # type: ignore[union-attr]
        unsubscribe()
        await asyncio.sleep(0.1)
        assert env.api.ha_fanout._events == {}  # unsubscribe_events removed the bus listener's subscriber

        with pytest.raises(FailedCommand, match="not found"):
            await client.call_service("light", "explode", {}, {"entity_id": LIGHT})
        with pytest.raises(FailedCommand, match="outside"):
            await client.call_service("climate", "set_temperature", {"temperature": 99}, {"entity_id": THERMOSTAT})


async def test_hass_client_subscribe_entities(env: Env) -> None:
    updates: list[dict[str, Any]] = []
    changed = asyncio.Event()

    def on_update(event: dict[str, Any]) -> None:
        updates.append(event)
        if "c" in event:
            changed.set()

    async with HomeAssistantClient(env.ws_url, env.admin) as client:
        await client.subscribe_entities(on_update, [PLUG])
        await client.call_service("switch", "toggle", target={"entity_id": PLUG})
        await asyncio.wait_for(changed.wait(), 5)
    assert updates[0]["a"][PLUG]["s"] == "off"
    assert set(updates[0]["a"]) == {PLUG}
    change = next(u for u in updates if "c" in u)["c"][PLUG]
    assert change["+"]["s"] == "on"
    assert "lc" in change["+"]


async def test_hass_client_bad_token(env: Env) -> None:
    client = HomeAssistantClient(env.ws_url, "qh_wrong")
    with pytest.raises(AuthenticationFailed, match="Invalid access token"):
        await client.connect()
    await client.disconnect()


async def _raw(env: Env, session: aiohttp.ClientSession, token: str | None = None) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(env.ws_url)
    assert (await ws.receive_json())["type"] == "auth_required"
    await ws.send_json({"type": "auth", "access_token": token or env.admin})
    assert (await ws.receive_json())["type"] == "auth_ok"
    return ws


async def test_errors_are_results_and_connection_survives(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await _raw(env, session)
    await ws.send_str("{not json")
    reply = await ws.receive_json()
    assert reply["success"] is False and reply["error"]["code"] == "invalid_format"
    await ws.send_json({"id": 1, "type": "make_coffee"})
    reply = await ws.receive_json()
    assert reply == {"id": 1, "type": "result", "success": False,
                     "error": {"code": "unknown_command", "message": "Unknown command 'make_coffee'."}}
    await ws.send_json({"id": 1, "type": "ping"})
    assert (await ws.receive_json())["error"]["code"] == "id_reuse"
    await ws.send_json({"id": "x", "type": "ping"})
    assert (await ws.receive_json())["error"]["code"] == "invalid_format"
    await ws.send_json([1, 2])
    assert (await ws.receive_json())["error"]["code"] == "invalid_format"
    await ws.send_json({"id": 2, "type": "call_service", "domain": "light", "service": "turn_on",
                        "service_data": {"brightness": "bright"}, "target": {"entity_id": LIGHT}})
    assert (await ws.receive_json())["error"]["code"] == "invalid_format"
    await ws.send_json({"id": 3, "type": "call_service", "domain": "light", "service": "turn_on",
                        "target": {"entity_id": "light.nope"}})
    assert (await ws.receive_json())["error"]["code"] == "not_found"
    await ws.send_json({"id": 4, "type": "unsubscribe_events", "subscription": 99})
    assert (await ws.receive_json())["error"] == {"code": "not_found", "message": "Subscription not found."}
    await ws.send_json({"id": 5, "type": "subscribe_entities", "entity_ids": "light.x"})
    assert (await ws.receive_json())["error"]["code"] == "invalid_format"
    await ws.send_json({"id": 6, "type": "ping"})
    assert await ws.receive_json() == {"id": 6, "type": "pong"}
    await ws.close()


async def test_oversized_frame_closes_with_reason(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await _raw(env, session)
    other = await _raw(env, session)
    await ws.send_str(json.dumps({"id": 1, "type": "ping", "pad": "x" * (env.api.max_message_bytes + 10)}))
    msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await other.send_json({"id": 1, "type": "ping"})  # the other client is unaffected
    assert (await other.receive_json())["type"] == "pong"
    await other.close()


async def test_flood_closes_with_reason(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await _raw(env, session)
    with contextlib.suppress(ConnectionError):  # the hub may hang up while we are still sending
        for i in range(1, 2000):
            if ws.closed:
                break
            await ws.send_json({"id": i, "type": "ping"})
    while True:
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
    assert msg.extra == "Too many messages"
    fresh = await _raw(env, session)
    await fresh.send_json({"id": 1, "type": "ping"})
    assert (await fresh.receive_json())["type"] == "pong"
    await fresh.close()


async def test_coalesced_messages_arrive_as_arrays(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await _raw(env, session)
    await ws.send_json({"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}})
    assert (await ws.receive_json())["success"] is True
    await ws.send_json({"id": 2, "type": "subscribe_events", "event_type": "state_changed"})
    assert (await ws.receive_json())["success"] is True
    for i in range(200):
        env.hub.states.async_set("sensor.bench", i, {"n": i})
    seen: list[int] = []
    arrays = 0
    while len(seen) < 200:
        data = await ws.receive_json()
        batch = data if isinstance(data, list) else [data]
        arrays += isinstance(data, list)
        assert len(batch) <= 64  # bounded arrays, so clients can parse while more arrives
        seen += [m["event"]["data"]["new_state"]["attributes"]["n"] for m in batch]
    assert seen == list(range(200))
    assert arrays >= 3
    await ws.close()


async def test_slow_plain_client_is_cut_off_not_buffered(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await _raw(env, session)
    await ws.send_json({"id": 1, "type": "subscribe_events"})
    await ws.receive_json()
    conn = next(iter(env.api.ha_connections))
    for i in range(5000):  # no awaits: the writer cannot drain; the queue must not exceed its cap
        env.hub.states.async_set("sensor.flood", i)
    assert conn.closing and conn.pending_count() == 0
    await asyncio.sleep(0.2)
    assert conn not in env.api.ha_connections or conn.ws.closed


async def test_scoped_token_sees_and_controls_only_its_area(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await _raw(env, session, env.kitchen)
    await ws.send_json({"id": 1, "type": "get_states"})
    ids = {s["entity_id"] for s in (await ws.receive_json())["result"]}
    assert ids == {"binary_sensor.kitchen_motion", "sensor.kitchen_motion_battery"}
    await ws.send_json({"id": 2, "type": "subscribe_events", "event_type": "state_changed"})
    await ws.receive_json()
    env.hub.states.async_set(LIGHT, "on")  # another area: not delivered
    env.hub.states.async_set("binary_sensor.kitchen_motion", "on")
    event = await ws.receive_json()
    assert event["event"]["data"]["entity_id"] == "binary_sensor.kitchen_motion"
    await ws.send_json({"id": 3, "type": "call_service", "domain": "light", "service": "turn_off",
                        "target": {"entity_id": LIGHT}})
    assert (await ws.receive_json())["error"]["code"] == "not_found"
    await ws.send_json({"id": 4, "type": "config/area_registry/list"})
    assert [a["area_id"] for a in (await ws.receive_json())["result"]] == ["kitchen"]
    await ws.close()
    ro = await _raw(env, session, env.read_only)
    await ro.send_json({"id": 1, "type": "call_service", "domain": "light", "service": "turn_off",
                        "target": {"entity_id": LIGHT}})
    assert (await ro.receive_json())["error"]["code"] == "unauthorized"
    await ro.close()


async def test_auth_phase_rejects_garbage(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await session.ws_connect(env.ws_url)
    await ws.receive_json()
    await ws.send_str("hello")
    reply = await ws.receive_json()
    assert reply == {"type": "auth_invalid", "message": "Auth message incorrectly formatted"}
    msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.CLOSE


async def test_plain_client_gets_one_frame_per_message_in_order(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await _raw(env, session)
    await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
    await ws.receive_json()
    for i in range(300):  # written in one go: the hub batches these frames into few socket writes
        env.hub.states.async_set("sensor.burst", i, {"n": i, "pad": "x" * (i * 3)})
    received = [(await ws.receive_json())["event"]["data"]["new_state"]["attributes"]["n"] for _ in range(300)]
    assert received == list(range(300))
    await ws.close()


async def test_other_event_types_and_their_scope(env: Env, session: aiohttp.ClientSession) -> None:
    admin = await _raw(env, session)
    kitchen = await _raw(env, session, env.kitchen)
    for ws in (admin, kitchen):
        await ws.send_json({"id": 1, "type": "subscribe_events"})  # every event type
        await ws.receive_json()
    env.hub.areas.async_get_or_create("Garage")  # area_registry_updated: not about an entity
    event = (await admin.receive_json())["event"]
    assert event["event_type"] == "area_registry_updated" and event["data"]["area_id"] == "garage"
    await admin.send_json({"id": 2, "type": "call_service", "domain": "switch", "service": "turn_on",
                           "target": {"entity_id": PLUG}})
    kinds = set()
    while "result" not in kinds or "call_service" not in kinds:
        msg = await admin.receive_json()
        kinds.add(msg["type"] if msg["type"] == "result" else msg["event"]["event_type"])
    env.hub.states.async_set("binary_sensor.kitchen_motion", "on")
    # The scoped token skipped the area event, the service call and the living room's changes.
    event = (await kitchen.receive_json())["event"]
    assert event["event_type"] == "state_changed"
    assert event["data"]["entity_id"] == "binary_sensor.kitchen_motion"
    await admin.close()
    await kitchen.close()


async def test_each_event_is_serialised_once_for_all_clients(
    env: Env, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qilu_hub.api import ha_format, websocket_ha

    calls: list[str] = []
    real = ha_format.event_json

    def counting(event: Any, states: Any) -> str:
        calls.append(event.data["entity_id"])
        return real(event, states)

    monkeypatch.setattr(websocket_ha.ha_format, "event_json", counting)
    clients = [await _raw(env, session) for _ in range(3)]
    for n, ws in enumerate(clients):
        await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
        await ws.receive_json()
        if n == 0:  # one client subscribes twice (all events and state_changed)
            await ws.send_json({"id": 2, "type": "subscribe_events"})
            await ws.receive_json()
    env.hub.states.async_set("sensor.once", 1)
    for n, ws in enumerate(clients):
        for _ in range(2 if n == 0 else 1):
            assert (await ws.receive_json())["event"]["data"]["entity_id"] == "sensor.once"
        await ws.close()
    assert calls == ["sensor.once"]


async def test_shared_bytes_are_the_text_each_client_would_get_alone(env: Env, session: aiohttp.ClientSession) -> None:
    """Bodies are encoded once and shared; each client's frame is its own id prefix + that body: valid JSON,
    character for character the message built for that client alone (plain, coalesced and subscribe_entities),
    and scoped clients sharing a scope share the body too."""
    from qilu_hub.api import ha_format

    fired: list[Any] = []
    env.hub.bus.listen("state_changed", fired.append)
    plain, coalesced, entities = [await _raw(env, session) for _ in range(3)]
    kitchens = [await _raw(env, session, env.kitchen) for _ in range(2)]
    await coalesced.send_json({"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}})
    await coalesced.receive_json()
    for ws in (plain, coalesced, *kitchens):
        await ws.send_json({"id": 7, "type": "subscribe_events", "event_type": "state_changed"})
        await ws.receive_json()
    await entities.send_json({"id": 9, "type": "subscribe_entities", "entity_ids": ["binary_sensor.kitchen_motion"]})
    await entities.receive_json()
    await entities.receive_json()  # the initial states
    encodes = env.api.ha_fanout.encodes
    env.hub.states.async_set("binary_sensor.kitchen_motion", "on", {"friendly_name": "Motion \u00e9\u6f22"})
    env.hub.states.async_set("binary_sensor.kitchen_motion", "off", {"friendly_name": "Motion \u00e9\u6f22"})
    assert env.api.ha_fanout.encodes - encodes == 4  # 2 events x 2 shapes, for 5 subscribers
    first, second = fired[-2:]
    cache = ha_format.StateJsonCache()
    alone = ['{"id":7,"type":"event","event":' + ha_format.event_json(e, cache) + "}" for e in (first, second)]
    for ws in (plain, *kitchens):
        assert [(await ws.receive()).data for _ in range(2)] == alone
    texts: list[str] = []
    while len(texts) < 1 or (texts[0] != "[" + ",".join(alone) + "]" and len(texts) < 2):
        texts.append((await coalesced.receive()).data)
    assert texts in (["[" + ",".join(alone) + "]"], alone)  # one array (or two frames if flushed between)
    changes = ['{"id":9,"type":"event","event":' + ha_format.entities_change_json(e) + "}" for e in (first, second)]
    received = [(await entities.receive()).data for _ in range(2)]
    assert received == changes
    assert [json.loads(text)["event"]["c"]["binary_sensor.kitchen_motion"]["+"]["s"] for text in received] == [
        "on", "off"]
    for ws in (plain, coalesced, entities, *kitchens):
        await ws.close()
