"""MiBeacon (Xiaomi BLE) advertisement encoding: unencrypted v3 frames as sold in the LYWSDCGQ sensor, and
encrypted v5 frames as the LYWSD03MMC sends them with stock firmware.

Frame: frame control (LE16), product id (LE16), frame counter, reversed MAC, then objects
(type LE16, length, value). Layout as documented by the open ble_monitor project's MiBeacon notes.

Encrypted (v4/v5) frames, per the same notes and Xiaomi's MiBeacon protocol description: the objects
are sealed with AES-CCM under the device's 16-byte bind key, 4-byte tag, associated data ``0x11``;
the nonce is the reversed MAC (6) + product id (LE16) + frame counter (1) + a 3-byte extended counter;
the frame ends with the extended counter and the tag.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from .manifest import SERVICE_UUID

__all__ = ["SERVICE_UUID", "encode", "encode_encrypted", "is_encrypted"]

PRODUCT_LYWSDCGQ = 0x01AA
PRODUCT_LYWSD03MMC = 0x055B
ENCRYPTED_BIT = 1 << 3
# version 3 (bits 12-15), object included (bit 6), MAC included (bit 4); no encryption, not a mesh node.
FRAME_CONTROL = (3 << 12) | (1 << 6) | (1 << 4)
# version 5, standard certification (auth mode 2, bits 10-11), object and MAC included, encrypted.
FRAME_CONTROL_V5_ENCRYPTED = (5 << 12) | (2 << 10) | (1 << 6) | (1 << 4) | ENCRYPTED_BIT
ASSOCIATED_DATA = b"\x11"


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


def encode_encrypted(mac: str, counter: int, key: bytes, ext_counter: int, *, temperature: float | None = None,
                     humidity: float | None = None, battery: int | None = None,
                     product_id: int = PRODUCT_LYWSD03MMC) -> bytes:
    """A v5 encrypted frame carrying one or more of temperature (0x1004), humidity (0x1006), battery (0x100A)."""
    mac_reversed = bytes.fromhex(mac.replace(":", ""))[::-1]
    head = struct.pack("<HHB", FRAME_CONTROL_V5_ENCRYPTED, product_id, counter & 0xFF)
    objects = bytearray()
    if temperature is not None:
        objects += struct.pack("<HBh", 0x1004, 2, round(temperature * 10))
    if humidity is not None:
        objects += struct.pack("<HBH", 0x1006, 2, round(humidity * 10))
    if battery is not None:
        objects += struct.pack("<HBB", 0x100A, 1, battery)
    ext = (ext_counter & 0xFFFFFF).to_bytes(3, "little")
    nonce = mac_reversed + head[2:5] + ext
    sealed = AESCCM(key, tag_length=4).encrypt(nonce, bytes(objects), ASSOCIATED_DATA)
    return head + mac_reversed + sealed[:-4] + ext + sealed[-4:]


def is_encrypted(service_data: bytes) -> bool:
    """Whether the frame control says the objects are encrypted (bit 3)."""
    return len(service_data) >= 2 and bool(service_data[0] & ENCRYPTED_BIT)
