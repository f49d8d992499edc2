"""BTHome v2 and MiBeacon: simulators' payloads parsed by bthome-ble / xiaomi-ble, and adopted sensors."""

from __future__ import annotations

import asyncio

from bthome_ble import BTHomeBluetoothDeviceData
from xiaomi_ble import XiaomiBluetoothDeviceData

from drivers.ble_passive import to_service_info, update_to_data
from drivers.bthome.payload import encode as bthome_encode
from drivers.bthome.simulator import BTHomeSimulator
from drivers.manager import DriverManager
from drivers.testing import wait_for
from drivers.xiaomi.payload import encode as mibeacon_encode
from drivers.xiaomi.simulator import XiaomiSimulator
from hub.core import Hub
from hub.discovery.models import BleInfo


def test_bthome_payload_parsed_by_bthome_ble() -> None:
    payload = bthome_encode({"packet_id": 5, "battery": 88, "temperature": -3.25, "humidity": 61.5,
                             "illuminance": 1234.56, "motion": 1})
    assert payload[0] == 0x40  # BTHome v2, unencrypted
    info = BleInfo("A4:C1:38:00:00:09", "probe", -50,
                   service_data={"0000fcd2-0000-1000-8000-00805f9b34fb": payload})
    data, descs = update_to_data(BTHomeBluetoothDeviceData().update(to_service_info(info)))
    assert data == {"battery": 88.0, "temperature": -3.25, "humidity": 61.5, "illuminance": 1234.56, "motion": "on"}
    assert {d.capabilities[0] for d in descs} == {"battery", "temperature", "humidity", "illuminance", "motion"}


def test_mibeacon_payload_parsed_by_xiaomi_ble() -> None:
    payload = mibeacon_encode("58:2D:34:10:00:09", 3, temperature=-1.5, humidity=40.2, battery=77)
    info = BleInfo("58:2D:34:10:00:09", "MJ_HT_V1", -50,
                   service_data={"0000fe95-0000-1000-8000-00805f9b34fb": payload})
    parser = XiaomiBluetoothDeviceData()
    data, _ = update_to_data(parser.update(to_service_info(info)))
    assert data["temperature"] == -1.5 and data["humidity"] == 40.2 and data["battery"] == 77.0
    assert parser.device_type == "LYWSDCGQ"
    # A frame claiming another MAC is refused by the parser: the encoder writes the MAC the library checks.
    spoof = BleInfo("58:2D:34:10:00:0A", "MJ_HT_V1", -50, service_data=info.service_data)
    assert update_to_data(XiaomiBluetoothDeviceData().update(to_service_info(spoof)))[0] == {}


async def adopt_and_feed(hub: Hub, manager: DriverManager, sim: BTHomeSimulator | XiaomiSimulator,
                         name: str) -> str:
    """Adopt the sensor from its first advert, then feed adverts until it shows three entities."""
    matches = manager.identify(sim.advert())
    assert [d.manifest.name for d, _ in matches] == [name]
    device_id = await manager.async_adopt(name, matches[0][1])
    key = f"{name}:{sim.address}"
    await wait_for(lambda: getattr(manager.get(key), "state", None) == "running", what="running")
    for _ in range(100):
        sim.step()
        manager.discovery_updated(key, sim.advert())
        if len(hub.entities.for_device(device_id)) >= 3:
            return device_id
        await asyncio.sleep(0.01)
    raise AssertionError("sensor never reported")


async def test_passive_sensors_adopted_and_updated(hub_with_drivers: tuple[Hub, DriverManager]) -> None:
    hub, manager = hub_with_drivers
    climate, motion, xiaomi = BTHomeSimulator("climate", 3), BTHomeSimulator("motion", 3), XiaomiSimulator(3)
    ids = {climate.address: await adopt_and_feed(hub, manager, climate, "bthome"),
           motion.address: await adopt_and_feed(hub, manager, motion, "bthome"),
           xiaomi.address: await adopt_and_feed(hub, manager, xiaomi, "xiaomi")}
    temps = {e.capabilities[0]: e.entity_id for e in hub.entities.for_device(ids[climate.address])}
    state = hub.states.get(temps["temperature"])
    assert state is not None and abs(state.value - 22.5) < 1
    device = hub.devices.get(ids[xiaomi.address])
    assert device is not None and device.model == "LYWSDCGQ"
    assert ("ble", "58:2d:34:10:00:03") in device.connections
    motion_caps = {e.capabilities[0] for e in hub.entities.for_device(ids[motion.address])}
    assert {"motion", "illuminance", "battery"} <= motion_caps


async def test_silent_sensor_goes_unavailable_and_comes_back(tmp_path: object) -> None:
    from pathlib import Path

    from drivers.ble_passive import PassiveBleConnection

    hub = Hub(Path(str(tmp_path)), {}, recorder=False)
    sim = XiaomiSimulator(4)
    [(driver, appliance)] = DriverManager(entry_points_group=None).identify(sim.advert())
    device = hub.devices.async_get_or_create(source="xiaomi", name="t", identifiers=appliance.identifiers)
    conn = driver.connect(hub, device.id, appliance)
    assert isinstance(conn, PassiveBleConnection)
    conn.stale_after = 0.2
    await conn.async_start()
    conn.discovery_updated(sim.advert())
    [temp] = [e.entity_id for e in hub.entities.for_device(device.id) if e.capabilities == ("temperature",)]
    await wait_for(lambda: hub.states.get(temp).value == "unavailable", what="stale")  # type: ignore[union-attr]
    sim.step()
    conn.discovery_updated(sim.advert())
    assert hub.states.get(temp).value == sim.temperature  # type: ignore[union-attr]
    await conn.async_stop()
    hub.storage.close()
