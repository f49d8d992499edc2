"""Checks on what clients send, shared by REST and both WebSocket protocols.

A hostile client can send JSON or msgpack that parses but breaks code further on: nesting a
few hundred levels deep leaves the handler too little stack (Python raises ``RecursionError``
somewhere inside a service call), and a lone UTF-16 surrogate (``"\\ud800"``) is a valid JSON
escape that no UTF-8 encoder accepts, so the first answer or log line quoting it fails. Both are
refused where the message is decoded, with :class:`BadInput`, and cost one rate-limited log
line, never a traceback.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from ..log_limit import LogLimiter

__all__ = ["MAX_NESTING", "BadInput", "check_nesting", "loads_json", "log_refused"]

_LOGGER = logging.getLogger("qilu_hub.api.input")

# Home Assistant messages and service data nest a handful of levels (target → entity_id → list);
# labels and stream commands fewer. Far below what the decoders or Python's stack allow.
MAX_NESTING = 32

# A JSON escape for a UTF-16 surrogate half. Valid pairs decode to one character and pass the check
# below; only messages with such an escape pay for it.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

_LOG_LIMIT = LogLimiter()


class BadInput(ValueError):
    """A message that decodes but is refused; ``str()`` is the reason to send back."""


def check_nesting(value: Any, limit: int = MAX_NESTING) -> None:
    """Raise :class:`BadInput` when lists/maps nest deeper than ``limit``. Iterative: no recursion to exhaust."""
    if not isinstance(value, dict | list):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    raise BadInput(f"nested deeper than {limit} levels")
                stack.append((child, depth + 1))


def loads_json(data: bytes | str) -> Any:
    """``json.loads`` for untrusted input: strict UTF-8, bounded nesting, no lone surrogates.

    Raises :class:`BadInput` for those, ``ValueError`` for malformed JSON.
    """
    if isinstance(data, bytes | bytearray):
        # json.loads(bytes) would decode with "surrogatepass", letting encoded surrogates in unescaped.
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput("text is not valid UTF-8") from None
    try:
        value = json.loads(data)
    except RecursionError:  # the C decoder counts against Python's recursion limit
        raise BadInput(f"nested deeper than {MAX_NESTING} levels") from None
    check_nesting(value)
    if _SURROGATE_ESCAPE.search(data) is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput("text holds a lone UTF-16 surrogate (\\ud800-\\udfff), which has no UTF-8 form") from None
    return value


def log_refused(where: str, peer: str, reason: str) -> None:
    """One WARNING line per peer and minute (with a count of those left out) for refused input."""
    suppressed = _LOG_LIMIT.allow(peer)
    if suppressed is None:
        return
    more = f" ({suppressed} more refused since the last line)" if suppressed else ""
    _LOGGER.warning("%s: refused a message from %s: %s%s", where, peer, reason, more)
