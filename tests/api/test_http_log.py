"""Malformed HTTP requests from the LAN: one short log line per peer and minute, not a traceback each."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp.http_exceptions import BadHttpMessage

from qilu_hub.api.http_log import HttpErrorLog
from qilu_hub.log_limit import LogLimiter

from .conftest import Env

GARBAGE = [
    b"GET / HTTP/1.1\r\nHost: hub\r\nX-Bad: a\x00b\r\n\r\n",  # NUL in a header (schemathesis' probe)
    b"GET /api/ HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer qh_secretsecret\x01\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40),  # TLS to a plain-HTTP port
    b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
]


async def send_raw(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    handler = Records()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(old)


async def test_garbage_flood_logs_one_line(env: Env, records: list[logging.LogRecord],
                                           session: aiohttp.ClientSession) -> None:
    for _ in range(20):
        for payload in GARBAGE:
            answer = await send_raw(env.api.port or 0, payload)
            assert answer[:12] in (b"HTTP/1.0 400", b"HTTP/1.1 400") or answer == b""
    http = [r for r in records if r.name.startswith(("aiohttp", "qilu_hub.api"))]
    assert len(http) == 1, [r.getMessage() for r in http]  # 100 bad requests, one line
    (line,) = http
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert "Refused malformed HTTP request from 127.0.0.1" in line.getMessage()
    assert all("qh_secret" not in r.getMessage() for r in records)
    async with session.get(env.url + "/api/health") as resp:  # and the hub carries on
        assert resp.status == 200


async def test_next_line_counts_what_was_left_out(env: Env, records: list[logging.LogRecord]) -> None:
    env.api.http_log.limiter.interval = 0.3
    for _ in range(5):
        await send_raw(env.api.port or 0, GARBAGE[0])
    await asyncio.sleep(0.4)
    await send_raw(env.api.port or 0, GARBAGE[0])
    lines = [r.getMessage() for r in records if r.name == "qilu_hub.api.http"]
    assert len(lines) == 2 and "(4 similar lines suppressed)" in lines[1], lines


def test_our_own_errors_keep_their_traceback(records: list[logging.LogRecord]) -> None:
    log = HttpErrorLog()
    try:
        raise RuntimeError("a bug in a handler")
    except RuntimeError as err:
        log.exception("Error handling request from %s", "127.0.0.1", exc_info=err)
    log.exception("Error handling request from %s", "10.0.0.9", exc_info=BadHttpMessage("bad"))
    log.exception("Error handling request from %s", "10.0.0.9", exc_info=BadHttpMessage("bad"))
    bug, refused = (r for r in records if r.name == "qilu_hub.api.http")
    assert bug.levelno == logging.ERROR and bug.exc_info is not None and "a bug" in str(bug.exc_info[1])
    assert refused.levelno == logging.WARNING and refused.exc_info is None
    assert refused.getMessage() == "Refused malformed HTTP request from 10.0.0.9: 400 bad"


def test_many_peers_share_a_global_budget(records: list[logging.LogRecord]) -> None:
    log = HttpErrorLog(limiter=LogLimiter(max_per_interval=5))
    for i in range(200):  # source addresses are cheap to vary
        log.exception("Error handling request from %s", f"10.0.{i // 250}.{i % 250}", exc_info=BadHttpMessage("x"))
    assert len([r for r in records if r.name == "qilu_hub.api.http"]) == 5
