"""Per-connection limits shared by the WebSocket endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode

if TYPE_CHECKING:
    from aiohttp import web

# Home Assistant's own default for incoming WebSocket messages is 4 MiB; commands are tiny.
MAX_MESSAGE_BYTES = 256 * 1024
# Outgoing messages a plain (uncoalesced) Home Assistant client may have pending before it is cut off.
MAX_PENDING_MESSAGES = 4096
# Control replies (results, pongs, errors) a stream client may have queued before it is cut off.
MAX_PENDING_CONTROL = 1024
MAX_CALLS_IN_FLIGHT = 32
# A client that stopped reading cannot take a close frame either: after this long the socket is dropped.
CLOSE_TIMEOUT = 2.0
# WebSockets open at once (each costs a task, buffers and, while unauthenticated, up to AUTH_TIMEOUT).
MAX_CONNECTIONS = 256
AUTH_TIMEOUT = 10.0


class RateLimit:
    """A token bucket: ``rate`` messages a second with bursts of ``burst``."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float = 200.0, burst: float = 400.0) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


async def close_or_abort(ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None, message: bytes) -> None:
    """Close a client that cannot keep up; abort its socket if the close frame itself cannot be sent."""
    try:
        await asyncio.wait_for(ws.close(code=WSCloseCode.POLICY_VIOLATION, message=message), CLOSE_TIMEOUT)
    except (TimeoutError, ConnectionError):
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.abort()  # type: ignore[attr-defined]
