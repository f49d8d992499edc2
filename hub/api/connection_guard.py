"""Admission of TCP connections to the API: a cap per peer address and one overall, before any HTTP parsing.

Every open connection holds a file descriptor, and the hub's descriptors are shared with its
databases, drivers and discovery. Without a cap, anyone who can reach the port can open idle
connections until ``accept()`` fails for everyone (and every driver with it). The guard sits
between the listening socket and aiohttp: a connection over a cap is aborted the moment it is
accepted (a reset; no request is read, no task started, no traceback), so the descriptor is
free again at once. Refusals are logged at most once a minute per address.

Several addresses together could still fill the overall cap. So once three quarters of it are in
use, an address that already holds a quarter of its own cap gets no more: the last places go to
addresses that hold few, such as an administrator's client arriving during a flood.

Per address means per peer address. A reverse proxy listed in ``hub.trusted_proxies`` carries
every client through its one address, so it is exempt from the per-address cap (the overall cap
still holds); what is limited per client behind it is what the application can attribute to the
forwarded address (failed logins, unauthenticated WebSockets).

With TLS, asyncio hands the connection over only after the handshake, so a connection is counted
from then; the handshake itself is bounded by ``ssl_handshake_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

from ..log_limit import LogLimiter
from .limits import release_one

__all__ = ["ConnectionGuard"]

_LOGGER = logging.getLogger(__name__)

BACKLOG: Final = 128  # aiohttp's own default for a TCP site


def _peer_address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; one client, one key.
    return address[7:] if address.startswith("::ffff:") and "." in address else address


class ConnectionGuard:
    """Counts open connections per peer address and overall; admits or refuses each new one."""

    __slots__ = ("_by_address", "_crowded", "_fair_share", "_log", "exempt", "max_per_address", "max_total", "open",
                 "refused_overall", "refused_per_address")

    def __init__(self, max_total: int, max_per_address: int, exempt: Callable[[str], bool] | None = None) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self._crowded = max_total - max_total // 4
        self._fair_share = max(1, max_per_address // 4)
        self.exempt = exempt or (lambda address: False)
        self.open = 0
        self.refused_overall = 0
        self.refused_per_address = 0
        self._by_address: dict[str, int] = {}
        self._log = LogLimiter(interval=60.0, max_per_interval=10)

    def count(self, address: str) -> int:
        """Connections open now from ``address``."""
        return self._by_address.get(address, 0)

    def admit(self, address: str) -> bool:
        if self.open >= self.max_total:
            self.refused_overall += 1
            self._refused(address, "%d connections are open (hub.max_connections)", self.open)
            return False
        held = self._by_address.get(address, 0)
        if held >= self._fair_share and not self.exempt(address):
            if held >= self.max_per_address:
                self.refused_per_address += 1
                self._refused(address, "it has %d open (hub.max_connections_per_address)", held)
                return False
            if self.open >= self._crowded:
                self.refused_overall += 1
                self._refused(address, "it has %d open and the hub is nearly full (hub.max_connections)", held)
                return False
        self._by_address[address] = held + 1
        self.open += 1
        return True

    def release(self, address: str) -> None:
        self.open -= 1
        release_one(self._by_address, address)

    def _refused(self, address: str, why: str, count: int) -> None:
        suppressed = self._log.allow(address)
        if suppressed is None:
            return
        more = f" ({suppressed} more refusals not logged)" if suppressed else ""
        _LOGGER.warning("Refused a connection from %s: " + why + "%s", address, count, more)

    def protocol_factory(self, inner: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.Protocol]:
        """Wrap ``inner`` (aiohttp's server) so that each connection is admitted before it reaches it."""
        return lambda: _GuardedProtocol(self, inner)

    async def listen(self, inner: Callable[[], asyncio.BaseProtocol], host: str | None, port: int,
                     ssl_context: Any = None, handshake_timeout: float = 10.0) -> asyncio.Server:
        """Open the listening socket(s) with every connection going through the guard."""
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            self.protocol_factory(inner), host, port, ssl=ssl_context, backlog=BACKLOG, reuse_address=True,
            ssl_handshake_timeout=handshake_timeout if ssl_context is not None else None)


class _GuardedProtocol(asyncio.Protocol):
    """Admits the connection, then passes every event to the real protocol (aiohttp's request handler)."""

    __slots__ = ("_address", "_factory", "_guard", "_inner")

    def __init__(self, guard: ConnectionGuard, factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self._guard = guard
        self._factory = factory
        self._inner: Any = None  # an asyncio.Protocol once admitted
        self._address = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        address = _peer_address(transport)
        if not self._guard.admit(address):
            transport.abort()  # type: ignore[attr-defined]
            return
        self._address = address
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        inner = self._inner
        if inner is None:
            return
        self._inner = None
        self._guard.release(self._address)
        inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()
