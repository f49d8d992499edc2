"""Per-connection limits shared by the WebSocket endpoints."""

from __future__ import annotations

import time

# Home Assistant's own default for incoming WebSocket messages is 4 MiB; commands are tiny.
MAX_MESSAGE_BYTES = 256 * 1024
# Outgoing messages a plain (uncoalesced) Home Assistant client may have pending before it is cut off.
MAX_PENDING_MESSAGES = 4096
MAX_CALLS_IN_FLIGHT = 32
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
