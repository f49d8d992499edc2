"""MiBeacon (Xiaomi BLE) advertisement encoding, unencrypted v3 frames as sold in the LYWSDCGQ sensor.

Frame: frame control (LE16), product id (LE16), frame counter, reversed MAC, then objects
(type LE16, length, value). Layout as documented by the open ble_monitor project's MiBeacon notes.
"""

from __future__ import annotations

import struct

SERVICE_UUID = "0000fe95-0000-1000-8000-00805f9b34fb"
PRODUCT_LYWSDCGQ = 0x01AA
# version 3 (bits 12-15), object included (bit 6), MAC included (bit 4); no encryption, not a mesh node.
FRAME_CONTROL = (3 << 12) | (1 << 6) | (1 << 4)


def encode(mac: str, counter: int, *, temperature: float | None = None, humidity: float | None = None,
           battery: int | None = None, product_id: int = PRODUCT_LYWSDCGQ) -> bytes:
    mac_bytes = bytes.fromhex(mac.replace(":", ""))[::-1]
    out = bytearray(struct.pack("<HHB", FRAME_CONTROL, product_id, counter & 0xFF)) + mac_bytes
    if temperature is not None and humidity is not None:
        out += struct.pack("<HBhH", 0x100D, 4, round(temperature * 10), round(humidity * 10))
    elif temperature is not None:
        out += struct.pack("<HBh", 0x1004, 2, round(temperature * 10))
    if battery is not None:
        out += struct.pack("<HBB", 0x100A, 1, battery)
    return bytes(out)
