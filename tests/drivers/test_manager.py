"""The driver manager: matching, adoption, persistence, entry points, and containment of bad drivers."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from qilu_hub.capabilities import CommandError
from qilu_hub.context import Context
from qilu_hub.core import Hub
from qilu_hub.discovery.models import BleInfo, BleMatcher, DiscoveryInfo, MdnsInfo, MdnsMatcher
from qilu_hub.drivers.manager import STORAGE_KIND, DriverManager
from qilu_hub.model import Entity
from qilu_hub.sdk import (
    DeviceConnection,
    DeviceContext,
    DiscoveredAppliance,
    Driver,
    EntityDescription,
    EntityPublisher,
    Manifest,
)
from qilu_hub.sdk.testing import wait_for

DESCS = (EntityDescription("relay", "Relay", ("on_off",), value="relay"),)


class ToyConnection(DeviceConnection):
    """A well-behaved in-memory appliance; ``mode`` makes it misbehave in one way."""

    def __init__(self, driver: ToyDriver, context: DeviceContext, appliance: DiscoveredAppliance) -> None:
        self.driver = driver
        self.publisher = EntityPublisher(context, f"toy:{appliance.key}", DESCS)
        self.mode = appliance.data.get("mode", "ok")

    async def async_start(self) -> None:
        self.driver.starts += 1
        if self.mode == "raise_on_start" and self.driver.starts < 3:
            raise ConnectionRefusedError("appliance busy")
        if self.mode == "hang_on_start":
            await asyncio.sleep(3600)
        self.publisher.register()
        self.publisher.publish({"relay": "off"})
        self.driver.connections.append(self)

    async def async_stop(self) -> None:
        self.driver.stops += 1
        if self.mode == "hang_on_stop":
            await asyncio.sleep(3600)

    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        if self.mode == "hang_on_command":
            await asyncio.sleep(3600)
        if self.mode == "raise_on_command":
            raise RuntimeError("firmware said no")
        self.publisher.publish({"relay": "on" if command == "turn_on" else "off"})


class ToyDriver(Driver):
    manifest = Manifest(name="toy", version="1.0.0", title="Toy", mdns=(MdnsMatcher("_toy._tcp.local."),),
                        ble=(BleMatcher(manufacturer_id=0xFFFF),), capabilities=("on_off",))

    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0
        self.connections: list[ToyConnection] = []

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        if isinstance(info, MdnsInfo):
            key = info.properties.get("id", "")
            return DiscoveredAppliance(key=key, title=f"Toy {key}", identifiers=(("toy", key),),
                                       data={"mode": info.properties.get("mode", "ok")}) if key else None
        return None

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        return ToyConnection(self, context, appliance)


class BrokenIdentifyDriver(ToyDriver):
    manifest = Manifest(name="broken", version="1.0.0", title="Broken", mdns=(MdnsMatcher("_toy._tcp.local."),))

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        raise KeyError("oops")


def toy_info(key: str, mode: str = "ok") -> MdnsInfo:
    return MdnsInfo(type="_toy._tcp.local.", name=f"{key}._toy._tcp.local.", server=f"{key}.local.",
                    addresses=("127.0.0.1",), port=1, properties={"id": key, "mode": mode})


async def start_hub(path: Path, *drivers: Driver) -> tuple[Hub, DriverManager]:
    hub = Hub(path, {}, recorder=False)
    manager = DriverManager(drivers, builtin=False, entry_points_group=None, retry_initial=0.05, retry_max=0.2,
                            start_timeout=0.5, stop_timeout=0.3, command_timeout=0.3)
    hub.add_component(manager)
    await hub.async_start()
    return hub, manager


async def adopt(manager: DriverManager, info: MdnsInfo) -> str:
    [(driver, appliance)] = manager.identify(info)
    return await manager.async_adopt(driver.manifest.name, appliance)


def entity_ids(hub: Hub, device_id: str) -> list[str]:
    return [e.entity_id for e in hub.entities.for_device(device_id)]


def test_builtin_drivers_load_and_match_by_manifest() -> None:
    manager = DriverManager(entry_points_group=None)
    assert {"qoap", "shelly", "wled", "bthome", "xiaomi"} <= set(manager.drivers)
    assert not manager.load_errors
    shelly = MdnsInfo("_shelly._tcp.local.", "shellyplus1pm-a8032ab10001._shelly._tcp.local.", "x.local.",
                      ("127.0.0.1",), 80, {"gen": "2", "id": "shellyplus1pm-a8032ab10001"})
    assert [d.manifest.name for d in manager.match(shelly)] == ["shelly"]
    gen1 = MdnsInfo("_shelly._tcp.local.", "x", "x.local.", ("127.0.0.1",), 80, {"gen": "1"})
    assert manager.match(gen1) == []
    advert = BleInfo("A4:C1:38:00:00:01", None, -60, service_data={"0000fcd2-0000-1000-8000-00805f9b34fb": b"\x40"})
    assert [d.manifest.name for d in manager.match(advert)] == ["bthome"]


async def test_a_driver_that_raises_in_identify_is_skipped(tmp_path: Path) -> None:
    hub, manager = await start_hub(tmp_path, BrokenIdentifyDriver(), ToyDriver())
    try:
        assert [d.manifest.name for d, _ in manager.identify(toy_info("a1"))] == ["toy"]
    finally:
        await hub.async_stop()


async def test_adopt_creates_device_and_routes_commands(tmp_path: Path) -> None:
    driver = ToyDriver()
    hub, manager = await start_hub(tmp_path, driver)
    try:
        device_id = await adopt(manager, toy_info("a1"))
        assert await adopt(manager, toy_info("a1")) == device_id  # adopting twice is harmless
        device = hub.devices.get(device_id)
        assert device is not None and ("toy", "a1") in device.identifiers and device.driver == "toy"
        await wait_for(lambda: bool(entity_ids(hub, device_id)), what="entities")
        [eid] = entity_ids(hub, device_id)
        await hub.commands.async_call(eid, "turn_on")
        assert hub.states.get(eid).value == "on"  # type: ignore[union-attr]
        assert manager.is_adopted("toy", "a1")
        assert (hub.storage.get(STORAGE_KIND, "toy:a1") or {})["device_id"] == device_id
    finally:
        await hub.async_stop()


async def test_failing_start_is_retried_with_backoff(tmp_path: Path) -> None:
    driver = ToyDriver()
    hub, manager = await start_hub(tmp_path, driver)
    try:
        await adopt(manager, toy_info("r1", "raise_on_start"))
        await wait_for(lambda: manager.get("r1").state == "running", what="running after retries")  # type: ignore[union-attr]
        rec = manager.get("r1")
        assert rec is not None and driver.starts == 3 and rec.failures == 2
        assert "busy" in (rec.last_error or "")
    finally:
        await hub.async_stop()


async def test_hanging_start_and_command_are_contained(tmp_path: Path) -> None:
    driver = ToyDriver()
    hub, manager = await start_hub(tmp_path, driver)
    try:
        good = await adopt(manager, toy_info("g1"))
        hang = await adopt(manager, toy_info("h1", "hang_on_start"))
        cmd = await adopt(manager, toy_info("c1", "hang_on_command"))
        await wait_for(lambda: manager.get("h1").failures >= 1, what="start timeout")  # type: ignore[union-attr]
        assert manager.get("h1").last_error == "start timed out"  # type: ignore[union-attr]
        await wait_for(lambda: bool(entity_ids(hub, cmd)) and bool(entity_ids(hub, good)), what="entities")
        [cmd_eid] = entity_ids(hub, cmd)
        with pytest.raises(CommandError) as err:
            await hub.commands.async_call(cmd_eid, "turn_on")
        assert err.value.code == "timeout"
        # The hung device goes unavailable and is restarted; the good one carries on.
        assert hub.states.get(cmd_eid).value == "unavailable"  # type: ignore[union-attr]
        await wait_for(lambda: manager.get("c1").restarts >= 1, what="restart")  # type: ignore[union-attr]
        [good_eid] = entity_ids(hub, good)
        await hub.commands.async_call(good_eid, "turn_on")
        assert hub.states.get(good_eid).value == "on"  # type: ignore[union-attr]
        assert hang not in (good, cmd)
    finally:
        await hub.async_stop()


async def test_raising_command_gives_driver_error_and_keeps_device(tmp_path: Path) -> None:
    hub, manager = await start_hub(tmp_path, ToyDriver())
    try:
        device_id = await adopt(manager, toy_info("e1", "raise_on_command"))
        await wait_for(lambda: bool(entity_ids(hub, device_id)), what="entities")
        [eid] = entity_ids(hub, device_id)
        with pytest.raises(CommandError) as err:
            await hub.commands.async_call(eid, "turn_on")
        assert err.value.code == "driver_error" and "firmware said no" in err.value.message
        assert manager.get("e1").state == "running"  # type: ignore[union-attr]
    finally:
        await hub.async_stop()


async def test_lost_connection_goes_unavailable_then_recovers(tmp_path: Path) -> None:
    driver = ToyDriver()
    hub, manager = await start_hub(tmp_path, driver)
    try:
        device_id = await adopt(manager, toy_info("l1"))
        await wait_for(lambda: manager.get("l1").state == "running", what="running")  # type: ignore[union-attr]
        [eid] = entity_ids(hub, device_id)
        seen: list[str] = []
        hub.bus.listen("state_changed", lambda e: seen.append(e.data["new_state"].value))
        driver.connections[-1].report_lost("cable pulled")
        await wait_for(lambda: manager.get("l1").restarts == 1 and manager.get("l1").state == "running",  # type: ignore[union-attr]
                       what="restart")
        assert "unavailable" in seen and hub.states.get(eid).value == "off"  # type: ignore[union-attr]
        assert driver.stops >= 1
    finally:
        await hub.async_stop()


async def test_hanging_stop_does_not_block_the_hub(tmp_path: Path) -> None:
    driver = ToyDriver()
    hub, manager = await start_hub(tmp_path, driver)
    await adopt(manager, toy_info("s1", "hang_on_stop"))
    await wait_for(lambda: manager.get("s1").state == "running", what="running")  # type: ignore[union-attr]
    await asyncio.wait_for(hub.async_stop(), 5)  # stop_timeout 0.3 s bounds it


async def test_adopted_devices_reopen_at_start(tmp_path: Path) -> None:
    hub, manager = await start_hub(tmp_path, ToyDriver())
    device_id = await adopt(manager, toy_info("p1"))
    await wait_for(lambda: manager.get("p1").state == "running", what="running")  # type: ignore[union-attr]
    await hub.async_stop()

    driver = ToyDriver()
    hub, manager = await start_hub(tmp_path, driver)
    try:
        rec = manager.get("toy:p1")
        assert rec is not None and rec.device_id == device_id
        await wait_for(lambda: rec is not None and rec.state == "running", what="reopened")
        assert driver.starts == 1
    finally:
        await hub.async_stop()
    # Without the driver installed, the device is kept but unavailable.
    hub, manager = await start_hub(tmp_path)
    try:
        rec = manager.get("toy:p1")
        assert rec is not None and rec.state == "unavailable" and "not installed" in (rec.last_error or "")
        assert all(hub.states.get(e).value == "unavailable" for e in entity_ids(hub, device_id))  # type: ignore[union-attr]
    finally:
        await hub.async_stop()


async def test_discovery_updated_refreshes_data_and_restarts(tmp_path: Path) -> None:
    driver = ToyDriver()
    hub, manager = await start_hub(tmp_path, driver)
    try:
        await adopt(manager, toy_info("d1"))
        await wait_for(lambda: manager.get("d1").state == "running", what="running")  # type: ignore[union-attr]
        moved = MdnsInfo("_toy._tcp.local.", "d1._toy._tcp.local.", "d1.local.", ("127.0.0.1",), 1,
                         {"id": "d1", "mode": "ok", "extra": "1"})
        manager.discovery_updated("d1", moved)  # same data: nothing to do
        assert manager.get("d1").restarts == 0  # type: ignore[union-attr]
        manager.discovery_updated("toy:d1", toy_info("d1", "raise_on_command"))  # new connection data
        await wait_for(lambda: manager.get("d1").restarts == 1, what="restart on new data")  # type: ignore[union-attr]
        assert (hub.storage.get(STORAGE_KIND, "toy:d1") or {})["appliance"]["data"]["mode"] == "raise_on_command"
        assert await manager.async_remove("d1") and not manager.is_adopted("toy", "d1")
        manager.discovery_updated("d1", moved)  # unknown now: ignored
    finally:
        await hub.async_stop()


def test_third_party_driver_from_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver installed as a package registers through the ``qilu_hub.drivers`` entry-point group."""
    pkg = tmp_path / "acme_driver.py"
    pkg.write_text(
        "from qilu_hub.sdk import Driver, Manifest, MdnsMatcher\n"
        "class AcmeDriver(Driver):\n"
        "    manifest = Manifest(name='acme', version='0.1.0', title='Acme', mdns=(MdnsMatcher('_acme._tcp'),))\n"
        "    def identify(self, info): return None\n"
        "    def connect(self, context, appliance): raise NotImplementedError\n"
    )
    dist = tmp_path / "acme_driver-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-driver\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[qilu_hub.drivers]\nacme = acme_driver:AcmeDriver\n"
                                           "broken = acme_driver:NoSuchThing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    manager = DriverManager(builtin=False)
    assert "acme" in manager.drivers
    assert any("broken" in origin for origin in manager.load_errors)  # reported, not raised
    sys.modules.pop("acme_driver", None)
