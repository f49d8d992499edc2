"""BTHome v2 BLE sensors, parsed by bthome-ble. Passive: adverts only, no connection."""

from __future__ import annotations

from bthome_ble import BTHomeBluetoothDeviceData

from qilu_hub.sdk import (
    BleInfo,
    DeviceConnection,
    DeviceContext,
    DiscoveredAppliance,
    DiscoveryInfo,
    Driver,
    PassiveBleConnection,
    limit_parser_log,
    parser_supports,
)

from .manifest import MANIFEST
from .payload import SERVICE_UUID, is_encrypted


class BTHomeDriver(Driver):
    manifest = MANIFEST

    def __init__(self) -> None:
        super().__init__()
        limit_parser_log("bthome_ble.parser")  # a neighbour's hostile adverts must not cost a log line each

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        # An empty payload carries no BTHome header byte; bthome_ble would raise IndexError on it.
        if not isinstance(info, BleInfo) or not info.service_data.get(SERVICE_UUID):
            return None
        parser = BTHomeBluetoothDeviceData()
        if not parser_supports(parser, info):
            return None
        encrypted = bool(info.service_data[SERVICE_UUID][0] & 0x01)
        return DiscoveredAppliance(
            key=info.address.upper(), title=parser.title or f"BTHome {info.address[-5:]}",
            connections=(("ble", info.address),), identifiers=(("bthome", info.address.upper()),),
            manufacturer="BTHome", model="BTHome sensor", data={"encrypted": encrypted},
        )

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        key = context.bind_key()  # encrypted sensors (bthome.io/encryption)
        return PassiveBleConnection(
            context, appliance, lambda: BTHomeBluetoothDeviceData(key.reveal() if key else None),
            is_encrypted=_encrypted, has_bind_key=key is not None)


def _encrypted(info: BleInfo) -> bool:
    return is_encrypted(info.service_data.get(SERVICE_UUID, b""))
