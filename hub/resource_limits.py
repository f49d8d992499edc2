"""Process-wide resource limits: the open-file limit, and a quiet log when it is reached anyway.

Every connection, database and driver socket costs a file descriptor. Linux starts most
processes with a soft limit of 1024 while the hard limit is far higher; :func:`raise_open_file_limit`
takes the soft limit up to the hard one (bounded) so that the hub runs out later, and the API sizes
its connection cap from what it got (:func:`connection_budget`).

When the limit is reached anyway, asyncio reports every failed ``accept()`` through the loop's
exception handler with a traceback, up to a backlog's worth per loop tick: tens of thousands of
lines a second. :class:`AcceptErrorFilter` turns those into one line per interval with a count.
"""

from __future__ import annotations

import logging
from typing import Final

from .log_limit import LogLimiter

try:
    import resource
except ImportError:  # Windows: no rlimits to raise
    resource = None  # type: ignore[assignment]

__all__ = ["AcceptErrorFilter", "connection_budget", "install_accept_error_filter", "open_file_limit",
           "raise_open_file_limit"]

_LOGGER = logging.getLogger(__name__)

# Beyond this the hub gains nothing, and code that still uses select() breaks on descriptors over 1023 anyway
# only when it has that many open; 65,536 is what systemd gives services that ask for "more".
MAX_SOFT_LIMIT: Final = 65536
# Descriptors the API leaves for the rest of the hub (databases, drivers, discovery, MQTT): at least this many,
# and at least a quarter of the limit.
RESERVED_FILES: Final = 64
_ACCEPT_MESSAGE: Final = "socket.accept() out of system resource"
# After each failed accept asyncio schedules a retry of the listening socket, one per connection it tried; those
# still pending when the server closes fail on the closed socket, each with a traceback.
_RETRY_ON_CLOSED: Final = "Exception in callback BaseSelectorEventLoop._start_serving("


def open_file_limit() -> int | None:
    """The soft limit on open files now, or None where there is none to read (or it is unlimited)."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def raise_open_file_limit(ceiling: int = MAX_SOFT_LIMIT) -> int | None:
    """Raise the soft open-file limit toward the hard limit (never above ``ceiling``); return the soft limit."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as err:  # a container or a policy may refuse; the old limit still works
            _LOGGER.debug("Open-file limit stays at %d (hard %s): %s", soft, hard, err)
            return int(soft)
        _LOGGER.debug("Open-file limit raised from %d to %d (hard %s)", soft, target, hard)
        return target
    _LOGGER.debug("Open-file limit is %s (hard %s)", soft, hard)
    return open_file_limit()


def connection_budget(configured: int, limit: int | None = None) -> int:
    """How many client connections the API may hold: ``configured``, lowered to leave files for the rest."""
    limit = open_file_limit() if limit is None else limit
    if limit is None:
        return configured
    return max(1, min(configured, limit - max(RESERVED_FILES, limit // 4)))


class AcceptErrorFilter(logging.Filter):
    """On the ``asyncio`` logger: failed accepts become one line (no traceback) per interval, with a count."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.limiter = LogLimiter(interval=interval, max_per_interval=1, max_keys=1)

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            return True
        if record.msg.startswith(_RETRY_ON_CLOSED) and record.exc_info and isinstance(record.exc_info[1], ValueError):
            return False  # a retry left over from failed accepts, run after the server closed: nothing to report
        if not record.msg.startswith(_ACCEPT_MESSAGE):
            return True
        suppressed = self.limiter.allow(_ACCEPT_MESSAGE)
        if suppressed is None:
            return False
        exc = record.exc_info[1] if record.exc_info else None
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc or "unknown error")
        more = f"; {suppressed} more since the last report" if suppressed else ""
        record.msg = "Cannot accept connections: %s (open-file limit %s)%s"
        record.args = (reason, open_file_limit(), more)
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


_ACCEPT_FILTER = AcceptErrorFilter()


def install_accept_error_filter() -> AcceptErrorFilter:
    """Attach the filter to the ``asyncio`` logger (once per process; repeated calls are harmless)."""
    logging.getLogger("asyncio").addFilter(_ACCEPT_FILTER)
    return _ACCEPT_FILTER
