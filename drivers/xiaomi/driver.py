"""Xiaomi MiBeacon BLE sensors, parsed by xiaomi-ble. Passive; encrypted (v4/v5) models need a bind key."""

from __future__ import annotations

from xiaomi_ble import XiaomiBluetoothDeviceData

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


class XiaomiDriver(Driver):
    manifest = MANIFEST

    def __init__(self) -> None:
        super().__init__()
        limit_parser_log("xiaomi_ble.parser")  # it logs an INFO line per advert of an unknown product

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        if not isinstance(info, BleInfo):
            return None
        parser = XiaomiBluetoothDeviceData()
        if not parser_supports(parser, info):
            return None
        return DiscoveredAppliance(
            key=info.address.upper(),
            title=f"Xiaomi {getattr(parser, 'device_type', None) or 'sensor'} {info.address[-5:].replace(':', '')}",
            connections=(("ble", info.address),), identifiers=(("xiaomi", info.address.upper()),),
            manufacturer="Xiaomi", model=getattr(parser, "device_type", None) or "MiBeacon sensor",
            data={"encrypted": _encrypted(info)},
        )

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        key = context.bind_key()
        return PassiveBleConnection(
            context, appliance, lambda: XiaomiBluetoothDeviceData(key.reveal() if key else None),
            is_encrypted=_encrypted, has_bind_key=key is not None)


def _encrypted(info: BleInfo) -> bool:
    return is_encrypted(info.service_data.get(SERVICE_UUID, b""))
