"""Per-device limits on the log lines of the BLE parser libraries.

bthome-ble logs an ERROR for every advert with an unknown BTHome version, an unknown
object or a failed decryption; xiaomi-ble an INFO for every advert of an unknown product
or object. Anyone in radio range can send such adverts many times a second, so each
device (the address or name the library puts first in the line) may log a given line
once an hour, and all devices together 20 lines an hour (addresses are free to forge);
the next line let through says how many were left out. Debug lines pass: they cost
nothing unless someone asked for them.
"""

from __future__ import annotations

import logging

from ..log_limit import LogLimiter

__all__ = ["ParserLogFilter", "limit_parser_log"]


class ParserLogFilter(logging.Filter):
    def __init__(self, interval: float = 3600.0, max_per_interval: int = 20) -> None:
        super().__init__()
        self.limiter = LogLimiter(interval=interval, max_per_interval=max_per_interval)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        device = str(args[0]) if args else ""
        suppressed = self.limiter.allow((str(record.msg), device))
        if suppressed is None:
            return False
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} similar lines suppressed)"
        return True


_FILTERS: dict[str, ParserLogFilter] = {}


def limit_parser_log(logger_name: str) -> ParserLogFilter:
    """Attach one filter per library logger, once, whichever driver asks first."""
    flt = _FILTERS.get(logger_name)
    if flt is None:
        flt = _FILTERS[logger_name] = ParserLogFilter()
        logging.getLogger(logger_name).addFilter(flt)
    return flt
