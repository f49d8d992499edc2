"""Rate limits for log lines that outsiders can provoke (bad HTTP requests, hostile BLE adverts).

Anyone on the LAN or in radio range can send garbage as fast as they like; each must not
cost a log line, or the log (an SD card on a gateway) fills and real messages drown. A key
(peer address, device) logs at most once per ``interval``; the next line it is allowed says
how many were left out. A global budget per interval also holds when the keys themselves are
forged (a BLE address or a source port costs nothing to change).
"""

from __future__ import annotations

import time
from collections.abc import Hashable

__all__ = ["LogLimiter"]


class LogLimiter:
    """Decides whether a line for ``key`` is logged now, and how many were suppressed before it."""

    __slots__ = ("_dropped", "_keys", "_window_count", "_window_start", "interval", "max_keys", "max_per_interval")

    def __init__(self, interval: float = 60.0, max_per_interval: int = 20, max_keys: int = 1024) -> None:
        self.interval = interval
        self.max_per_interval = max_per_interval
        self.max_keys = max_keys
        self._keys: dict[Hashable, list[float]] = {}  # key -> [time of its last line, lines suppressed since]
        self._window_start = float("-inf")
        self._window_count = 0
        self._dropped = 0  # lines refused by the global budget, reported with the next line logged

    def allow(self, key: Hashable) -> int | None:
        """None: suppress this line. A number: log it, mentioning that many lines suppressed before it."""
        now = time.monotonic()
        if now - self._window_start >= self.interval:
            self._window_start = now
            self._window_count = 0
        entry = self._keys.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return None
        if self._window_count >= self.max_per_interval:
            self._dropped += 1
            return None
        self._window_count += 1
        suppressed = self._dropped + (int(entry[1]) if entry is not None else 0)
        self._dropped = 0
        if entry is None:
            if len(self._keys) >= self.max_keys:
                self._forget_old(now)
            self._keys[key] = [now, 0]
        else:
            entry[0], entry[1] = now, 0
        return suppressed

    def _forget_old(self, now: float) -> None:
        # Keys whose interval has passed carry no state worth keeping but their count; dropping them bounds memory.
        for key in [k for k, (last, _) in self._keys.items() if now - last >= self.interval]:
            del self._keys[key]
        while len(self._keys) >= self.max_keys:
            del self._keys[next(iter(self._keys))]
