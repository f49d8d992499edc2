"""A small real driver for discovery tests: implements the SDK's Driver (hub/sdk), no mocks of hub code.

It claims services of type ``_qd<pid>._tcp`` whose TXT has a ``mac``, and BLE adverts
with manufacturer id 0xFFF1; the stable key is the MAC either way, so an appliance
seen over both radios is one inbox entry and one device. Each connection publishes
one switch entity and remembers every discovery update it got.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from qilu_hub.context import Context
from qilu_hub.discovery import BleInfo, BleMatcher, DiscoveryInfo, MdnsInfo, MdnsMatcher
from qilu_hub.model import normalize_connection
from qilu_hub.sdk import DeviceConnection, DeviceContext, DiscoveredAppliance, Driver, Manifest

if TYPE_CHECKING:
    from qilu_hub.model import Entity

# Per process: loopback mDNS is shared by everything on the machine, and another run of the suite (a second
# checkout, a developer beside CI) advertises the same names and would add to every count.
QD_TYPE = f"_qd{os.getpid() % 10**7}._tcp.local."
QD_COMPANY = 0xFFF1


class QdConnection(DeviceConnection):
    def __init__(self, driver: QdDriver, context: DeviceContext, appliance: DiscoveredAppliance) -> None:
        self.driver = driver
        self.context = context
        self.appliance = appliance
        self.updates: list[DiscoveryInfo] = []
        self.entity_id: str | None = None
        self.stopped = False

    async def async_start(self) -> None:
        self.driver.starts += 1
        if self.driver.fail_starts > 0:
            self.driver.fail_starts -= 1
            raise ConnectionError("appliance not answering yet")
        entity = self.context.entity(f"qd:{self.appliance.key}:switch", ("on_off",), self.appliance.title)
        self.entity_id = entity.entity_id
        self.context.set_state(entity.entity_id, "off", {})
        self.driver.connections[self.appliance.key] = self

    async def async_stop(self) -> None:
        self.stopped = True

    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        self.context.set_state(entity.entity_id, "on" if command == "turn_on" else "off", {})

    def discovery_updated(self, info: DiscoveryInfo) -> None:
        self.updates.append(info)


class QdDriver(Driver):
    def __init__(self, auto_adopt: bool = True, name: str = "qdtest", mdns: bool = True, ble: bool = True) -> None:
        self.manifest = Manifest(
            name=name, version="1.0", title="Discovery test appliance",
            mdns=(MdnsMatcher(QD_TYPE, {"mac": "*"}),) if mdns else (),
            ble=(BleMatcher(manufacturer_id=QD_COMPANY),) if ble else (),
            capabilities=("on_off",), auto_adopt=auto_adopt,
        )
        self.connections: dict[str, QdConnection] = {}
        self.starts = 0
        self.fail_starts = 0
        self.identify_calls = 0

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        self.identify_calls += 1
        if isinstance(info, MdnsInfo):
            mac = info.properties.get("mac")
            if not mac:
                return None
            if mac == "boom":
                raise ValueError("a driver bug")
            title = info.properties.get("name") or info.name.split(".")[0]
            data: dict[str, Any] = {"host": info.host, "port": info.port}
            if info.properties.get("encrypted") == "1":  # stands in for an encrypted BLE sensor
                data["encrypted"] = True
        else:
            assert isinstance(info, BleInfo)
            mac, title, data = info.address.lower(), info.name or info.address, {"address": info.address}
        if isinstance(info, MdnsInfo):
            mac = normalize_connection("mac", mac)
        return DiscoveredAppliance(key=f"{self.manifest.name}-{mac}", title=title, identifiers=(("qdtest", mac),),
                                   connections=(("mac", mac),), manufacturer="Qilu Test", model="QD-1", data=data)

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        return QdConnection(self, context, appliance)
