"""Turning raw radio data into :class:`MdnsInfo` / :class:`BleInfo`, refusing what is malformed.

Appliances send whatever their firmware makes; these functions never raise on bad
input. They drop what is invalid and say why through :class:`ParseStats`, so that a
broken TXT record or a flood of oversize adverts is counted and logged, never fatal.

Limits come from the specs: a DNS-SD TXT string is at most 255 bytes and keys are
printable US-ASCII without "=" (RFC 6763 section 6.4, compared case-insensitively);
an AD structure's length is one byte (Core Spec Vol 3 Part C 11), a device name at
most 248 bytes (Vol 3 Part C 12.1), company identifiers 16 bits.
"""

from __future__ import annotations

import functools
import re
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .models import BleInfo, MdnsInfo

MAX_TXT_ENTRIES = 64
MAX_TXT_BYTES = 255
MAX_AD_BYTES = 255
MAX_AD_ENTRIES = 32
MAX_NAME_BYTES = 248

_ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
_UUID128 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"


class ParseStats(Counter[str]):
    """Counts of what was dropped, by reason (``txt_key_invalid``, ``ble_address_invalid``, ...)."""


def _txt_key(raw: Any) -> str | None:
    if not isinstance(raw, bytes | str):
        return None
    key = raw.decode("ascii", "strict") if isinstance(raw, bytes) and raw.isascii() else raw
    if not isinstance(key, str) or not key or len(key) > MAX_TXT_BYTES:
        return None
    if any(c == "=" or not (" " <= c <= "~") for c in key):
        return None
    return key.lower()


def decode_txt(properties: Mapping[Any, Any], stats: ParseStats | None = None) -> dict[str, str]:
    """TXT properties as ``{lowercase key: text}``; invalid keys and oversize values are dropped.

    A key without a value (``b"flag"``) becomes ``""``. Values that are not UTF-8 are
    kept with replacement characters: drivers match on text, and one bad byte should
    not hide the whole appliance.
    """
    out: dict[str, str] = {}
    for raw_key, raw_value in properties.items():
        if len(out) >= MAX_TXT_ENTRIES:
            if stats is not None:
                stats["txt_too_many"] += 1
            break
        key = _txt_key(raw_key)
        if key is None:
            if stats is not None:
                stats["txt_key_invalid"] += 1
            continue
        if raw_value is None:
            value = ""
        elif isinstance(raw_value, bytes):
            if len(raw_value) + len(key) + 1 > MAX_TXT_BYTES:
                if stats is not None:
                    stats["txt_value_oversize"] += 1
                continue
            value = raw_value.decode("utf-8", "replace")
        elif isinstance(raw_value, str):
            if len(raw_value) > MAX_TXT_BYTES:
                if stats is not None:
                    stats["txt_value_oversize"] += 1
                continue
            value = raw_value
        else:
            if stats is not None:
                stats["txt_value_invalid"] += 1
            continue
        if key in out:  # RFC 6763 6.4: only the first occurrence of a key counts
            if stats is not None:
                stats["txt_key_duplicate"] += 1
            continue
        out[key] = value
    return out


def mdns_info(
    type_: str, name: str, server: str | None, addresses: list[str], port: int | None,
    properties: Mapping[Any, Any], interface: str | None = None, stats: ParseStats | None = None,
) -> MdnsInfo | None:
    """A resolved service as :class:`MdnsInfo`, or None when it is unusable (no port, no host)."""
    if not isinstance(port, int) or not 0 < port < 65536:
        if stats is not None:
            stats["mdns_port_invalid"] += 1
        return None
    if not server and not addresses:
        if stats is not None:
            stats["mdns_no_host"] += 1
        return None
    return MdnsInfo(type_, name, server or "", tuple(addresses), port, decode_txt(properties, stats), interface)


def normalize_uuid(value: Any) -> str | None:
    """Lowercase 128-bit form; 16/32-bit short forms are expanded with the Bluetooth base UUID."""
    if not isinstance(value, str):
        return None
    return _normalize_uuid(value)


@functools.lru_cache(maxsize=4096)  # adverts repeat a handful of UUIDs; the regex is the hot spot
def _normalize_uuid(value: str) -> str | None:
    value = value.strip().lower()
    if len(value) in (4, 8) and all(c in "0123456789abcdef" for c in value):
        return value.rjust(8, "0") + _BASE_UUID_TAIL
    return value if _UUID128.match(value) else None


@functools.lru_cache(maxsize=8192)  # a household has a few hundred addresses; validate each once
def _address(address: str) -> str | None:
    address = address.upper()
    return address if _ADDRESS.match(address) else None


def ble_info(
    address: Any, name: Any, rssi: Any, manufacturer_data: Mapping[Any, Any], service_data: Mapping[Any, Any],
    service_uuids: Any, adapter: str = "hci0", connectable: bool = True, now: float | None = None,
    stats: ParseStats | None = None,
) -> BleInfo | None:
    """One advert as :class:`BleInfo`; None (and a count) when the address is unusable.

    Bad parts (oversize payloads, ids out of range, bad UUIDs) are dropped one by one and
    the rest of the advert is kept.
    """
    address = _address(address) if type(address) is str else None
    if address is None:
        if stats is not None:
            stats["ble_address_invalid"] += 1
        return None
    if type(rssi) is not int or not -127 <= rssi <= 20:
        rssi = -127
    if name is not None and (type(name) is not str or (
            len(name) > MAX_NAME_BYTES // 4 and len(name.encode("utf-8", "replace")) > MAX_NAME_BYTES)):
        if stats is not None:
            stats["ble_name_invalid"] += 1
        name = None
    mfr: dict[int, bytes] = {}
    for company, payload in manufacturer_data.items():
        # type() checks, not isinstance: this runs for every advert, and bool is not a company id.
        if (type(company) is not int or not 0 <= company <= 0xFFFF or type(payload) not in (bytes, bytearray)
                or len(payload) > MAX_AD_BYTES or len(mfr) >= MAX_AD_ENTRIES):
            if stats is not None:
                stats["ble_manufacturer_data_invalid"] += 1
            continue
        mfr[company] = payload if type(payload) is bytes else bytes(payload)
    svc: dict[str, bytes] = {}
    for uuid, payload in service_data.items():
        norm = normalize_uuid(uuid)
        if (norm is None or not isinstance(payload, bytes | bytearray) or len(payload) > MAX_AD_BYTES
                or len(svc) >= MAX_AD_ENTRIES):
            if stats is not None:
                stats["ble_service_data_invalid"] += 1
            continue
        svc[norm] = bytes(payload)
    uuids: list[str] = []
    for uuid in service_uuids if isinstance(service_uuids, list | tuple) else ():
        norm = normalize_uuid(uuid)
        if norm is None or len(uuids) >= MAX_AD_ENTRIES:
            if stats is not None:
                stats["ble_service_uuid_invalid"] += 1
            continue
        uuids.append(norm)
    return BleInfo(address, name, rssi, mfr, svc, tuple(uuids), connectable, adapter,
                   time.time() if now is None else now)
