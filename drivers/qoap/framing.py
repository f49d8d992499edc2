"""QOAP BLE framing (docs/appliance-profile.md §7.2): one msgpack message split into GATT-sized frames.

Byte 0 of every frame is the sequence number (0-127) with bit 7 set on the last frame; the
rest is the next slice of the message. A one-frame message is ``0x80`` followed by the payload.
"""

from __future__ import annotations

LAST = 0x80
MAX_FRAMES = 128
MAX_READ_FRAME = 512  # ATT's longest attribute value (Core Spec Vol 3 Part F 3.2.9)


class FrameError(ValueError):
    """A message too long to frame, or frames out of sequence."""


def encode_frames(payload: bytes, frame_size: int) -> list[bytes]:
    """Split ``payload`` into frames of at most ``frame_size`` bytes, header included."""
    if frame_size < 2:
        raise FrameError(f"frame size {frame_size} leaves no room for data")
    chunk = frame_size - 1
    count = max(1, -(-len(payload) // chunk))
    if count > MAX_FRAMES:
        raise FrameError(f"{len(payload)} bytes need {count} frames of {frame_size}; at most {MAX_FRAMES}")
    return [bytes([i | (LAST if i == count - 1 else 0)]) + payload[i * chunk:(i + 1) * chunk] for i in range(count)]


class Reassembler:
    """Collects frames into messages. Frames before a sequence-0 frame are skipped (a reader that joins
    mid-message, or a cursor left mid-way by an earlier connection); a gap drops the partial message."""

    __slots__ = ("_expect", "_parts", "dropped")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._expect: int | None = None  # None: waiting for a first frame
        self.dropped = 0

    def feed(self, frame: bytes) -> bytes | None:
        """Add one frame; returns the whole message when this was its last frame."""
        if not frame:
            self.dropped += 1
            return None
        seq, last = frame[0] & ~LAST, bool(frame[0] & LAST)
        if seq == 0:
            if self._expect not in (None, 0):
                self.dropped += 1  # a new message began before the previous one ended
            self._parts = []
        elif seq != self._expect:
            if self._expect is not None:
                self.dropped += 1
            self._parts, self._expect = [], None
            return None
        self._parts.append(frame[1:])
        if last:
            message, self._parts, self._expect = b"".join(self._parts), [], None
            return message
        self._expect = seq + 1
        return None
