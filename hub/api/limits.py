"""Per-connection limits shared by the API's endpoints, and the admission of WebSockets.

Defaults for the ``hub:`` options that bound what one client (and all together) may hold:
connections (enforced by :mod:`.connection_guard`), the idle/header timeout, and WebSockets
that have not authenticated yet (:class:`SocketSlots`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, web

from .keys import API_KEY

if TYPE_CHECKING:
    from .app import Handler

# Home Assistant's own default for incoming WebSocket messages is 4 MiB; commands are tiny.
MAX_MESSAGE_BYTES = 256 * 1024
# Outgoing bytes a Home Assistant client whose socket is full may have queued before it is cut off, as Home
# Assistant cuts off a client with 4,096 pending messages: about as many events of ~250 bytes.
MAX_PENDING_BYTES = 1024 * 1024
# Messages queued in one loop turn (a burst of writes) past which a Home Assistant client is cut off all the
# same: Home Assistant's own limit.
MAX_PENDING_MESSAGES = 4096
# All Home Assistant clients' queues together: with many clients each gets a smaller share (a gateway with a
# thousand dashboards must not hold a gigabyte of backlog), but never less than MIN_PENDING_BYTES.
TOTAL_PENDING_BYTES = 48 * 1024 * 1024
MIN_PENDING_BYTES = 64 * 1024
# Queued bytes past which a client whose socket is full gets subscribe_entities updates coalesced to the
# latest state per entity instead of queued one by one.
LAG_BYTES = 64 * 1024
# Control replies (results, pongs, errors) a client of either WebSocket may have queued before it is cut off.
MAX_PENDING_CONTROL = 1024
MAX_CALLS_IN_FLIGHT = 32
# A client that stopped reading cannot take a close frame either: after this long the socket is dropped.
CLOSE_TIMEOUT = 2.0
# WebSockets open at once (each costs a task, buffers and, while unauthenticated, up to AUTH_TIMEOUT).
MAX_CONNECTIONS = 256
# An unauthenticated WebSocket is a stranger's: it gets a few seconds, not Home Assistant's 10.
AUTH_TIMEOUT = 5.0
# Unauthenticated WebSockets from one client address (the forwarded one behind a trusted proxy).
MAX_UNAUTHENTICATED_PER_ADDRESS = 8
# TCP connections open at once, all clients together (lowered at start to leave files for the rest of the hub).
MAX_TCP_CONNECTIONS = 512
# TCP connections from one peer address: a browser opens 6 or so, Home Assistant a few.
MAX_TCP_CONNECTIONS_PER_ADDRESS = 32
# Seconds a connection may go without a complete request: one that sends nothing, or its headers slowly
# (slowloris), and keep-alive idle between requests. WebSockets are past this once upgraded.
IDLE_TIMEOUT = 10.0


def release_one(counts: dict[str, int], address: str) -> None:
    """One fewer held by ``address``; the table keeps only addresses that still hold some (bounded memory)."""
    held = counts[address] - 1
    if held:
        counts[address] = held
    else:
        del counts[address]


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


class SocketSlot:
    """One admitted WebSocket: counted as unauthenticated until :meth:`authenticated`, released at the end."""

    __slots__ = ("_slots", "address", "unauthenticated")

    def __init__(self, slots: SocketSlots, address: str) -> None:
        self._slots = slots
        self.address = address
        self.unauthenticated = True

    def authenticated(self) -> None:
        if self.unauthenticated:
            self.unauthenticated = False
            self._slots.forget_unauthenticated(self.address)

    def release(self) -> None:
        self.authenticated()
        self._slots.open -= 1


# The slot of the WebSocket the current task serves: the middleware admits it, the auth handshake
# (which sees the socket, not the request) marks it authenticated.
CURRENT_SLOT: ContextVar[SocketSlot | None] = ContextVar("CURRENT_SLOT", default=None)


class SocketSlots:
    """Admission of WebSockets: a cap on all open ones, and on unauthenticated ones overall and per address.

    The overall unauthenticated cap is three quarters of all, so sockets that never authenticate cannot take
    every place from those that did; the per-address cap keeps one client from taking all of those.
    """

    __slots__ = ("_unauthenticated", "max_open", "max_unauthenticated", "max_unauthenticated_per_address", "open",
                 "unauthenticated")

    def __init__(self, max_open: int = MAX_CONNECTIONS,
                 max_unauthenticated_per_address: int = MAX_UNAUTHENTICATED_PER_ADDRESS) -> None:
        self.max_open = max_open
        self.max_unauthenticated = max(1, max_open - max_open // 4)
        self.max_unauthenticated_per_address = max_unauthenticated_per_address
        self.open = 0
        self.unauthenticated = 0
        self._unauthenticated: dict[str, int] = {}

    def admit(self, address: str) -> SocketSlot | None:
        """A slot for a new WebSocket from ``address``, or None when a cap is reached."""
        held = self._unauthenticated.get(address, 0)
        if (self.open >= self.max_open or self.unauthenticated >= self.max_unauthenticated
                or held >= self.max_unauthenticated_per_address):
            return None
        self.open += 1
        self.unauthenticated += 1
        self._unauthenticated[address] = held + 1
        return SocketSlot(self, address)

    def forget_unauthenticated(self, address: str) -> None:
        self.unauthenticated -= 1
        release_one(self._unauthenticated, address)


@web.middleware
async def body_deadline_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request body must arrive within ``hub.idle_timeout`` of the handler wanting it.

    Bodies are small (the application's ``client_max_size``) and every handler reads them whole, so reading
    them here first costs nothing; without a deadline a client trickling one holds its connection and a
    handler for as long as it likes. Multipart bodies are left to the handler, which reads them as a stream.
    """
    if request.body_exists and not request.content_type.startswith("multipart/"):
        try:
            async with asyncio.timeout(request.app[API_KEY].idle_timeout):
                await request.read()  # kept by aiohttp: the handler's read()/json()/post() get it from memory
        except TimeoutError:
            response = web.json_response({"message": "Request body not received in time"}, status=408)
            response.force_close()
            return response
    return await handler(request)
