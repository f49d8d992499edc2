"""Server-to-client WebSocket frames (RFC 6455 §5.2), for writing a batch with one system call.

aiohttp writes each message with its own ``transport.write`` and, on an idle
socket, its own ``send()`` system call; that call is most of the cost of a small
event. A batch of frames joined into one write costs one call. Server frames are
unmasked and we never compress, so a frame is a 2-10 byte header and the payload.
"""

from __future__ import annotations

import struct

_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack

OP_TEXT = 0x1
OP_BINARY = 0x2


def header(size: int, opcode: int = OP_TEXT) -> bytes:
    """The header of a final, unmasked frame whose payload is ``size`` bytes (the payload follows it)."""
    first = 0x80 | opcode  # FIN
    if size < 126:
        return bytes((first, size))
    if size < 65536:
        return _LEN2(first, 126, size)
    return _LEN8(first, 127, size)


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    return header(len(payload), opcode) + payload
