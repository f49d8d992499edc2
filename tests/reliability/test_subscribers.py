"""Subscribers that stop reading: memory stays bounded, the hub and the other clients carry on.

The stalled client is a raw TCP socket with a small receive buffer that completes the WebSocket
handshake and then never reads again, so the kernel and asyncio buffers really fill up.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from typing import Any

import aiohttp
import msgpack
import pytest

from qilu_hub.api import stream as stream_module
from qilu_hub.api.limits import MAX_PENDING_BYTES
from qilu_hub.sdk.testing import wait_for

from ..api.conftest import Env

BIG = {"blob": "x" * 2000}  # large states fill the socket buffers in a few hundred writes


def _client_frame(payload: bytes, opcode: int) -> bytes:
    """A masked client frame (RFC 6455 section 5.2; clients must mask)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    _, b2 = await reader.readexactly(2)
    n = b2 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    return await reader.readexactly(n)


class StalledClient:
    """Handshake, authenticate, send what it is told, and never read again."""

    def __init__(self, env: Env, path: str) -> None:
        self.env, self.path = env, path
        self.writer: asyncio.StreamWriter | None = None
        self.reader: asyncio.StreamReader | None = None

    async def open(self, binary: bool, first: list[Any]) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.env.api.port or 0))
        reader, self.writer = await asyncio.open_connection(sock=sock)
        self.reader = reader
        self.writer.write((f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        if not binary:
            await _read_frame(reader)  # auth_required
        self.send({"type": "auth", "access_token": self.env.admin}, binary)
        assert b"auth_ok" in await _read_frame(reader)
        for msg in first:
            self.send(msg, binary)
        await asyncio.sleep(0.1)

    def send(self, msg: Any, binary: bool) -> None:
        assert self.writer is not None
        data = msgpack.packb(msg) if binary else json.dumps(msg).encode()
        self.writer.write(_client_frame(data, 0x2 if binary else 0x1))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()


async def test_stalled_home_assistant_client_is_cut_off_others_carry_on(
        env: Env, session: aiohttp.ClientSession) -> None:
    stalled = StalledClient(env, "/api/websocket")
    await stalled.open(False, [{"id": 1, "type": "subscribe_events", "event_type": "state_changed"}])
    [stalled_conn] = env.api.ha_connections
    healthy = await session.ws_connect(env.ws_url)
    await healthy.receive_json()
    await healthy.send_json({"type": "auth", "access_token": env.admin})
    await healthy.receive_json()
    await healthy.send_json({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
    await healthy.receive_json()
    received = 0
    peak = 0
    try:
        for i in range(6000):
            env.hub.states.async_set("sensor.flood", i, BIG)
            msg = await healthy.receive_json()  # the healthy client sees every change, in order
            assert msg["event"]["data"]["new_state"]["state"] == str(i)
            received += 1
            peak = max(peak, stalled_conn.pending_bytes())
            if stalled_conn.closing:
                break
        # Bounded: the stalled client's queue never passed its cap and it was cut off.
        assert stalled_conn.closing, "a client that never reads must be cut off, not buffered forever"
        await wait_for(lambda: stalled_conn not in env.api.ha_connections, timeout=20, what="stalled client dropped")
        assert peak <= MAX_PENDING_BYTES + 4096  # measured in bytes: the cap plus at most one message
        env.hub.states.async_set("sensor.after", 1)
        msg = await healthy.receive_json()
        assert msg["event"]["data"]["entity_id"] == "sensor.after"
    finally:
        stalled.close()
        await healthy.close()


async def test_stalled_subscribe_entities_client_is_coalesced_and_catches_up(
        env: Env, session: aiohttp.ClientSession) -> None:
    """A subscribe_entities client that stops reading is not cut off: while its socket is full it is owed only
    the latest state of each entity, and the probe client meanwhile gets every change."""
    stalled = StalledClient(env, "/api/websocket")
    await stalled.open(False, [{"id": 1, "type": "subscribe_entities"}])
    [stalled_conn] = env.api.ha_connections
    probe = await session.ws_connect(env.ws_url)
    await probe.receive_json()
    await probe.send_json({"type": "auth", "access_token": env.admin})
    await probe.receive_json()
    await probe.send_json({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
    await probe.receive_json()
    held: dict[str, None] | None = None
    try:
        for i in range(3000):
            env.hub.states.async_set(f"sensor.flood{i % 10}", i, {"blob": f"{i}" + "x" * 2000})  # big diffs
            msg = await probe.receive_json()  # the probe sees every change, in order
            assert msg["event"]["data"]["new_state"]["state"] == str(i)
            sub = env.api.ha_fanout._entities[0].channels[0].members[0]
            held = sub.held
            if held is not None and len(held) == 10 and i > 2000:
                break
        assert held is not None, "a stalled subscribe_entities client must be coalesced"
        assert set(held) == {f"sensor.flood{j}" for j in range(10)}  # one entry per entity, not per change
        assert not stalled_conn.closing
        assert stalled_conn.pending_bytes() <= 64 * 1024 + 4096  # nothing more queued once it lags
        # It starts reading again: applying what it receives (a: add/replace, c: changes) ends at the hub's states.
        assert stalled.reader is not None
        seen: dict[str, str] = {}
        want = {f"sensor.flood{j}": env.hub.states.get(f"sensor.flood{j}").value for j in range(10)}  # type: ignore
        for _ in range(20000):
            msg = json.loads(await asyncio.wait_for(_read_frame(stalled.reader), 10))
            event = msg.get("event", {}) if isinstance(msg, dict) else {}
            for entity_id, state in event.get("a", {}).items():
                seen[entity_id] = state["s"]
            for entity_id, diff in event.get("c", {}).items():
                if "s" in diff.get("+", {}):
                    seen[entity_id] = diff["+"]["s"]
            if all(seen.get(k) == str(v) for k, v in want.items()) and "a" in event and len(event["a"]) == 10:
                break  # the catch-up message: every flooded entity at its latest state, in one message
        else:
            raise AssertionError("no catch-up message")
        assert sub.held is None
    finally:
        stalled.close()
        await probe.close()


async def test_stalled_stream_client_stays_bounded_and_is_cut_off(
        env: Env, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "MAX_PENDING_CONTROL", 64)
    stalled = StalledClient(env, "/api/stream")
    await stalled.open(True, [{"type": "subscribe", "id": "all"}])
    healthy = await session.ws_connect(env.stream_url)
    await healthy.send_bytes(msgpack.packb({"type": "auth", "access_token": env.admin}))
    await healthy.receive_bytes()
    await healthy.send_bytes(msgpack.packb({"type": "subscribe", "id": "h", "entities": ["sensor.flood0"]}))
    await healthy.receive_bytes()
    stalled_conn = next(c for c in env.api.stream_fanout.connections if "all" in c.subs)
    try:
        for i in range(3000):
            for j in range(20):
                env.hub.states.async_set(f"sensor.flood{j}", i, BIG)
            stalled.send({"type": "ping", "id": i}, True)  # it keeps talking but never reads the answers
            delta = msgpack.unpackb(await healthy.receive_bytes())
            assert delta["states"]["sensor.flood0"]["v"] == i
            # Bounded by entities (coalesced) and by the control cap, whatever the stalled client does.
            sub = stalled_conn.subs.get("all")
            assert sub is None or len(sub.pending) <= 20  # coalesced per entity
            assert len(stalled_conn._control) <= 64 + 1
            if stalled_conn.closing:
                break
            await asyncio.sleep(0.005)  # under the 200 msg/s rate limit: the flood is replies, not requests
        assert stalled_conn.closing, "a client that never reads must be cut off, not buffered forever"
        await wait_for(lambda: stalled_conn not in env.api.stream_fanout.connections, what="stalled stream dropped")
        env.hub.states.async_set("sensor.flood0", -1)
        assert msgpack.unpackb(await healthy.receive_bytes())["states"]["sensor.flood0"]["v"] == -1
    finally:
        stalled.close()
        await healthy.close()
