"""Single-use WebSocket tickets for the dashboard.

The dashboard's session cookie is HttpOnly, so its script cannot read the token to send
in the WebSocket ``auth`` message. Instead it asks ``POST /api/dashboard/ws_ticket``
(authenticated by the cookie, refused to other origins) for a ticket and sends that as
``access_token``. A ticket is random, works once, for 30 seconds, and only on the
WebSocket endpoints; an XSS that steals one gets one connection, not the token.
"""

from __future__ import annotations

import secrets
import time

__all__ = ["TICKET_PREFIX", "TicketStore"]

TICKET_PREFIX = "qt_"


class TicketStore:
    """Tickets issued and not yet redeemed, each mapped to the token secret it stands for."""

    __slots__ = ("_tickets", "lifetime", "max_outstanding")

    def __init__(self, lifetime: float = 30.0, max_outstanding: int = 1000) -> None:
        self.lifetime = lifetime
        self.max_outstanding = max_outstanding
        self._tickets: dict[str, tuple[str, float]] = {}  # ticket -> (token secret, expiry)

    def __len__(self) -> int:
        return len(self._tickets)

    def issue(self, secret: str) -> str:
        now = time.monotonic()
        if len(self._tickets) >= self.max_outstanding:
            self._tickets = {t: v for t, v in self._tickets.items() if v[1] > now}
            while len(self._tickets) >= self.max_outstanding:  # oldest first: dicts keep insertion order
                del self._tickets[next(iter(self._tickets))]
        ticket = TICKET_PREFIX + secrets.token_urlsafe(24)
        self._tickets[ticket] = (secret, now + self.lifetime)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The token secret for a valid ticket, once; None for unknown, used or expired tickets."""
        entry = self._tickets.pop(ticket, None)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]
