"""BTHome v2 advertisement encoding (bthome.io/format): what a BTHome sensor puts in its service data.

Encrypted adverts follow bthome.io/encryption: AES-CCM with the sensor's 16-byte bind key, a 4-byte
tag (the "MIC") and no associated data; the nonce is MAC (6 bytes, as written) + UUID 0xFCD2 (2 bytes,
little-endian) + device information byte + counter (4 bytes, little-endian). The service data is the
device information byte, the encrypted objects, the counter and the MIC.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from .manifest import SERVICE_UUID

__all__ = ["SERVICE_UUID", "encode", "encode_encrypted", "is_encrypted"]

DEVICE_INFO_V2_PLAIN = 0x40  # bits 5-7: version 2; bit 0: not encrypted; bit 2: regular interval
ENCRYPTED_FLAG = 0x01  # device information bit 0
UUID16_LE = bytes.fromhex("d2fc")

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
    return bytes([DEVICE_INFO_V2_PLAIN]) + _objects(values)


def encode_encrypted(values: dict[str, float | int | bool], mac: str, key: bytes, counter: int) -> bytes:
    """Encrypted service data for ``values`` (bthome.io/encryption), as a sensor with bind key ``key`` sends it."""
    device_info = DEVICE_INFO_V2_PLAIN | ENCRYPTED_FLAG
    counter_bytes = (counter & 0xFFFFFFFF).to_bytes(4, "little")
    nonce = bytes.fromhex(mac.replace(":", "")) + UUID16_LE + bytes([device_info]) + counter_bytes
    sealed = AESCCM(key, tag_length=4).encrypt(nonce, _objects(values), None)  # ciphertext + 4-byte MIC
    return bytes([device_info]) + sealed[:-4] + counter_bytes + sealed[-4:]


def is_encrypted(service_data: bytes) -> bool:
    """Whether the advert says it is encrypted (bit 0 of the device information byte)."""
    return bool(service_data) and bool(service_data[0] & ENCRYPTED_FLAG)


def _objects(values: dict[str, float | int | bool]) -> bytes:
    out = bytearray()
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
