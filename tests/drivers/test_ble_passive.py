"""BTHome v2 and MiBeacon: simulators' payloads parsed by bthome-ble / xiaomi-ble, and adopted sensors."""

from __future__ import annotations

import asyncio
from typing import Any

from bthome_ble import BTHomeBluetoothDeviceData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xiaomi_ble import XiaomiBluetoothDeviceData

from qilu_hub.core import Hub
from qilu_hub.discovery.models import BleInfo
from qilu_hub.drivers.bthome.payload import encode as bthome_encode
from qilu_hub.drivers.bthome.simulator import BTHomeSimulator
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.xiaomi.payload import encode as mibeacon_encode
from qilu_hub.drivers.xiaomi.simulator import XiaomiSimulator
from qilu_hub.sdk import DeviceContext
from qilu_hub.sdk._passive_ble import to_service_info, update_to_data
from qilu_hub.sdk.testing import wait_for


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

    from qilu_hub.sdk._passive_ble import PassiveBleConnection

    hub = Hub(Path(str(tmp_path)), {}, recorder=False)
    sim = XiaomiSimulator(4)
    [(driver, appliance)] = DriverManager(entry_points_group=None).identify(sim.advert())
    device = hub.devices.async_get_or_create(source="xiaomi", name="t", identifiers=appliance.identifiers)
    conn = driver.connect(DeviceContext(hub, driver.manifest.name, device.id, appliance.key), appliance)
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


# -- encrypted sensors: the connection's view of its bind key ------------------------------------------------------

KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")


def keyed_connection(tmp_path: object, sim: BTHomeSimulator | XiaomiSimulator, key: bytes | None) -> Any:
    from pathlib import Path

    from qilu_hub.appliances.bind_keys import BindKey, BindKeys
    from qilu_hub.sdk._passive_ble import PassiveBleConnection

    hub = Hub(Path(str(tmp_path)), {}, recorder=False)
    [(driver, appliance)] = DriverManager(entry_points_group=None).identify(sim.advert())
    if key is not None:
        BindKeys(hub.storage).set(driver.manifest.name, appliance.key, BindKey(key))
    device = hub.devices.async_get_or_create(source=driver.manifest.name, name="t", identifiers=appliance.identifiers)
    conn = driver.connect(DeviceContext(hub, driver.manifest.name, device.id, appliance.key), appliance)
    assert isinstance(conn, PassiveBleConnection)
    return hub, conn


def test_encrypted_bthome_decrypted_by_bthome_ble() -> None:
    sim = BTHomeSimulator("climate", 40, bind_key=KEY)
    payload = sim.service_data()
    assert payload[0] == 0x41  # BTHome v2, encrypted (bthome.io/encryption)
    assert b"\x02" + round(22.5 * 100).to_bytes(2, "little") not in payload  # the temperature object is sealed
    parser = BTHomeBluetoothDeviceData(KEY)
    data, _ = update_to_data(parser.update(to_service_info(sim.advert())))
    assert data == {"temperature": 22.5, "humidity": 48.0, "battery": 87.0} and parser.bindkey_verified
    assert update_to_data(BTHomeBluetoothDeviceData().update(to_service_info(sim.advert())))[0] == {}


def test_encrypted_mibeacon_decrypted_by_xiaomi_ble() -> None:
    sim = XiaomiSimulator(40, bind_key=KEY)
    parser = XiaomiBluetoothDeviceData(KEY)
    data: dict[str, Any] = {}
    for counter in (1, 2, 3):  # one measurement per frame, as the LYWSD03MMC sends them (values held still)
        sim.counter, sim.ext_counter = counter, 1000 + counter
        frame = sim.service_data()
        assert frame[1] >> 4 == 5 and frame[0] & 0x08  # MiBeacon v5, encrypted
        data, _ = update_to_data(parser.update(to_service_info(sim.advert())))
    assert data["temperature"] == sim.temperature and data["humidity"] == int(sim.humidity)
    assert data["battery"] == 93.0 and parser.device_type == "LYWSD03MMC" and parser.bindkey_verified


async def test_some_undecryptable_adverts_are_not_a_wrong_key(tmp_path: object) -> None:
    from qilu_hub.sdk._passive_ble import WRONG_KEY_AFTER

    sim = BTHomeSimulator("climate", 41, bind_key=KEY)
    hub, conn = keyed_connection(tmp_path, sim, KEY)
    await conn.async_start()
    forged = BTHomeSimulator("climate", 41, bind_key=bytes(16))  # someone else's adverts under this address
    for _ in range(WRONG_KEY_AFTER - 1):
        forged.step()
        conn.discovery_updated(forged.advert())
    assert conn.problem is None
    sim.counter = forged.counter + 1  # the replay check wants a rising counter
    sim.step()
    conn.discovery_updated(sim.advert())
    assert conn.problem is None and conn.adverts == 1 and conn.decrypt_failures == 0
    await conn.async_stop()
    hub.storage.close()


async def test_wrong_key_marks_entities_unavailable_and_recovers(tmp_path: object) -> None:
    from qilu_hub.sdk._passive_ble import WRONG_KEY_AFTER

    sim = XiaomiSimulator(42, bind_key=KEY)
    hub, conn = keyed_connection(tmp_path, sim, KEY)
    await conn.async_start()
    for _ in range(3):
        sim.step()
        conn.discovery_updated(sim.advert())
    [temp] = [e.entity_id for e in hub.entities.for_device(conn.publisher.device_id)
              if e.capabilities == ("temperature",)]
    assert isinstance(hub.states.get(temp).value, float)
    conn.parser.set_bindkey(bytes(16))  # as if the sensor was re-paired with the vendor app: a new key on it
    for _ in range(WRONG_KEY_AFTER):
        sim.step()
        conn.discovery_updated(sim.advert())
    assert conn.problem == "wrong_bind_key" and hub.states.get(temp).value == "unavailable"
    sim.step()
    conn.discovery_updated(sim.advert())
    assert conn.bad_adverts == WRONG_KEY_AFTER + 1  # throttled: not given to the parser until the next probe
    conn.parser.set_bindkey(KEY)
    conn._last_probe = 0.0  # the probe interval has passed
    for _ in range(3):
        sim.step()
        conn.discovery_updated(sim.advert())
        conn._last_probe = 0.0
    value = hub.states.get(temp).value
    assert conn.problem is None and isinstance(value, float) and abs(value - sim.temperature) < 0.5
    await conn.async_stop()
    hub.storage.close()


async def test_sensor_that_starts_encrypting_asks_for_a_key(tmp_path: object) -> None:
    plain = BTHomeSimulator("climate", 43)
    hub, conn = keyed_connection(tmp_path, plain, None)  # adopted while it sent plaintext
    await conn.async_start()
    conn.discovery_updated(plain.advert())
    assert conn.problem is None and conn.adverts == 1
    conn.discovery_updated(BTHomeSimulator("climate", 43, bind_key=KEY).advert())  # encryption switched on
    assert conn.problem == "needs_bind_key"
    await conn.async_stop()
    hub.storage.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=48), st.booleans())
def test_keyed_connections_never_raise_on_hostile_adverts(tmp_path: object, payload: bytes, xiaomi: bool) -> None:
    # Anyone in range can send any bytes under a keyed sensor's address: each costs that advert only.
    from qilu_hub.drivers.bthome.payload import SERVICE_UUID as BTHOME_UUID
    from qilu_hub.drivers.xiaomi.payload import SERVICE_UUID as MIBEACON_UUID

    sim: BTHomeSimulator | XiaomiSimulator = XiaomiSimulator(44, bind_key=KEY) if xiaomi else \
        BTHomeSimulator("climate", 44, bind_key=KEY)
    hub, conn = keyed_connection(tmp_path, sim, KEY)
    uuid = MIBEACON_UUID if xiaomi else BTHOME_UUID
    conn.discovery_updated(BleInfo(sim.address, None, -60, service_data={uuid: payload}, service_uuids=(uuid,)))
    assert conn.adverts + conn.bad_adverts + conn.plaintext_dropped == 1
    hub.storage.close()
