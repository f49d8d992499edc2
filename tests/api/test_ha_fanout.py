"""Shared channels of the Home Assistant API (hub/api/ha_fanout.py): clients in step with a channel receive the
bytes framed once for all of them; one that owes anything else leaves the channel's shared path without its
messages changing order, and one that stops reading holds nobody back. Real sockets, real clients (aiohttp,
and home-assistant-js-websocket under node for the coalesced arrays)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any

import aiohttp

from qilu_hub.sdk.testing import wait_for

from .conftest import Env
from .test_ha_clients import _js_modules
from .test_websocket_ha import _raw

JS_BURST = os.path.join(os.path.dirname(__file__), "..", "clients", "js", "ha_burst.cjs")
KITCHEN_MOTION = "binary_sensor.kitchen_motion"


def _n(message: dict[str, Any]) -> Any:
    return message["event"]["data"]["new_state"]["attributes"]["n"]


async def _subscribe(ws: aiohttp.ClientWebSocketResponse, msg_id: int, event_type: str = "state_changed") -> None:
    await ws.send_json({"id": msg_id, "type": "subscribe_events", "event_type": event_type})
    assert (await ws.receive_json())["success"] is True


async def test_clients_in_step_share_one_framing_per_window(env: Env, session: aiohttp.ClientSession) -> None:
    """Twelve clients in three channels (plain, coalesced, a scoped token's): a burst is framed three times,
    not twelve, and each client still reads exactly what it would alone, in order."""
    plain = [await _raw(env, session) for _ in range(6)]
    coalesced = [await _raw(env, session) for _ in range(3)]
    kitchens = [await _raw(env, session, env.kitchen) for _ in range(3)]
    for ws in coalesced:
        await ws.send_json({"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}})
        assert (await ws.receive_json())["success"] is True
    for ws in (*plain, *coalesced, *kitchens):
        await _subscribe(ws, 3)
    framings = env.api.ha_fanout.framings
    for i in range(30):  # one loop turn: one window
        env.hub.states.async_set(KITCHEN_MOTION if i % 3 == 0 else "sensor.burst", f"s{i}", {"n": i})
    frames = [[(await ws.receive()).data for _ in range(30)] for ws in plain]
    assert all(f == frames[0] for f in frames)  # the same bytes for every client in step
    assert [_n(json.loads(text)) for text in frames[0]] == list(range(30))
    for ws in coalesced:
        got: list[Any] = []
        while len(got) < 30:
            data = await ws.receive_json()
            got += [_n(m) for m in (data if isinstance(data, list) else [data])]
        assert got == list(range(30))
    for ws in kitchens:  # the scoped token's channel carried only what it may see
        assert [_n(await ws.receive_json()) for _ in range(10)] == list(range(0, 30, 3))
    assert env.api.ha_fanout.framings - framings == 3
    env.hub.states.async_set(KITCHEN_MOTION, "last", {"n": "last"})
    for ws in kitchens:  # and nothing else was queued for them
        assert _n(await ws.receive_json()) == "last"
    for ws in (*plain, *coalesced, *kitchens):
        await ws.close()


async def test_an_answer_between_events_keeps_its_place(env: Env, session: aiohttp.ClientSession) -> None:
    """A command answered while a client is in step goes out between the events before and after it; the
    client then rejoins its channel (the next burst is framed once for it and the other client)."""
    ws = await _raw(env, session)
    await _subscribe(ws, 1)
    [conn] = env.api.ha_connections
    other = await _raw(env, session)
    await _subscribe(other, 1)
    env.hub.states.async_set("sensor.a", 1, {"n": 1})
    conn.handle({"id": 2, "type": "ping"})  # as if its frame had been read in this same loop turn
    env.hub.states.async_set("sensor.a", 2, {"n": 2})
    first = [await ws.receive_json() for _ in range(3)]
    assert [m.get("type") for m in first] == ["event", "pong", "event"]
    assert (_n(first[0]), first[1]["id"], _n(first[2])) == (1, 2, 2)
    assert [_n(await other.receive_json()) for _ in range(2)] == [1, 2]
    framings = env.api.ha_fanout.framings
    for n in (3, 4):
        env.hub.states.async_set("sensor.a", n, {"n": n})
    for client in (ws, other):
        assert [_n(await client.receive_json()) for _ in range(2)] == [3, 4]
    assert env.api.ha_fanout.framings - framings == 1  # both in step again: one framing for the two
    await ws.close()
    await other.close()


async def test_two_subscriptions_interleave_in_order(env: Env, session: aiohttp.ClientSession) -> None:
    """A dashboard rides its state_changed channel; an event of its other subscription, fired between two
    changes in one loop turn, arrives between them (plain and coalesced)."""
    plain, coalesced = await _raw(env, session), await _raw(env, session)
    await coalesced.send_json({"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}})
    await coalesced.receive_json()
    for ws in (plain, coalesced):
        await _subscribe(ws, 2)
        await _subscribe(ws, 3, "qilu_test_ping")
    env.hub.states.async_set("sensor.a", 1, {"n": 1})
    env.hub.bus.fire("qilu_test_ping", {"n": "ping"})
    env.hub.states.async_set("sensor.a", 2, {"n": 2})
    want = [(2, 1), (3, "ping"), (2, 2)]
    got = [await plain.receive_json() for _ in range(3)]
    assert [(m["id"], m["event"]["data"].get("new_state", {}).get("attributes", m["event"]["data"])["n"])
            for m in got] == want
    batch: list[dict[str, Any]] = []
    while len(batch) < 3:
        data = await coalesced.receive_json()
        batch += data if isinstance(data, list) else [data]
    assert [(m["id"], m["event"]["data"].get("new_state", {}).get("attributes", m["event"]["data"])["n"])
            for m in batch] == want
    await plain.close()
    await coalesced.close()


async def _stalled_subscriber(env: Env) -> socket.socket:
    """A raw client with a tiny receive buffer that subscribes to state_changed and then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", env.api.port or 0))
    await loop.sock_sendall(sock, (b"GET /api/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                   b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                   b"Sec-WebSocket-Version: 13\r\n\r\n"))
    for msg in ({"type": "auth", "access_token": env.admin},
                {"id": 1, "type": "subscribe_events", "event_type": "state_changed"}):
        payload = json.dumps(msg).encode()
        mask = os.urandom(4)
        await loop.sock_sendall(sock, bytes([0x81, 0x80 | len(payload)]) + mask
                                + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return sock


async def test_js_client_reads_every_coalesced_message_beside_a_client_that_never_reads(env: Env) -> None:
    """Home Assistant's JS client (which asks for coalesce_messages) reads every change of bursts, in order,
    from arrays carrying several messages, while a client subscribed to the same events never reads."""
    modules = _js_modules()
    count = 400
    stalled = await _stalled_subscriber(env)
    args = {"url": env.url, "token": env.admin, "entity_id": "sensor.burst", "count": count}
    node = await asyncio.create_subprocess_exec(
        "node", JS_BURST, json.dumps(args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "QILU_JS_CLIENTS": str(modules)})
    try:
        assert node.stdout is not None
        assert (await asyncio.wait_for(node.stdout.readline(), 20)).strip() == b"READY"
        await wait_for(lambda: any(c.subs and not c.coalesce for c in env.api.ha_connections),
                       what="the stalled client subscribed")
        stalled_conn = next(c for c in env.api.ha_connections if not c.coalesce)
        for start in range(0, count, 20):
            for n in range(start, start + 20):  # 20 changes per loop turn
                env.hub.states.async_set("sensor.burst", n, {"n": n, "pad": "x" * 4000})
            await asyncio.sleep(0)
        seen = json.loads(await asyncio.wait_for(node.stdout.readline(), 20))
        assert seen["ns"] == list(range(count))
        assert seen["arrays"] >= 1 and seen["frames"] < count  # several messages per frame
        # The stalled client's socket filled: it left the shared path (and is coalesced or cut off on its own).
        assert stalled_conn._blocked or stalled_conn.closing
    finally:
        if node.returncode is None:
            node.kill()
        await node.wait()
        stalled.close()


async def test_stream_clients_in_step_share_one_delta_and_a_reply_keeps_their_changes(
        env: Env, session: aiohttp.ClientSession) -> None:
    """Stream subscriptions with the same id, filters and scope take one delta built once per window; a client
    that is sent a reply mid-window still gets every change of that window (after the reply, as ever), a
    filtered subscription only its own, and a client that unsubscribes none after."""
    from .test_stream import connect, recv, send

    clients = [await connect(env, session) for _ in range(4)]
    for ws in clients:
        await send(ws, {"type": "subscribe", "id": "all"})
        assert (await recv(ws))["type"] == "snapshot"
    lights = await connect(env, session)
    await send(lights, {"type": "subscribe", "id": "all", "entities": ["sensor.s1"]})
    await recv(lights)
    first = next(c for c in env.api.stream_fanout.connections if c.riding is not None and c.riding.shared)
    framings = env.api.stream_fanout.framings
    for window in range(3):
        for j in range(3):
            env.hub.states.async_set(f"sensor.s{j}", window * 10 + j)
        if window == 1:
            first.handle({"type": "ping", "id": "mid"})  # as if read in this loop turn
        await asyncio.sleep(0.05)  # the next changes fall in a later window
    got: dict[int, list[dict[str, Any]]] = {}
    for n, ws in enumerate(clients):
        got[n] = []
        while sum(len(m.get("states", {})) for m in got[n]) < 9:
            got[n].append(await recv(ws))
    for messages in got.values():
        deltas = [{k: v["v"] for k, v in m["states"].items()} for m in messages if m["type"] == "delta"]
        assert deltas == [{f"sensor.s{j}": w * 10 + j for j in range(3)} for w in range(3)]
    assert sum(m["type"] == "pong" for messages in got.values() for m in messages) == 1
    assert [{k: v["v"] for k, v in (await recv(lights))["states"].items()} for _ in range(3)] == [
        {"sensor.s1": w * 10 + 1} for w in range(3)]
    # Three windows, two channels (the filtered one apart); the replied-to client had its own delta once.
    assert env.api.stream_fanout.framings - framings == 6
    await send(clients[0], {"type": "unsubscribe", "id": 9, "subscription": "all"})
    assert (await recv(clients[0]))["success"] is True
    env.hub.states.async_set("sensor.s0", "after")
    assert (await recv(clients[1]))["states"]["sensor.s0"]["v"] == "after"
    await send(clients[0], {"type": "ping", "id": "end"})
    assert await recv(clients[0]) == {"type": "pong", "id": "end"}  # no delta came before it
    for ws in (*clients, lights):
        await ws.close()


async def test_a_burst_too_long_to_share_is_bounded_per_client(env: Env, session: aiohttp.ClientSession) -> None:
    """3,000 changes in one loop turn: past half of Home Assistant's 4,096 the window is no longer shared; the
    subscribe_entities client in step is then coalesced (never a change twice, ends at the hub's states) and
    stays connected, as it would without the channel."""
    ws = await _raw(env, session)
    await ws.send_json({"id": 1, "type": "subscribe_entities"})
    assert (await ws.receive_json())["success"] is True
    await ws.receive_json()  # the initial states
    [conn] = env.api.ha_connections
    assert conn.riding is not None and conn.riding.shared
    for i in range(3000):
        env.hub.states.async_set(f"sensor.flood{i % 10}", i)
    want = {f"sensor.flood{j}": str(2990 + j) for j in range(10)}
    seen: dict[str, list[str]] = {}
    messages = 0
    while {k: v[-1] for k, v in seen.items() if v} != want:
        data = await asyncio.wait_for(ws.receive_json(), 10)
        for item in data if isinstance(data, list) else [data]:
            messages += 1
            event = item["event"]
            changed = {**event.get("a", {}), **{k: d["+"] for k, d in event.get("c", {}).items()}}
            for entity_id, state in changed.items():
                if "s" in state:
                    seen.setdefault(entity_id, []).append(state["s"])
    assert messages < 3000  # coalesced
    for values in seen.values():
        assert [int(v) for v in values] == sorted(int(v) for v in set(values))  # in order, none twice
    assert not conn.closing
    await ws.close()
