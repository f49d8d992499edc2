"""Matching in production: the drivers component dispatches adverts through the indexed matcher, and the one
``identify`` guard contains drivers that return something that is not an appliance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qilu_hub.appliances import ApplianceLifecycle, EntryState
from qilu_hub.core import Hub
from qilu_hub.discovery.models import BleInfo, BleMatcher, DiscoveryInfo, MdnsInfo, MdnsMatcher
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.sdk import DeviceConnection, DeviceContext, DiscoveredAppliance, Driver, Manifest

CONSULTED: list[str] = []  # which drivers' matchers ran, in order


class CountedMdns(MdnsMatcher):
    """A real mDNS matcher that notes each time it is consulted (the index must skip other types)."""

    def matches(self, info: MdnsInfo) -> bool:
        CONSULTED.append(self.type)
        return super().matches(info)


class CountedBle(BleMatcher):
    def matches(self, info: BleInfo) -> bool:
        CONSULTED.append(f"ble:{self.manufacturer_id:#06x}")
        return super().matches(info)


class KindDriver(Driver):
    """Claims one mDNS type and one BLE company; identifies by the TXT ``id`` or the BLE address."""

    def __init__(self, name: str, company: int, returns: Any = None) -> None:
        self.manifest = Manifest(name=name, version="1.0", title=name, mdns=(CountedMdns(f"_{name}._tcp.local."),),
                                 ble=(CountedBle(manufacturer_id=company),))
        self.identified: list[DiscoveryInfo] = []
        self.returns = returns

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        self.identified.append(info)
        if self.returns is not None:
            return self.returns  # type: ignore[no-any-return]
        key = info.properties["id"] if isinstance(info, MdnsInfo) else info.address
        name = self.manifest.name
        return DiscoveredAppliance(key=f"{name}-{key}", title=key, identifiers=((name, key),))

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        raise ConnectionError("never adopted in these tests")


def mdns(kind: str, ident: str = "1") -> MdnsInfo:
    return MdnsInfo(f"_{kind}._tcp.local.", f"{kind}-{ident}._{kind}._tcp.local.", f"{kind}.local.", ("10.0.0.9",),
                    80, {"id": ident})


async def test_a_manifest_matching_advert_reaches_identify_through_the_index(tmp_path: Path) -> None:
    """The production path (DriverManager under the lifecycle): only the candidates the index names for an
    advert's service type or company id are consulted; the others' matchers never run."""
    drivers = [KindDriver(f"kind{i}", 0xF000 + i) for i in range(20)]
    manager = DriverManager(drivers, builtin=False, entry_points_group=None)
    lifecycle = ApplianceLifecycle(manager, mdns_enabled=False, ble_enabled=False)
    hub = Hub(tmp_path, {}, recorder=False)
    hub.add_component(manager)
    hub.add_component(lifecycle)
    await hub.async_start()
    try:
        CONSULTED.clear()
        lifecycle.handle(mdns("kind7"), "mdns:kind7-1")
        assert CONSULTED == ["_kind7._tcp.local."]  # a linear scan would consult all twenty
        assert [d.manifest.name for d in drivers if d.identified] == ["kind7"]
        CONSULTED.clear()
        advert = BleInfo("AA:BB:CC:00:00:0C", None, -60, {0xF00C: b"\x01"}, {}, (), True, "hci0", 0.0)
        lifecycle.handle(advert, f"ble:{advert.address}")
        assert CONSULTED == ["ble:0xf00c"]
        assert [d.manifest.name for d in drivers if d.identified] == ["kind7", "kind12"]
        assert lifecycle.inbox is not None
        assert {e.key for e in lifecycle.inbox.entries(EntryState.PENDING)} == {"kind7-1", "kind12-AA:BB:CC:00:00:0C"}
    finally:
        await hub.async_stop()


async def test_the_identify_guard_refuses_what_is_not_an_appliance(tmp_path: Path) -> None:
    """A driver whose identify returns something else (a dict) is counted and skipped; the advert's other
    drivers and the next adverts are handled as usual."""
    bad = KindDriver("bad", 0xF100, returns={"key": "x"})
    good = KindDriver("good", 0xF101)
    good.manifest = Manifest(name="good", version="1.0", title="good", mdns=(CountedMdns("_bad._tcp.local."),))
    manager = DriverManager([bad, good], builtin=False, entry_points_group=None)
    lifecycle = ApplianceLifecycle(manager, mdns_enabled=False, ble_enabled=False)
    hub = Hub(tmp_path, {}, recorder=False)
    hub.add_component(manager)
    hub.add_component(lifecycle)
    await hub.async_start()
    try:
        lifecycle.handle(mdns("bad"), "mdns:bad-1")
        assert lifecycle.stats["identify_invalid"] == 1
        assert lifecycle.inbox is not None and [e.key for e in lifecycle.inbox.entries()] == ["good-1"]
        assert manager.identify(mdns("bad", "2"))[0][1].key == "good-2"  # the same guard on the manager's path
    finally:
        await hub.async_stop()
