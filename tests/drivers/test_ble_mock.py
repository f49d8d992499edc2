"""Simulated BTHome/Xiaomi sensors through a mock BlueZ: bleak's real BlueZ backend scans them, the parsers
accept the payloads, and the driver manager turns them into states."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from qilu_hub.appliances import ApplianceLifecycle
from qilu_hub.core import Hub
from qilu_hub.discovery.models import BleInfo
from qilu_hub.drivers.bthome.payload import SERVICE_UUID as BTHOME_UUID
from qilu_hub.drivers.bthome.simulator import BTHomeSimulator
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.xiaomi.payload import SERVICE_UUID as MIBEACON_UUID
from qilu_hub.drivers.xiaomi.simulator import XiaomiSimulator
from qilu_hub.sdk.testing import BluezMock, wait_for
from tests.testbeds.bluez import MockBluez


@pytest.fixture
def private_system_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if shutil.which("dbus-daemon") is None:
        pytest.fail("dbus-daemon is missing: apt-get install dbus")
    sock = tmp_path / "system.sock"
    address = f"unix:path={sock}"
    daemon = subprocess.Popen(["dbus-daemon", "--session", f"--address={address}", "--nofork", "--nopidfile"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mock = None
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": address}
        mock = subprocess.Popen([sys.executable, "-m", "dbusmock", "--system", "--template", "bluez5"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        yield address
    finally:
        for proc in (mock, daemon):
            if proc is not None:
                proc.terminate()
                proc.wait(10)


async def test_sensors_through_bleak_and_bluez_mock(private_system_bus: str, tmp_path: Path) -> None:
    bluez = BluezMock()
    for _ in range(100):  # the mock takes a moment to claim org.bluez
        try:
            await bluez.connect()
            break
        except Exception:
            await bluez.close()
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("mock BlueZ did not come up")
    hub = Hub(tmp_path / "hub", {}, recorder=False)
    manager = DriverManager(entry_points_group=None)
    hub.add_component(manager)
    await hub.async_start()
    adopting: set[str] = set()

    def on_advert(device: BLEDevice, adv: AdvertisementData) -> None:
        # What the discovery engineer's BLE source does, reduced to the driver-facing part.
        info = BleInfo(device.address, adv.local_name, adv.rssi, dict(adv.manufacturer_data),
                       dict(adv.service_data), tuple(adv.service_uuids))
        for driver, appliance in manager.identify(info):
            key = f"{driver.manifest.name}:{appliance.key}"
            if key not in adopting:
                adopting.add(key)
                asyncio.get_running_loop().create_task(manager.async_adopt(driver.manifest.name, appliance))
            manager.discovery_updated(key, info)

    climate, xiaomi = BTHomeSimulator("climate", 9), XiaomiSimulator(9)
    try:
        async with BleakScanner(detection_callback=on_advert):
            for _ in range(200):
                for sim, uuid in ((climate, BTHOME_UUID), (xiaomi, MIBEACON_UUID)):
                    sim.step()
                    await bluez.advertise(sim, uuid)
                await asyncio.sleep(0.05)
                temps = {e.unique_id.split(":")[0]: getattr(hub.states.get(e.entity_id), "value", None)
                         for e in hub.entities.all() if e.capabilities == ("temperature",)}
                if isinstance(temps.get("bthome"), float) and isinstance(temps.get("xiaomi"), float):
                    break
            await wait_for(lambda: len(manager.status()) == 2, what="two adopted sensors")
        temps = {e.unique_id.split(":")[0]: hub.states.get(e.entity_id) for e in hub.entities.all()
                 if e.capabilities == ("temperature",)}
        assert temps["bthome"] is not None and abs(temps["bthome"].value - climate.values["temperature"]) < 0.5
        assert temps["xiaomi"] is not None and abs(temps["xiaomi"].value - xiaomi.temperature) < 0.5
    finally:
        await hub.async_stop()
        await bluez.close()


async def test_encrypted_sensors_over_the_radio_path(bluez: MockBluez, tmp_path: Path) -> None:
    """The whole way: mock BlueZ -> bleak -> discovery's BLE source -> inbox (needs a bind key) -> adoption with
    the key -> the real parsers decrypt -> states."""
    key = bytes.fromhex("5c2e9b6b0e3b4c5d8f7a6e5d4c3b2a19")
    await bluez.add_adapter("hci0")
    hub = Hub(tmp_path / "hub", {}, recorder=False)
    hub.add_component(DriverManager(entry_points_group=None, retry_initial=0.1, retry_max=0.5))
    discovery = ApplianceLifecycle("drivers", mdns_enabled=False, ble_enabled=True, ble_scanning_mode="active",
                                 ble_watchdog=30)
    hub.add_component(discovery)
    await hub.async_start()
    sims: list[tuple[BTHomeSimulator | XiaomiSimulator, str]] = [
        (BTHomeSimulator("climate", 31, bind_key=key), BTHOME_UUID), (XiaomiSimulator(31, bind_key=key), MIBEACON_UUID)]
    paths = [await bluez.add_device("hci0", sim.address, sim.name, service_data={uuid: sim.service_data()},
                                    connectable=False) for sim, uuid in sims]

    async def advertise() -> None:
        while True:
            for (sim, uuid), path in zip(sims, paths, strict=True):
                sim.step()
                await bluez.update_device(path, service_data={uuid: sim.service_data()})
            await asyncio.sleep(0.1)

    def temperatures() -> dict[str, object]:
        return {e.unique_id.split(":")[0]: getattr(hub.states.get(e.entity_id), "value", None)
                for e in hub.entities.all() if e.capabilities == ("temperature",)}

    radio = asyncio.create_task(advertise())
    try:
        await wait_for(lambda: {e["problem"] for e in discovery.inbox_entries()} == {"needs_bind_key"}
                       and len(discovery.inbox_entries()) == 2, timeout=30, what="two flagged inbox entries")
        assert temperatures() == {}
        for sim, _ in sims:
            await discovery.async_adopt(sim.address, bind_key=key.hex())
        await wait_for(lambda: all(isinstance(v, float) for v in temperatures().values())
                       and len(temperatures()) == 2, timeout=30, what="decrypted readings")
        values = temperatures()
        climate, xiaomi = sims[0][0], sims[1][0]
        assert isinstance(climate, BTHomeSimulator) and isinstance(xiaomi, XiaomiSimulator)
        assert abs(float(values["bthome"]) - float(climate.values["temperature"])) < 0.5  # type: ignore[arg-type]
        assert abs(float(values["xiaomi"]) - xiaomi.temperature) < 0.5  # type: ignore[arg-type]
        assert all(e["problem"] is None for e in discovery.inbox_entries())
    finally:
        radio.cancel()
        await asyncio.gather(radio, return_exceptions=True)
        await hub.async_stop()
