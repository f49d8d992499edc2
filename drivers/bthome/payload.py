"""BTHome v2 advertisement encoding (bthome.io/format): what a BTHome sensor puts in its service data."""

from __future__ import annotations

import struct

SERVICE_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"
DEVICE_INFO_V2_PLAIN = 0x40  # bits 5-7: version 2; bit 0: not encrypted; bit 2: regular interval

# object id -> (struct format, factor), from the BTHome v2 object table.
OBJECTS: dict[str, tuple[int, str, float]] = {
    "packet_id": (0x00, "<B", 1),
    "battery": (0x01, "<B", 1),
    "temperature": (0x02, "<h", 0.01),
    "humidity": (0x03, "<H", 0.01),
    "illuminance": (0x05, "<I", 0.01),  # uint24, packed by hand
    "motion": (0x21, "<B", 1),
    "window": (0x2D, "<B", 1),
}


def encode(values: dict[str, float | int | bool]) -> bytes:
    """Service data for ``values``; objects are written in ascending id order, as the format requires."""
    out = bytearray([DEVICE_INFO_V2_PLAIN])
    for name, (object_id, fmt, factor) in sorted(OBJECTS.items(), key=lambda item: item[1][0]):
        if name not in values:
            continue
        raw = round(float(values[name]) / factor)
        out.append(object_id)
        if name == "illuminance":
            out += raw.to_bytes(3, "little")
        else:
            out += struct.pack(fmt, raw)
    return bytes(out)
