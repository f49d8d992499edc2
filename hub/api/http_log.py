"""aiohttp's server log, with refused malformed requests cut to one rate-limited line per peer.

aiohttp logs a full traceback (ERROR) for every request its parser refuses, and any device
on the LAN can send such requests in a loop. A refused request is the client's fault, not
ours: it becomes one WARNING line naming the peer and the parser's reason, at most once a
minute per peer. Errors raised by our own handlers keep their traceback: those are bugs.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from ..log_limit import LogLimiter

__all__ = ["HttpErrorLog"]

_TOKEN = re.compile(r"q[ht]_[A-Za-z0-9_\-]+")  # a token or ticket inside a refused header must not reach the log


class HttpErrorLog(logging.LoggerAdapter[logging.Logger]):
    """Passed to aiohttp as the server ``logger``; everything but refused requests goes through unchanged."""

    def __init__(self, logger: logging.Logger | None = None, limiter: LogLimiter | None = None) -> None:
        super().__init__(logger or logging.getLogger("qilu_hub.api.http"), {})
        self.limiter = limiter or LogLimiter()

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            self._refused(level, args, exc)
            return
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs

    def _refused(self, level: int, args: tuple[Any, ...], exc: HttpProcessingError) -> None:
        # aiohttp's call is ("Error handling request from %s", peer); the peer is the key.
        peer = str(args[0]) if args else "?"
        suppressed = self.limiter.allow(peer)
        if suppressed is None:
            return
        reason = _TOKEN.sub("q?_…", str(exc.message or type(exc).__name__))
        if len(reason) > 120:
            reason = reason[:120] + "…"
        more = f" ({suppressed} similar lines suppressed)" if suppressed else ""
        self.logger.log(min(level, logging.WARNING), "Refused malformed HTTP request from %s: %s %s%s",
                        peer, exc.code, reason, more)
