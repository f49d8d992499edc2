"""Who is calling: token lookup, scope checks, failed-login limiting and Origin checks.

Every route except ``/api/health`` needs a token: as ``Authorization: Bearer``, or,
for the dashboard in a browser, as the ``qilu_token`` cookie (SameSite=Strict, so a
foreign page cannot ride on it). The WebSocket endpoints authenticate inside the
protocol (an ``auth`` message), as Home Assistant's does.
"""

from __future__ import annotations

import time
from collections import deque
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


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def origin_allowed(request: web.Request, allowed: frozenset[str]) -> bool:
    """Browsers send Origin; it must be this server or a configured origin. No Origin: not a browser."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin in allowed:
        return True
    host = request.headers.get("Host", "")
    return origin in (f"http://{host}", f"https://{host}")
