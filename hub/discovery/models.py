"""What discovery sources report, and the matchers drivers declare in their manifests.

Both are plain data: a driver's manifest says which adverts it wants, and the
discovery manager matches adverts against every installed manifest without
knowing anything else about the driver.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MdnsInfo:
    """A resolved mDNS/DNS-SD service."""

    type: str  # "_shelly._tcp.local."
    name: str  # "shellyplus1-a8032ab12345._shelly._tcp.local."
    server: str  # "shellyplus1-a8032ab12345.local."
    addresses: tuple[str, ...]
    port: int
    properties: Mapping[str, str] = field(default_factory=dict)
    interface: str | None = None
    time: float = field(default_factory=time.time)

    @property
    def source(self) -> str:
        return "mdns"

    @property
    def host(self) -> str:
        return self.addresses[0] if self.addresses else self.server.rstrip(".")


@dataclass(frozen=True, slots=True)
class BleInfo:
    """One BLE advertisement (after merging scan response), as bleak reports it."""

    address: str  # "AA:BB:CC:DD:EE:FF"
    name: str | None
    rssi: int
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    service_data: Mapping[str, bytes] = field(default_factory=dict)
    service_uuids: tuple[str, ...] = ()
    connectable: bool = True
    adapter: str = "hci0"
    time: float = field(default_factory=time.time)

    @property
    def source(self) -> str:
        return "ble"


DiscoveryInfo = MdnsInfo | BleInfo


@dataclass(frozen=True, slots=True)
class MdnsMatcher:
    """Matches a service type, and optionally TXT properties (values are glob patterns)."""

    type: str
    properties: Mapping[str, str] = field(default_factory=dict)

    def matches(self, info: MdnsInfo) -> bool:
        if info.type.rstrip(".").removesuffix(".local") != self.type.rstrip(".").removesuffix(".local"):
            return False
        for key, pattern in self.properties.items():
            value = info.properties.get(key)
            if value is None or not fnmatch.fnmatchcase(value, pattern):
                return False
        return True


@dataclass(frozen=True, slots=True)
class BleMatcher:
    """Every given field must match; unset fields match anything."""

    manufacturer_id: int | None = None
    manufacturer_data_start: bytes = b""
    service_uuid: str | None = None
    service_data_uuid: str | None = None
    local_name: str | None = None  # glob pattern
    connectable: bool | None = None

    def matches(self, info: BleInfo) -> bool:
        if self.manufacturer_id is not None:
            data = info.manufacturer_data.get(self.manufacturer_id)
            if data is None or not data.startswith(self.manufacturer_data_start):
                return False
        if self.service_uuid is not None and self.service_uuid.lower() not in info.service_uuids:
            return False
        if self.service_data_uuid is not None and self.service_data_uuid.lower() not in info.service_data:
            return False
        if self.local_name is not None and (info.name is None or not fnmatch.fnmatchcase(info.name, self.local_name)):
            return False
        return self.connectable is None or self.connectable == info.connectable
