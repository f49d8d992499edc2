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
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from aiohttp import web

from ..tokens import Scopes, Token

if TYPE_CHECKING:
    from ..core import Hub

_LOGGER = logging.getLogger(__name__)

COOKIE = "qilu_token"


class Principal:
    """An authenticated token plus cached scope decisions for it."""

    __slots__ = ("_areas", "_generation", "_seen", "scopes", "token", "unrestricted")

    def __init__(self, token: Token, areas: AreaLookup) -> None:
        self.token = token
        self.scopes: Scopes = token.scopes
        self.unrestricted = not token.scopes.restricted
        self._areas = areas
        # Verdicts for existing entities only, so an id a client invents costs nothing to keep.
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
            exists, area = self._areas.lookup(entity_id)
            verdict = self.scopes.can_see(entity_id, area)
            if exists:
                seen[entity_id] = verdict
        return verdict

    def can_control(self, entity_id: str) -> bool:
        return not self.scopes.read_only and self.can_see(entity_id)

    @property
    def admin(self) -> bool:
        return self.scopes.may_administer


class AreaLookup:
    """Area of each existing entity, least recently used first, until a registry changes
    (``generation`` then moves on).

    Only entities that exist are remembered, and at most ``max_size`` of them: the ids a client sends
    are its own invention and must not grow the hub's memory.
    """

    __slots__ = ("_cache", "_hub", "generation", "max_size")

    def __init__(self, hub: Hub, max_size: int = 4096) -> None:
        self._hub = hub
        self.max_size = max_size
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self.generation = 0

    def size(self) -> int:  # not __len__: an empty lookup must still be truthy
        return len(self._cache)

    def lookup(self, entity_id: str) -> tuple[bool, str | None]:
        """(whether the entity exists, its area)."""
        cache = self._cache
        try:
            area = cache[entity_id]
        except KeyError:
            entities = self._hub.entities
            entity = entities.get(entity_id)
            if entity is None:
                return False, None
            area = entities.area_of(entity)
            cache[entity_id] = area
            if len(cache) > self.max_size:
                cache.popitem(last=False)
            return True, area
        cache.move_to_end(entity_id)
        return True, area

    def area_of(self, entity_id: str) -> str | None:
        return self.lookup(entity_id)[1]

    def invalidate(self) -> None:
        self._cache.clear()
        self.generation += 1


class LoginLimiter:
    """Refuse logins from an address after ``max_failures`` failures within ``window`` seconds.

    Memory is bounded without ever lifting a block early: addresses still under the limit are kept in
    least-recently-failed order and the oldest dropped past ``max_addresses`` (forgetting a few failures
    of someone who stopped trying); blocked addresses live apart until their block ends. New blocks past
    ``max_blocked`` are not recorded (logged once), as blocks already given outrank new ones; a block
    lasts ``window`` at most, so that table empties as fast as it can fill.
    """

    __slots__ = ("_blocked", "_clock", "_failures", "_warned", "max_addresses", "max_blocked", "max_failures",
                 "window")

    def __init__(self, max_failures: int = 5, window: float = 60.0, *, max_addresses: int = 10000,
                 max_blocked: int = 65536, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self.max_blocked = max_blocked
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()  # least recently failed first
        self._blocked: OrderedDict[str, float] = OrderedDict()  # address -> end of its block, earliest first
        self._warned = False

    def size(self) -> int:
        """Addresses remembered (not __len__: ``limiter or LoginLimiter()`` must keep an empty one)."""
        return len(self._failures) + len(self._blocked)

    def _expire_blocks(self, now: float) -> None:
        blocked = self._blocked
        while blocked:
            address, until = next(iter(blocked.items()))
            if until > now:
                return
            del blocked[address]

    def blocked(self, address: str) -> bool:
        until = self._blocked.get(address)
        if until is None:
            return False
        if until > self._clock():
            return True
        del self._blocked[address]
        return False

    def failed(self, address: str) -> None:
        now = self._clock()
        self._expire_blocks(now)
        if self.blocked(address):
            return
        failures = self._failures.pop(address, None)
        if failures is None:
            failures = deque(maxlen=self.max_failures)
        cutoff = now - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        failures.append(now)
        if len(failures) >= self.max_failures:
            if len(self._blocked) < self.max_blocked:
                # Blocks all last ``window`` from the failure that completed them: insertion order is end order.
                self._blocked[address] = now + self.window
                return
            if not self._warned:
                self._warned = True
                _LOGGER.warning("More than %d addresses are blocked after failed logins; not blocking more "
                                "until some blocks end", self.max_blocked)
        self._failures[address] = failures
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)


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
