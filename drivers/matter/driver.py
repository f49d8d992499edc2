"""Commissionable Matter appliances: identified from their adverts, adopted by commissioning them.

The inbox key is the vendor id, product id and discriminator (``fff1-8000-912``): what both the mDNS TXT
records (``VP``, ``D``) and the BLE advert (service data 0xFFF6) carry, so one appliance heard both ways is
one entry, and it stays the same across commissioning windows (whose mDNS instance name is random).
Adopting one commissions it with the household's setup code through the hub's ``matter`` companion (the
matter-server client); from then on the companion owns the node's devices and entities, and this
connection only remembers the node id (``learned_data``) and forwards commands.
BLE commissioning (onto Wi-Fi or Thread) is matter-server's and needs a Bluetooth adapter it is given.
"""

from __future__ import annotations

from typing import Any

from qilu_hub.sdk import (
    BleInfo,
    CommandError,
    Context,
    DeviceConnection,
    DeviceContext,
    DiscoveredAppliance,
    DiscoveryInfo,
    Driver,
    Entity,
    MdnsInfo,
)

from .manifest import MANIFEST, MATTER_BLE_SERVICE


def _int(text: str | None, base: int = 10) -> int | None:
    try:
        return int(text, base) if text is not None else None
    except ValueError:
        return None


def _from_mdns(info: MdnsInfo) -> tuple[int, int | None, int | None, str | None] | None:
    # TXT keys are case-insensitive (RFC 6763); the hub hands them over lowercased.
    if not info.type.startswith("_matterc._udp"):
        return None  # operational: already on a fabric, reached through matter-server
    discriminator = _int(info.properties.get("d"))
    if discriminator is None or not 0 <= discriminator < 4096:
        return None
    vendor_text, _, product_text = (info.properties.get("vp") or "").partition("+")
    return discriminator, _int(vendor_text), _int(product_text), info.properties.get("dn") or None


def _from_ble(info: BleInfo) -> tuple[int, int | None, int | None, str | None] | None:
    data = info.service_data.get(MATTER_BLE_SERVICE)
    # Matter core spec 5.4.2.5.6: opcode 0 (commissionable), 12-bit discriminator + 4-bit version, VID, PID
    if data is None or len(data) < 7 or data[0] != 0:
        return None
    field = int.from_bytes(data[1:3], "little")
    return field & 0x0FFF, int.from_bytes(data[3:5], "little"), int.from_bytes(data[5:7], "little"), None


class MatterConnection(DeviceConnection):
    def __init__(self, context: DeviceContext, appliance: DiscoveredAppliance) -> None:
        self.context = context
        self.appliance = appliance

    def _companion(self) -> Any:
        companion = self.context.companion("matter")
        if companion is None:
            raise ConnectionError("Matter is not configured: add a matter: section (server: managed, or url)")
        return companion

    async def async_start(self) -> None:
        companion = self._companion()
        await companion.async_wait_connected()
        node_id = self.appliance.data.get("node_id")
        if isinstance(node_id, int):
            return  # commissioned before: the companion maps the node from matter-server's storage
        code = self.context.setup_code()
        if code is None:
            raise ConnectionError(f"{self.appliance.title}: no setup code to commission it with")
        node_id = await companion.async_commission(code)
        self.learned_data = {"node_id": node_id}
        self.context.forget_setup_code()
        # One appliance, one device: the inbox's device and the node's merge through their shared identifiers.
        self.context.update_device(name=self.appliance.title,
                                   identifiers=[*self.appliance.identifiers, *companion.identifiers_of(node_id)])

    async def async_stop(self) -> None:
        return None

    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        companion = self.context.companion("matter")
        if companion is None:
            raise CommandError("unavailable", "Matter is not configured")
        await companion.async_command(entity, command, args, context)


class MatterDriver(Driver):
    manifest = MANIFEST

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        found = _from_mdns(info) if isinstance(info, MdnsInfo) else _from_ble(info) if isinstance(info, BleInfo) \
            else None
        if found is None:
            return None
        discriminator, vendor, product, name = found
        key = f"{vendor or 0:04x}-{product or 0:04x}-{discriminator}"
        data: dict[str, Any] = {"setup_code": "matter", "availability": "connection", "discriminator": discriminator,
                                "vendor_id": vendor, "product_id": product}
        # No host, port or BLE address: matter-server finds the appliance by its discriminator, and an address
        # that changes between windows must not read as a claimed move of an adopted appliance.
        return DiscoveredAppliance(
            key=key, title=name or f"Matter appliance {key}", identifiers=(("matter", f"commissionable:{key}"),),
            manufacturer=None, model=None, data=data)

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        return MatterConnection(context, appliance)
