"""Per-device limits on bthome-ble's log lines.

bthome-ble logs an ERROR for every advert with an unknown BTHome version, an unknown
object or a failed decryption. Anyone in radio range can send such adverts many times a
second, so each device (the address or name the library puts first in the line) may log
once an hour, and all devices together 20 lines an hour (addresses are free to forge); the
next line let through says how many were left out.
"""

from __future__ import annotations

import logging

from hub.log_limit import LogLimiter

__all__ = ["PARSER_LOGGER", "ParserLogFilter", "install"]

PARSER_LOGGER = "bthome_ble.parser"


class ParserLogFilter(logging.Filter):
    def __init__(self, interval: float = 3600.0, max_per_interval: int = 20) -> None:
        super().__init__()
        self.limiter = LogLimiter(interval=interval, max_per_interval=max_per_interval)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True  # debug lines cost nothing unless someone asked for them
        args = record.args if isinstance(record.args, tuple) else ()
        device = str(args[0]) if args else ""
        suppressed = self.limiter.allow((str(record.msg), device))
        if suppressed is None:
            return False
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} similar lines suppressed)"
        return True


_FILTER = ParserLogFilter()


def install() -> ParserLogFilter:
    """Attach the filter to bthome-ble's logger once (idempotent: logging keeps a filter once)."""
    logging.getLogger(PARSER_LOGGER).addFilter(_FILTER)
    return _FILTER
