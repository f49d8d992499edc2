"""Who is calling: token lookup, scope checks, failed-login limiting and Origin checks.

Every route except ``/api/health`` needs a token: as ``Authorization: Bearer``, or,
for the dashboard in a browser, as the ``qilu_token`` cookie (HttpOnly, SameSite=Strict,
so neither a script nor a foreign page can use it). The WebSocket endpoints authenticate
inside the protocol (an ``auth`` message), as Home Assistant's does; the dashboard sends a
single-use ticket there (``tickets.py``).

Failed logins are counted per client address: the peer's, or behind a reverse proxy listed
in ``hub.trusted_proxies`` the one that proxy reports in ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import web

from ..tokens import Scopes, Token

if TYPE_CHECKING:
    from ..core import Hub

COOKIE = "qilu_token"


class Principal:
    """An authenticated token plus cached scope decisions for it."""

    __slots__ = ("_areas", "_generation", "_seen", "scopes", "token", "unrestricted")

    def __init__(self, token: Token, areas: AreaLookup) -> None:
        self.token = token
        self.scopes: Scopes = token.scopes
        self.unrestricted = token.scopes.areas is None and token.scopes.entities is None
        self._areas = areas
        self._seen: dict[str, bool] = {}
        self._generation = areas.generation

    def can_see(self, entity_id: str) -> bool:
        if self.unrestricted:
            return True
        seen = self._seen
        if self._areas.generation != self._generation:  # a registry changed: areas may have moved
            seen.clear()
            self._generation = self._areas.generation
        verdict = seen.get(entity_id)
        if verdict is None:
            verdict = self.scopes.can_see(entity_id, self._areas.area_of(entity_id))
            seen[entity_id] = verdict
        return verdict

    def can_control(self, entity_id: str) -> bool:
        return not self.scopes.read_only and self.can_see(entity_id)

    @property
    def admin(self) -> bool:
        return self.scopes.admin


class AreaLookup:
    """Area of each entity, cached until a registry changes (``generation`` then moves on)."""

    __slots__ = ("_cache", "_hub", "generation")

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._cache: dict[str, str | None] = {}
        self.generation = 0

    def area_of(self, entity_id: str) -> str | None:
        try:
            return self._cache[entity_id]
        except KeyError:
            area = self._hub.area_of(entity_id)
            self._cache[entity_id] = area
            return area

    def invalidate(self) -> None:
        self._cache.clear()
        self.generation += 1


class LoginLimiter:
    """Refuse logins from an address after ``max_failures`` failures within ``window`` seconds."""

    __slots__ = ("_failures", "max_failures", "window")

    def __init__(self, max_failures: int = 5, window: float = 60.0) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, address: str) -> bool:
        failures = self._failures.get(address)
        if not failures:
            return False
        cutoff = time.monotonic() - self.window
        while failures and failures[0] < cutoff:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return False
        return len(failures) >= self.max_failures

    def failed(self, address: str) -> None:
        if len(self._failures) > 10000:  # many addresses: keep memory bounded
            self._failures.clear()
        self._failures.setdefault(address, deque(maxlen=self.max_failures)).append(time.monotonic())


class ProxyTrust:
    """Which peers are our reverse proxies, and the client address they report.

    ``X-Forwarded-For`` is a list each proxy appends the address it received from to;
    everything left of our own proxies' entries was written by the client and can be
    forged. So the list is read from the right, skipping trusted proxies: the first
    address that is not one is the client. From any other peer the header is ignored.
    """

    __slots__ = ("networks",)

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        # Raises ValueError for a bad entry; the API turns it into a configuration error.
        self.networks = tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)

    def trusted(self, address: str) -> bool:
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    def client_address(self, peer: str, forwarded_for: Iterable[str]) -> str:
        if not self.trusted(peer):
            return peer
        client = peer
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        for hop in reversed(hops):
            try:
                address = str(ipaddress.ip_address(hop))
            except ValueError:
                return client  # garbage (the client's own text, or a port we do not parse): stop at the last good hop
            client = address
            if not self.trusted(address):
                return address
        return client

    def forwarded_https(self, peer: str, proto: str | None) -> bool:
        """True when a trusted proxy says the client spoke HTTPS to it (the cookie is then ``Secure``)."""
        return proto is not None and proto.split(",")[0].strip().lower() == "https" and self.trusted(peer)


def bearer(request: web.Request) -> str | None:
    return credentials(request)[0]


def credentials(request: web.Request) -> tuple[str | None, str]:
    """The token and where it came from: ``header`` (Authorization: Bearer) or ``cookie``."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip(), "header"
    return request.cookies.get(COOKIE), "cookie"


def origin_allowed(request: web.Request, allowed: frozenset[str]) -> bool:
    """Browsers send Origin; it must be this server or a configured origin. No Origin: not a browser."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin in allowed:
        return True
    host = request.headers.get("Host", "")
    return origin in (f"http://{host}", f"https://{host}")
