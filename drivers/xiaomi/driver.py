"""Xiaomi MiBeacon BLE sensors, parsed by xiaomi-ble. Passive; encrypted (v4/v5) models need a bind key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xiaomi_ble import XiaomiBluetoothDeviceData

from hub.appliances.bind_keys import BindKeys
from hub.discovery.models import BleInfo, BleMatcher, DiscoveryInfo

from .. import parser_log
from ..base import DeviceConnection, DiscoveredAppliance, Driver, Manifest
from ..ble_passive import PassiveBleConnection, supported
from .payload import SERVICE_UUID, is_encrypted

if TYPE_CHECKING:
    from hub.core import Hub

MANIFEST = Manifest(
    name="xiaomi",
    version="1.0.0",
    title="Xiaomi BLE (MiBeacon)",
    ble=(BleMatcher(service_data_uuid=SERVICE_UUID),),
    capabilities=("temperature", "humidity", "battery", "illuminance", "motion", "moisture", "door"),
    quality="bronze",
    iot_class="local_push",
    requirements=("xiaomi-ble>=0.30",),
    documentation="https://github.com/custom-components/ble_monitor",
)


class XiaomiDriver(Driver):
    manifest = MANIFEST

    def __init__(self) -> None:
        super().__init__()
        parser_log.install("xiaomi_ble.parser")  # it logs an INFO line per advert of an unknown product

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        if not isinstance(info, BleInfo):
            return None
        parser = XiaomiBluetoothDeviceData()
        if not supported(parser, info):
            return None
        return DiscoveredAppliance(
            key=info.address.upper(),
            title=f"Xiaomi {getattr(parser, 'device_type', None) or 'sensor'} {info.address[-5:].replace(':', '')}",
            connections=(("ble", info.address),), identifiers=(("xiaomi", info.address.upper()),),
            manufacturer="Xiaomi", model=getattr(parser, "device_type", None) or "MiBeacon sensor",
            data={"encrypted": _encrypted(info)},
        )

    def connect(self, hub: Hub, device_id: str, appliance: DiscoveredAppliance) -> DeviceConnection:
        key = BindKeys(hub.storage).get("xiaomi", appliance.key)
        return PassiveBleConnection(hub, device_id, appliance, "xiaomi",
                                    lambda: XiaomiBluetoothDeviceData(key.reveal() if key else None),
                                    is_encrypted=_encrypted, has_bind_key=key is not None)


def _encrypted(info: BleInfo) -> bool:
    return is_encrypted(info.service_data.get(SERVICE_UUID, b""))
