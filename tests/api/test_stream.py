"""The msgpack stream: auth, snapshot then coalesced deltas, filters, commands, bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgpack

from .conftest import LIGHT, PLUG, Env


async def recv(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.BINARY, msg
    data: dict[str, Any] = msgpack.unpackb(msg.data)
    return data


async def send(ws: aiohttp.ClientWebSocketResponse, data: Any) -> None:
    await ws.send_bytes(msgpack.packb(data))


async def connect(
    env: Env, session: aiohttp.ClientSession, token: str | None = None
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(env.stream_url)
    await send(ws, {"type": "auth", "access_token": token or env.admin})
    assert await recv(ws) == {"type": "auth_ok"}
    return ws


async def test_snapshot_then_deltas_and_call(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session)
    await send(ws, {"type": "subscribe", "id": 1, "entities": [LIGHT, PLUG]})
    snapshot = await recv(ws)
    assert snapshot["type"] == "snapshot" and snapshot["id"] == 1
    assert set(snapshot["states"]) == {LIGHT, PLUG}
    light = snapshot["states"][LIGHT]
    assert light["v"] == "off" and light["a"]["brightness"] == 0 and light["lc"] <= light["lu"]
    await send(ws, {"type": "call", "id": 2, "entity_id": LIGHT, "command": "turn_on", "args": {"brightness": 200}})
    got: dict[str, Any] = {}
    while "result" not in got or "delta" not in got:
        msg = await recv(ws)
        got[msg["type"]] = msg
    assert got["result"] == {"type": "result", "id": 2, "success": True}
    delta = got["delta"]
    assert delta["id"] == 1 and delta["removed"] == []
    assert delta["states"][LIGHT]["v"] == "on" and delta["states"][LIGHT]["a"]["brightness"] == 200
    await send(ws, {"type": "ping", "id": 7})
    assert await recv(ws) == {"type": "pong", "id": 7}
    await ws.close()


async def test_slow_subscriber_gets_latest_state_per_entity(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session)
    await send(ws, {"type": "subscribe", "id": "all"})
    await recv(ws)
    for i in range(10000):  # no await: nothing is sent meanwhile, everything coalesces
        env.hub.states.async_set(f"sensor.s{i % 10}", i)
    env.hub.states.async_remove("sensor.s3")
    conn = env.api.stream_fanout.connections[0]
    assert len(conn.owed("all")) == 10  # bounded by entities, not by writes
    delta = await recv(ws)
    assert delta["type"] == "delta"
    assert {k: v["v"] for k, v in delta["states"].items()} == {
        f"sensor.s{j}": 9990 + j for j in range(10) if j != 3}
    assert delta["removed"] == ["sensor.s3"]
    await ws.close()


async def test_filters_by_area_and_capability(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session)
    await send(ws, {"type": "subscribe", "id": 1, "areas": ["kitchen"]})
    assert set((await recv(ws))["states"]) == {"binary_sensor.kitchen_motion", "sensor.kitchen_motion_battery"}
    await send(ws, {"type": "subscribe", "id": 2, "capabilities": ["on_off"]})
    assert set((await recv(ws))["states"]) == {LIGHT, PLUG}
    await send(ws, {"type": "subscribe", "id": 3, "areas": ["living_room"], "capabilities": ["power"]})
    assert set((await recv(ws))["states"]) == {"sensor.living_room_tv_plug_power"}
    env.hub.states.async_set(PLUG, "on")
    delta = await recv(ws)
    assert delta["id"] == 2 and set(delta["states"]) == {PLUG}
    await ws.close()


async def test_scopes_on_stream(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session, env.kitchen)
    await send(ws, {"type": "subscribe", "id": 1})
    assert set((await recv(ws))["states"]) == {"binary_sensor.kitchen_motion", "sensor.kitchen_motion_battery"}
    await send(ws, {"type": "call", "id": 2, "entity_id": LIGHT, "command": "turn_on"})
    reply = await recv(ws)
    assert reply["success"] is False and reply["error"]["code"] == "not_found"
    await ws.close()
    ro = await connect(env, session, env.read_only)
    await send(ro, {"type": "call", "id": 1, "entity_id": LIGHT, "command": "turn_on"})
    assert (await recv(ro))["error"]["code"] == "unauthorized"
    await ro.close()


async def test_bad_input_gets_errors(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session)
    await ws.send_bytes(b"\xc1\xff\x00")  # 0xc1 is never valid msgpack
    assert (await recv(ws))["error"]["code"] == "invalid_format"
    await ws.send_bytes(msgpack.packb(msgpack.ExtType(5, b"x")))
    assert (await recv(ws))["error"]["code"] == "invalid_format"
    await ws.send_str("{}")
    assert (await recv(ws))["error"]["code"] == "invalid_format"
    await send(ws, [1, 2, 3])
    assert (await recv(ws))["error"]["code"] == "invalid_format"
    await send(ws, {"type": "teleport", "id": 1})
    assert (await recv(ws))["error"] == {"code": "unknown_command", "message": "unknown message type 'teleport'"}
    await send(ws, {"type": "subscribe", "id": 2, "entities": "light.x"})
    assert (await recv(ws))["error"]["code"] == "invalid_format"
    await send(ws, {"type": "call", "id": 3, "entity_id": LIGHT, "command": "turn_on", "args": {"brightness": 999}})
    assert (await recv(ws))["error"]["code"] == "out_of_range"
    await send(ws, {"type": "call", "id": 4, "entity_id": LIGHT, "command": "fly"})
    assert (await recv(ws))["error"]["code"] == "not_supported"
    await send(ws, {"type": "unsubscribe", "id": 5, "subscription": [1]})
    assert (await recv(ws))["error"]["code"] == "not_found"
    await send(ws, {"type": "subscribe", "id": 6, "areas": [{"nested": 1}]})
    assert (await recv(ws))["error"]["code"] == "invalid_format"
    await send(ws, {"type": "ping", "id": 5})
    assert (await recv(ws))["type"] == "pong"
    await ws.send_bytes(b"\x00" * (env.api.max_message_bytes + 1))
    msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def test_auth_invalid_closes(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await session.ws_connect(env.stream_url)
    await send(ws, {"type": "auth", "access_token": "qh_nope"})
    assert await recv(ws) == {"type": "auth_invalid", "message": "invalid access token"}
    msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.extra == "invalid access token"
