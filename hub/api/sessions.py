"""Ending open sessions whose token stops being valid.

A WebSocket (Home Assistant protocol or stream) authenticates once, so a token revoked or expired
while it is open must be noticed by the hub, not by the next login. A revocation made in this process
ends that token's sessions at once (the token store tells its listeners). Every ``interval`` seconds,
while sessions are open, the guard also asks the database which of their tokens are still valid: that
catches ``qilu-hub token revoke`` run in another process, and tokens whose expiry has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Protocol

from .auth import Principal

if TYPE_CHECKING:
    from .app import ApiServer

_LOGGER = logging.getLogger(__name__)

# How often open sessions' tokens are re-checked against the database: a revocation from another
# process, or an expiry, ends them within this (plus the close handshake, at most CLOSE_TIMEOUT).
CHECK_INTERVAL = 0.25


class Session(Protocol):
    principal: Principal
    closing: bool

    def end(self, reason: bytes) -> asyncio.Task[None]: ...


class SessionGuard:
    """Watches the tokens of the API's open WebSocket sessions and ends those that lost their token."""

    __slots__ = ("_api", "_ending", "_task", "_unlisten", "interval")

    def __init__(self, api: ApiServer, interval: float = CHECK_INTERVAL) -> None:
        self._api = api
        self.interval = interval
        self._ending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._unlisten: object = None

    def start(self) -> None:
        self._unlisten = self._api.hub.tokens.on_change(self.recheck)
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if callable(self._unlisten):
            self._unlisten()
        self._unlisten = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def sessions(self) -> list[Session]:
        api = self._api
        return [*api.ha_connections, *api.stream_fanout.connections]

    def recheck(self) -> int:
        """End every open session whose token is revoked, expired or gone; the number ended."""
        sessions = [s for s in self.sessions() if not s.closing]
        if not sessions:
            return 0
        tokens = self._api.hub.tokens
        dead = tokens.inactive({s.principal.token.id for s in sessions})
        ended = 0
        for session in sessions:
            token = session.principal.token
            if token.id in dead or tokens.expired(token):
                self._end(session, b"Token expired" if tokens.expired(token) else b"Token revoked")
                ended += 1
        return ended

    def _end(self, session: Session, reason: bytes) -> None:
        _LOGGER.info("Ending a session of token %s: %s", session.principal.token.id, reason.decode())
        task = session.end(reason)
        self._ending.add(task)  # keep a reference until the close is done
        task.add_done_callback(self._ending.discard)

    async def _watch(self) -> None:
        api = self._api
        tokens = api.hub.tokens
        while True:
            await asyncio.sleep(self.interval)
            if not api.ha_connections and not api.stream_fanout.connections:
                continue  # nothing to end; a request's verify() notices another process's revocations itself
            try:
                if not tokens.sync():  # a change by another process calls recheck itself
                    self.recheck()
            except Exception:  # a locked or failing database must not end the watch
                _LOGGER.exception("Checking the tokens of open sessions failed")
