"""Hostile clients on the LAN: idle and slow connections, connection floods, unauthenticated WebSocket floods.

Real sockets over loopback. Other clients are modelled with other loopback source addresses
(127.0.0.2, 127.0.0.3, ...: all of 127/8 is loopback on Linux), so the per-address caps apply
to the attacker and not to the client that must still get in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer
from qilu_hub.api import limits as api_limits
from qilu_hub.config import SCHEMA, Field, load_config
from qilu_hub.virtual import VirtualAppliances
from tests.testbeds.raw_sockets import closed_by_hub

from .conftest import Env

ATTACKER = "127.0.0.2"
ADMIN = "127.0.0.3"


async def start(config_dir: Path, **hub_options: Any) -> Env:
    """A hub with the API on loopback and these ``hub:`` options (set as the loaded file would set them)."""
    config = load_config(config_dir)
    config["hub"].update(hub_options)
    config["recorder"]["commit_interval"] = 0.05
    hub = Hub(config_dir, config)
    hub.add_component(VirtualAppliances(animate=False))
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    await hub.async_start()
    _, admin = hub.tokens.create("admin", Scopes(admin=True))
    _, read_only = hub.tokens.create("viewer", Scopes(read_only=True))
    return Env(hub, api, admin, read_only, read_only)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def refusals() -> Iterator[list[logging.LogRecord]]:
    """Log records of refused connections (WARNING and above from the guard)."""
    handler = Records()
    logger = logging.getLogger("qilu_hub.api.connection_guard")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


@contextlib.asynccontextmanager
async def admin_session(source: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0))) as session:
        yield session


async def connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 5)
    except (OSError, TimeoutError):
        return None


async def health_over(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Send one keep-alive /api/health request on an open connection; True when it was answered."""
    try:
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: hub\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await asyncio.wait_for(reader.readexactly(length), 5)
        return head.startswith(b"HTTP/1.1 200")
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, StopIteration):
        return False


async def admitted(port: int, source: str, tries: int) -> list[asyncio.StreamWriter]:
    """Open ``tries`` connections from ``source`` one after another; keep (and return) those that are served."""
    kept = []
    for _ in range(tries):
        conn = await connect(port, source)
        if conn is not None and await health_over(*conn):
            kept.append(conn[1])
        elif conn is not None:
            conn[1].close()
    return kept


async def ws_upgrade(port: int, source: str, path: str = "/api/websocket",
                     forwarded_for: str | None = None) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A raw WebSocket upgrade that never authenticates: (status, reader, writer), or None when refused at once."""
    conn = await connect(port, source)
    if conn is None:
        return None
    reader, writer = conn
    extra = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
    writer.write((f"GET {path} HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    try:
        status_line = await asyncio.wait_for(reader.readline(), 5)
    except (OSError, TimeoutError):
        status_line = b""
    if not status_line:
        writer.close()
        return None
    return int(status_line.split()[1]), reader, writer


async def ha_login(session: aiohttp.ClientSession, env: Env) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(env.ws_url)
    assert (await ws.receive_json(timeout=5))["type"] == "auth_required"
    await ws.send_json({"type": "auth", "access_token": env.admin})
    assert (await ws.receive_json(timeout=5))["type"] == "auth_ok"
    return ws


async def test_an_unauthenticated_websocket_flood_from_one_address_does_not_lock_out_another(
        tmp_path: Path, refusals: list[logging.LogRecord]) -> None:
    env = await start(tmp_path, websocket_auth_timeout=1.0)
    flood: list[tuple[int, asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        # More than the hub's 256 WebSocket places, all from one address, none of them ever authenticating.
        answers = await asyncio.gather(*(ws_upgrade(env.api.port or 0, ATTACKER) for _ in range(300)))
        flood = [answer for answer in answers if answer is not None]
        # While the flood holds what it got, an administrator from another address connects and works.
        async with admin_session(ADMIN) as session:
            ws = await ha_login(session, env)
            upgraded = [answer for answer in flood if answer[0] == 101]
            assert 0 < len(upgraded) <= api_limits.MAX_UNAUTHENTICATED_PER_ADDRESS
            # The flood's sockets are closed once their auth time is up; the administrator's stays.
            still_open = [r for _, r, _ in upgraded if not await closed_by_hub(r, within=10)]
            assert still_open == []
            await ws.send_json({"id": 1, "type": "ping"})
            assert (await ws.receive_json(timeout=5))["type"] == "pong"
            await ws.close()
        assert len(refusals) <= 2  # one line for the address, not one per refused socket
    finally:
        for _, _, writer in flood:
            writer.close()
        await env.hub.async_stop()


async def test_unauthenticated_websockets_behind_a_trusted_proxy_are_counted_per_forwarded_client(
        tmp_path: Path) -> None:
    proxy = "127.0.0.9"
    env = await start(tmp_path, trusted_proxies=[proxy], max_unauthenticated_per_address=2)
    flood = []
    try:
        port = env.api.port or 0
        for _ in range(3):
            flood.append(await ws_upgrade(port, proxy, "/api/stream", forwarded_for="192.0.2.7"))
        assert [answer[0] if answer else None for answer in flood] == [101, 101, 503]
        other_client = await ws_upgrade(port, proxy, "/api/stream", forwarded_for="192.0.2.8")
        flood.append(other_client)
        assert other_client is not None and other_client[0] == 101
    finally:
        for answer in flood:
            if answer is not None:
                answer[2].close()
        await env.hub.async_stop()


async def test_idle_and_slow_connections_are_closed_but_authenticated_websockets_stay(tmp_path: Path) -> None:
    env = await start(tmp_path, idle_timeout=1.0, websocket_auth_timeout=1.0)
    writers: list[asyncio.StreamWriter] = []
    trickle: asyncio.Task[None] | None = None
    try:
        port = env.api.port or 0
        silent = await connect(port, ATTACKER)  # connects and never sends a byte
        slowloris = await connect(port, ATTACKER)  # sends its headers a line at a time, never finishing
        idle = await connect(port, ATTACKER)  # one request, then keeps the connection open doing nothing
        assert silent is not None and slowloris is not None and idle is not None
        writers += [silent[1], slowloris[1], idle[1]]
        assert await health_over(*idle)
        slowloris[1].write(b"GET /api/health HTTP/1.1\r\nHost: hub\r\n")

        async def send_slowly(writer: asyncio.StreamWriter) -> None:
            for i in range(100):  # bounded: 20 s at most, far beyond the timeout
                with contextlib.suppress(OSError):
                    writer.write(f"X-Slow-{i}: still here\r\n".encode())
                await asyncio.sleep(0.2)

        trickle = asyncio.get_running_loop().create_task(send_slowly(slowloris[1]))
        async with admin_session(ADMIN) as session:
            ws = await ha_login(session, env)
            for reader in (silent[0], slowloris[0], idle[0]):
                assert await closed_by_hub(reader, within=10)
            # An authenticated WebSocket that was idle all that time is still served.
            await ws.send_json({"id": 1, "type": "ping"})
            assert (await ws.receive_json(timeout=5))["type"] == "pong"
            await ws.close()
    finally:
        if trickle is not None:
            trickle.cancel()
        for writer in writers:
            writer.close()
        await env.hub.async_stop()


async def test_a_request_body_sent_slowly_is_cut_off(tmp_path: Path) -> None:
    env = await start(tmp_path, idle_timeout=1.0)
    writers: list[asyncio.StreamWriter] = []
    try:
        port = env.api.port or 0
        requests = [
            f"POST /api/services/light/turn_on HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {env.admin}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            "POST /login HTTP/1.1\r\nHost: hub\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 1000\r\n\r\ntoken=",
        ]
        conns = []
        for request in requests:
            conn = await connect(port, ATTACKER)
            assert conn is not None
            conn[1].write(request.encode())
            writers.append(conn[1])
            conns.append(conn)

        async def send_slowly() -> None:
            for _ in range(100):  # bounded: 20 s at most, far beyond the timeout
                for writer in writers:
                    with contextlib.suppress(OSError):
                        writer.write(b"a")
                await asyncio.sleep(0.2)

        trickle = asyncio.get_running_loop().create_task(send_slowly())
        try:
            for reader, _ in conns:
                status = await asyncio.wait_for(reader.readline(), 10)
                assert status.startswith(b"HTTP/1.1 408"), status
                assert await closed_by_hub(reader, within=10)
        finally:
            trickle.cancel()
    finally:
        for writer in writers:
            writer.close()
        await env.hub.async_stop()


async def test_connections_are_capped_per_address_and_overall(tmp_path: Path,
                                                              refusals: list[logging.LogRecord]) -> None:
    proxy = "127.0.0.9"
    env = await start(tmp_path, max_connections=24, max_connections_per_address=8, trusted_proxies=[proxy],
                      idle_timeout=60.0)
    kept: list[asyncio.StreamWriter] = []
    try:
        port = env.api.port or 0
        attacker = await admitted(port, ATTACKER, 10)
        kept += attacker
        assert len(attacker) == 8  # the per-address cap; the two over it were closed unanswered
        kept += await admitted(port, proxy, 10)
        assert len(kept) == 18  # a trusted proxy carries many clients: only the overall cap applies to it
        # Three quarters full: an address gets a fair share (a quarter of its cap) and no more.
        crowded = await admitted(port, "127.0.0.4", 4)
        kept += crowded
        assert len(crowded) == 2
        kept += await admitted(port, "127.0.0.5", 2) + await admitted(port, "127.0.0.6", 2)
        assert len(kept) == 24
        assert await admitted(port, ADMIN, 1) == []  # full
        for writer in attacker:
            writer.close()
        for _ in range(50):  # bounded: until the hub has seen the attacker's connections go
            if late := await admitted(port, ADMIN, 1):
                kept += late
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("a place freed by a closed connection was not given to a new client")
        assert len(refusals) <= 5  # one line per refused address, not one per connection
    finally:
        for writer in kept:
            writer.close()
        await env.hub.async_stop()


def test_the_configuration_defaults_are_the_limits_the_api_uses() -> None:
    hub_schema = SCHEMA["hub"]
    assert isinstance(hub_schema, dict)

    def default(key: str) -> Any:
        field = hub_schema[key]
        assert isinstance(field, Field)
        return field.default

    assert default("max_connections") == api_limits.MAX_TCP_CONNECTIONS
    assert default("max_connections_per_address") == api_limits.MAX_TCP_CONNECTIONS_PER_ADDRESS
    assert default("idle_timeout") == api_limits.IDLE_TIMEOUT
    assert default("websocket_auth_timeout") == api_limits.AUTH_TIMEOUT
    assert default("max_unauthenticated_per_address") == api_limits.MAX_UNAUTHENTICATED_PER_ADDRESS
