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


# The most Home Assistant messages in one coalesced array: small enough for the client to start parsing while
# the next ones are on the way, large enough to save most per-frame costs.
COALESCE_MAX = 64


def ha_batch(batch: list[tuple[bytes, bytes]], coalesce: bool) -> bytes:
    """Home Assistant messages, each ``prefix + body``, as the bytes of their text frames: one frame each, or
    (``coalesce_messages``) JSON arrays of up to ``COALESCE_MAX`` messages, one frame per array."""
    parts: list[bytes] = []
    if coalesce and len(batch) > 1:
        for i in range(0, len(batch), COALESCE_MAX):
            chunk = batch[i:i + COALESCE_MAX]
            if len(chunk) == 1:
                prefix, body = chunk[0]
                parts += (header(len(prefix) + len(body)), prefix, body)
                continue
            array: list[bytes] = [b"["]
            size = len(chunk) + 1  # brackets and commas
            for prefix, body in chunk:
                array += (prefix, body, b",")
                size += len(prefix) + len(body)
            array[-1] = b"]"
            parts.append(header(size))
            parts += array
    else:
        for prefix, body in batch:
            parts += (header(len(prefix) + len(body)), prefix, body)
    return b"".join(parts)
