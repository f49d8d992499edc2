"""BTHome v2 BLE sensors, parsed by bthome-ble. Passive: adverts only, no connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bthome_ble import BTHomeBluetoothDeviceData

from hub.appliances.bind_keys import BindKeys
from hub.discovery.models import BleInfo, BleMatcher, DiscoveryInfo

from .. import parser_log
from ..base import DeviceConnection, DiscoveredAppliance, Driver, Manifest
from ..ble_passive import PassiveBleConnection, supported
from .payload import SERVICE_UUID, is_encrypted

if TYPE_CHECKING:
    from hub.core import Hub

MANIFEST = Manifest(
    name="bthome",
    version="1.0.0",
    title="BTHome",
    ble=(BleMatcher(service_data_uuid=SERVICE_UUID),),
    capabilities=("temperature", "humidity", "battery", "illuminance", "pressure", "co2", "motion", "window",
                  "door", "moisture"),
    quality="silver",
    iot_class="local_push",
    auto_adopt=False,
    requirements=("bthome-ble>=3.8",),
    documentation="https://bthome.io/format/",
)


class BTHomeDriver(Driver):
    manifest = MANIFEST

    def __init__(self) -> None:
        super().__init__()
        parser_log.install("bthome_ble.parser")  # a neighbour's hostile adverts must not cost a log line each

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        # An empty payload carries no BTHome header byte; bthome_ble would raise IndexError on it.
        if not isinstance(info, BleInfo) or not info.service_data.get(SERVICE_UUID):
            return None
        parser = BTHomeBluetoothDeviceData()
        if not supported(parser, info):
            return None
        encrypted = bool(info.service_data[SERVICE_UUID][0] & 0x01)
        return DiscoveredAppliance(
            key=info.address.upper(), title=parser.title or f"BTHome {info.address[-5:]}",
            connections=(("ble", info.address),), identifiers=(("bthome", info.address.upper()),),
            manufacturer="BTHome", model="BTHome sensor", data={"encrypted": encrypted},
        )

    def connect(self, hub: Hub, device_id: str, appliance: DiscoveredAppliance) -> DeviceConnection:
        key = BindKeys(hub.storage).get("bthome", appliance.key)  # encrypted sensors (bthome.io/encryption)
        return PassiveBleConnection(hub, device_id, appliance, "bthome",
                                    lambda: BTHomeBluetoothDeviceData(key.reveal() if key else None),
                                    is_encrypted=_encrypted, has_bind_key=key is not None)


def _encrypted(info: BleInfo) -> bool:
    return is_encrypted(info.service_data.get(SERVICE_UUID, b""))
