"""The QOAP BLE flavour end to end: bleak's real BlueZ backend against a mock BlueZ on a private bus,
the hub discovering, adopting and controlling a smart lock with no appliance code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgpack
import pytest

from qilu_hub.appliances import ApplianceLifecycle
from qilu_hub.capabilities import CommandError
from qilu_hub.core import Hub
from qilu_hub.discovery import BleInfo
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.qoap import profile
from qilu_hub.drivers.qoap.ble import id_hash, identify_ble
from qilu_hub.drivers.qoap.ble_simulator import QoapBleSimulator
from qilu_hub.drivers.qoap.driver import MANIFEST, QoapDriver
from qilu_hub.drivers.qoap.framing import FrameError, Reassembler, encode_frames
from qilu_hub.sdk.testing import wait_for
from qilu_hub.states import UNAVAILABLE
from tests.testbeds import bluez as bluez_bed

ADDRESS = "C0:0A:00:00:00:01"


@pytest.fixture
async def ble_hub(tmp_path: Path, bluez: bluez_bed.MockBluez) -> AsyncIterator[tuple[Hub, DriverManager]]:
    await bluez.add_adapter("hci0")
    hub = Hub(tmp_path / "config", {}, recorder=False)
    drivers = DriverManager([QoapDriver()], builtin=False, entry_points_group=None, retry_initial=0.2,
                            retry_max=1.0, start_timeout=15.0, command_timeout=5.0)
    hub.add_component(drivers)
    hub.add_component(ApplianceLifecycle("drivers", ble_enabled=True, mdns_enabled=False, ble_watchdog=30,
                                       ble_scanning_mode="active", auto_adopt={"qoap": True}))
    await hub.async_start()
    yield hub, drivers
    await hub.async_stop()


def entity_with(hub: Hub, device_id: str, capability: str) -> str:
    return next(e.entity_id for e in hub.entities.for_device(device_id) if capability in e.capabilities)


def value(hub: Hub, entity_id: str) -> object:
    state = hub.states.get(entity_id)
    return None if state is None else state.value


async def test_lock_is_discovered_adopted_controlled_and_survives_a_link_drop(
        ble_hub: tuple[Hub, DriverManager]) -> None:
    hub, drivers = ble_hub
    # Small frames, so the description and state reads take several frames each (§7.2).
    sim = QoapBleSimulator(ADDRESS, frame_size=40)
    assert len(encode_frames(msgpack.packb(sim.description()), sim.frame_size)) > 3
    await sim.start()
    try:
        key = f"qoap-ble-{id_hash(sim.device_id)}"
        await wait_for(lambda: (r := drivers.get(key)) is not None and r.state == "running", timeout=30,
                       what="adopted and connected")
        rec = drivers.get(key)
        assert rec is not None
        device = hub.devices.get(rec.device_id)
        assert device is not None and device.model == "QSL-1" and device.manufacturer == "Qilu Appliances"
        assert ("qoap", sim.device_id) in device.identifiers  # the real id, learnt from the description
        lock = entity_with(hub, rec.device_id, "lock")
        battery = entity_with(hub, rec.device_id, "battery")
        assert value(hub, lock) == "locked" and value(hub, battery) == 87.0

        await hub.commands.async_call(lock, "unlock", {})
        assert value(hub, lock) == "unlocked"
        assert sim.commands[-1]["entity"] == "lock" and sim.commands[-1]["command"] == "unlock"
        await wait_for(lambda: value(hub, battery) == 86.5, what="battery notification")
        # The appliance's own refusal travels back through the command characteristic's indication.
        with pytest.raises(CommandError) as err:
            await hub.commands.async_call(lock, "lock", {"code": "0000"})
        assert err.value.code == "invalid_format" and "code" in err.value.message
        assert value(hub, lock) == "unlocked"

        # A change made at the appliance (a hand on the bolt) arrives as a notification.
        await sim.set_state("lock", "locked")
        await wait_for(lambda: value(hub, lock) == "locked", what="state notification")

        # The link drops: unavailable, then the manager reconnects and reads the state afresh.
        await sim.drop_link()
        await wait_for(lambda: value(hub, lock) == UNAVAILABLE, what="unavailable after link drop")
        sim.appliance.set("lock", "unlocked")  # changed while the hub was away
        await sim.flush()
        await wait_for(lambda: rec.state == "running" and rec.restarts >= 1, timeout=30, what="reconnect")
        assert value(hub, lock) == "unlocked"  # read afresh from the state characteristic
        await hub.commands.async_call(lock, "lock", {})
        assert value(hub, lock) == "locked"
    finally:
        await sim.stop()


def test_identify_keys_by_id_hash_and_falls_back_to_address() -> None:
    sim = QoapBleSimulator(ADDRESS)
    uuid = profile.BLE_SERVICE_UUID
    info = BleInfo(ADDRESS, "Smart Lock", -60, service_data={uuid: sim.service_data()}, service_uuids=(uuid,))
    assert any(m.matches(info) for m in MANIFEST.ble)
    appliance = QoapDriver().identify(info)
    assert appliance is not None and appliance.key == f"qoap-ble-{id_hash(sim.device_id)}"
    assert appliance.data["address"] == ADDRESS and appliance.data["pv"] == "1.0"
    bare = identify_ble(BleInfo(ADDRESS, None, -60, service_uuids=(uuid,)))
    assert bare is not None and bare.key == "qoap-ble-c00a00000001" and bare.identifiers == ()
    # Another major version, or an advert without the service, is not ours.
    assert identify_ble(BleInfo(ADDRESS, None, -60, service_data={uuid: b"\x02\x00" + b"\x00" * 8})) is None
    assert identify_ble(BleInfo(ADDRESS, None, -60, service_uuids=("0000fff0-0000-1000-8000-00805f9b34fb",))) is None


def test_frames_round_trip_and_resynchronise() -> None:
    payload = bytes(range(256)) * 3
    frames = encode_frames(payload, 50)
    assert all(len(f) <= 50 for f in frames) and frames[-1][0] & 0x80 and not frames[0][0] & 0x80
    r = Reassembler()
    # A reader that joins mid-message skips to the next sequence-0 frame.
    assert [r.feed(f) for f in frames[3:]][-1] is None
    assert [r.feed(f) for f in frames][-1] == payload
    assert encode_frames(b"hi", 20) == [b"\x80hi"]
    # A lost frame drops the partial message rather than splicing two together.
    r2 = Reassembler()
    assert [r2.feed(f) for f in frames[:2] + frames[3:]][-1] is None and r2.dropped == 1
    with pytest.raises(FrameError):
        encode_frames(b"x" * 200, 2 + 0)  # 1 byte a frame: 200 frames, over the 128 limit


async def test_connect_before_the_gatt_table_is_published_recovers(ble_hub: tuple[Hub, DriverManager],
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    hub, drivers = ble_hub
    sim = QoapBleSimulator(ADDRESS)
    # The hub hears the device and connects while it has no QOAP characteristics; bleak caches that
    # empty table. The connection must drop the cache, or every retry would fail the same way.
    await sim.start(gatt_late=1.0)
    try:
        key = f"qoap-ble-{id_hash(sim.device_id)}"
        await wait_for(lambda: (r := drivers.get(key)) is not None and r.state == "running", timeout=30,
                       what="running after the table appeared")
        rec = drivers.get(key)
        assert rec is not None and rec.failures >= 1
        assert "lacks QOAP characteristics" in caplog.text
        assert value(hub, entity_with(hub, rec.device_id, "lock")) == "locked"
    finally:
        await sim.stop()


class ImpostorLock(QoapBleSimulator):
    """Advertises another appliance's identity hash."""

    def service_data(self) -> bytes:
        return b"\x01\x00" + bytes.fromhex(id_hash("qoap-smartlock-9999"))


async def test_appliance_whose_description_disagrees_with_its_advert_is_refused(
        ble_hub: tuple[Hub, DriverManager], caplog: pytest.LogCaptureFixture) -> None:
    hub, drivers = ble_hub
    sim = ImpostorLock(ADDRESS)
    await sim.start()
    try:
        key = f"qoap-ble-{id_hash('qoap-smartlock-9999')}"
        await wait_for(lambda: (r := drivers.get(key)) is not None and r.failures >= 1, timeout=30, what="refused")
        rec = drivers.get(key)
        assert rec is not None and rec.state != "running"
        assert "whose hash is not the advertised" in caplog.text
        assert hub.entities.for_device(rec.device_id) == []
    finally:
        await sim.stop()


async def test_driver_connects_by_address_without_a_discovery_component(
        tmp_path: Path, bluez: bluez_bed.MockBluez) -> None:
    await bluez.add_adapter("hci0")
    hub = Hub(tmp_path / "config", {}, recorder=False)
    drivers = DriverManager([QoapDriver()], builtin=False, entry_points_group=None, retry_initial=0.2,
                            retry_max=1.0, start_timeout=20.0, command_timeout=5.0)
    hub.add_component(drivers)
    await hub.async_start()
    sim = QoapBleSimulator(ADDRESS, advert_interval=0.2)
    await sim.start()
    try:
        uuid = profile.BLE_SERVICE_UUID
        appliance = QoapDriver().identify(BleInfo(ADDRESS, "Smart Lock", -60, service_data={uuid: sim.service_data()}))
        assert appliance is not None
        device_id = await drivers.async_adopt("qoap", appliance)
        rec = drivers.get(device_id)
        assert rec is not None
        await wait_for(lambda: rec.state == "running", timeout=30, what="connected by address")
        lock = entity_with(hub, device_id, "lock")
        await hub.commands.async_call(lock, "unlock", {})
        assert value(hub, lock) == "unlocked"
    finally:
        await sim.stop()
        await hub.async_stop()
