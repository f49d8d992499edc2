"""BLE through bleak's real BlueZ backend against python-dbusmock's bluez5 template on a private bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qilu_hub.discovery import BleInfo
from qilu_hub.discovery.ble import BleSource
from qilu_hub.discovery.connect import async_connect, set_max_connections
from tests.testbeds.bluez import MockBluez

from .conftest import HubFactory, live, wait_for
from .qd_driver import QD_COMPANY

CHR_UUID = "0000fff1-0000-1000-8000-00805f9b34fb"
SVC_UUID = "0000fff0-0000-1000-8000-00805f9b34fb"


def addr(n: int) -> str:
    return f"C0:78:00:00:00:{n:02X}"


class Air:
    """What a ``radio`` loop managed to send: for the message of a failing test."""

    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
        self.last_error = ""

    def __repr__(self) -> str:
        return f"<radio sent={self.sent} failed={self.failed} last_error={self.last_error!r}>"


@contextlib.asynccontextmanager
async def radio(bluez: MockBluez, path: str, interval: float = 0.2) -> AsyncIterator[Air]:
    """Keep a mock device advertising (BlueZ reports each received advert as a property change)."""
    air = Air()

    async def loop() -> None:
        rssi = -60
        while True:
            rssi = -60 if rssi == -61 else -61
            try:
                await bluez.update_device(path, rssi=rssi)
                air.sent += 1
            except Exception as err:  # BlueZ may be down for a moment: that is the test
                air.failed += 1
                air.last_error = f"{type(err).__name__}: {err}"
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop())
    try:
        yield air
    finally:
        task.cancel()


async def _bleak_view() -> str:
    """bleak's BlueZ manager as it is now (private state, read only for a failure message)."""
    from bleak.backends.bluezdbus.manager import get_global_bluez_manager

    manager = await get_global_bluez_manager()
    bus = getattr(manager, "_bus", None)
    return (f"bleak bus connected={getattr(bus, 'connected', None)} unique_name={getattr(bus, 'unique_name', None)} "
            f"adapters={sorted(getattr(manager, '_adapters', ()))} "
            f"objects={len(getattr(manager, '_properties', {}))} "
            f"callbacks={ {k: len(v) for k, v in getattr(manager, '_advertisement_callbacks', {}).items()} }")


async def test_fifty_devices_with_changing_adverts_are_tracked(bluez: MockBluez, hubs: HubFactory) -> None:
    await bluez.add_adapter("hci0")
    hub, manager, driver = await hubs.start(ble_enabled=True, ble_watchdog=30, ble_scanning_mode="active")
    assert manager.ble is not None
    manager.ble.min_interval = 0.0
    await wait_for(lambda: manager.ble.scanners[0].running)  # type: ignore[union-attr]
    paths = [await bluez.add_device("hci0", addr(n), f"qd{n}", {QD_COMPANY: bytes([n, 0])}, rssi=-40 - n)
             for n in range(50)]
    await wait_for(lambda: live(manager, driver, 50), timeout=30)
    assert len(hub.devices) == 50
    # Every device changes its advert three times (a counter, as sensors do); the hub sees each change.
    for rnd in range(1, 4):
        for n, path in enumerate(paths):
            await bluez.update_device(path, manufacturer_data={QD_COMPANY: bytes([n, rnd])}, rssi=-30 - rnd)

    def latest(n: int) -> BleInfo | None:
        updates = driver.connections[f"qdtest-{addr(n).lower()}"].updates
        return updates[-1] if updates else None  # type: ignore[return-value]

    await wait_for(lambda: all((i := latest(n)) is not None and i.manufacturer_data[QD_COMPANY] == bytes([n, 3])
                               for n in range(50)), timeout=30)
    assert manager.ble.rssi(addr(7)) == -33
    status = manager.ble.status()
    assert status["devices"] == 50 and status["adapters"][0]["running"]


async def test_auto_mode_scans_passively_where_bluez_allows(bluez: MockBluez, hubs: HubFactory) -> None:
    await bluez.add_adapter("hci0")
    _, manager, driver = await hubs.start(ble_enabled=True, ble_watchdog=30)
    assert manager.ble is not None
    await wait_for(lambda: manager.ble.scanners[0].running)  # type: ignore[union-attr]
    path = await bluez.add_device("hci0", addr(1), "qd", {QD_COMPANY: b"\x01"})
    async with radio(bluez, path):
        await wait_for(lambda: live(manager, driver, 1), timeout=30)
    assert manager.ble.scanners[0].mode == "passive"


async def test_watchdog_restarts_a_silent_scanner(bluez: MockBluez, hubs: HubFactory) -> None:
    await bluez.add_adapter("hci0")
    _, manager, driver = await hubs.start(ble_enabled=True, ble_watchdog=0.5, ble_scanning_mode="active")
    assert manager.ble is not None
    await wait_for(lambda: manager.ble.scanners[0].restarts >= 2, timeout=30)  # type: ignore[union-attr]
    await wait_for(lambda: manager.ble.scanners[0].running)  # type: ignore[union-attr]
    path = await bluez.add_device("hci0", addr(6), "late", {QD_COMPANY: b"\x01"})
    async with radio(bluez, path):
        await wait_for(lambda: live(manager, driver, 1), timeout=30)


async def test_scanner_recovers_from_system_bus_restart(bluez: MockBluez, hubs: HubFactory) -> None:
    await bluez.add_adapter("hci0")
    _, manager, driver = await hubs.start(ble_enabled=True, ble_watchdog=1.0, ble_scanning_mode="active")
    assert manager.ble is not None
    await wait_for(lambda: manager.ble.scanners[0].running)  # type: ignore[union-attr]
    await bluez.add_device("hci0", addr(1), "before", {QD_COMPANY: b"\x01"})
    await wait_for(lambda: live(manager, driver, 1), timeout=30)
    await bluez.restart_bus()  # D-Bus itself goes away: every client is disconnected
    await bluez.add_adapter("hci0")
    path = await bluez.add_device("hci0", addr(2), "after", {QD_COMPANY: b"\x02"})
    async with radio(bluez, path) as air:
        try:
            await wait_for(lambda: live(manager, driver, 2), timeout=60)
        except AssertionError:  # rare in CI; say which side went deaf
            raise AssertionError(f"no advert after the bus restart: {air}, scanners {manager.ble.status()}, "
                                 f"{await _bleak_view()}") from None
    assert manager.ble.scanners[0].restarts >= 1  # the watchdog noticed the lost bus and started a new scan


async def test_scanner_recovers_from_bluez_restart_without_hub_restart(bluez: MockBluez, hubs: HubFactory) -> None:
    await bluez.add_adapter("hci0")
    hub, manager, driver = await hubs.start(ble_enabled=True, ble_watchdog=1.0, ble_scanning_mode="active")
    assert manager.ble is not None
    await wait_for(lambda: manager.ble.scanners[0].running)  # type: ignore[union-attr]
    await bluez.add_device("hci0", addr(1), "before", {QD_COMPANY: b"\x01"})
    await wait_for(lambda: live(manager, driver, 1), timeout=30)

    await bluez.restart_service()  # the adapter and every device vanish with BlueZ
    await asyncio.sleep(0.5)
    await bluez.add_adapter("hci0")
    path = await bluez.add_device("hci0", addr(2), "after", {QD_COMPANY: b"\x02"})
    async with radio(bluez, path):
        await wait_for(lambda: live(manager, driver, 2), timeout=60)
    assert len(hub.devices) == 2


async def test_scanner_recovers_from_adapter_removal(bluez: MockBluez, hubs: HubFactory) -> None:
    await bluez.add_adapter("hci0")
    _, manager, driver = await hubs.start(ble_enabled=True, ble_watchdog=1.0, ble_scanning_mode="active")
    await wait_for(lambda: manager.ble.scanners[0].running)  # type: ignore[union-attr]
    await bluez.add_device("hci0", addr(3), "one", {QD_COMPANY: b"\x01"})
    await wait_for(lambda: live(manager, driver, 1), timeout=30)
    await bluez.remove_adapter("hci0")
    await asyncio.sleep(2.5)  # silent: the watchdog tries to restart and fails until the adapter returns
    await bluez.add_adapter("hci0")
    path = await bluez.add_device("hci0", addr(4), "two", {QD_COMPANY: b"\x02"})
    async with radio(bluez, path):
        await wait_for(lambda: live(manager, driver, 2), timeout=60)


async def test_out_of_range_devices_become_unavailable(bluez: MockBluez, hubs: HubFactory) -> None:
    await bluez.add_adapter("hci0")
    hub, manager, driver = await hubs.start(ble_enabled=True, ble_timeout=1.0, ble_watchdog=30,
                                            ble_scanning_mode="active")
    await wait_for(lambda: manager.ble.scanners[0].running)  # type: ignore[union-attr]
    path = await bluez.add_device("hci0", addr(5), "sensor", {QD_COMPANY: b"\x01"})
    await wait_for(lambda: live(manager, driver, 1), timeout=30)
    [conn] = driver.connections.values()
    assert conn.entity_id is not None
    await wait_for(lambda: hub.states.get(conn.entity_id).value == "unavailable", timeout=30)  # type: ignore[arg-type,union-attr]
    await bluez.update_device(path, manufacturer_data={QD_COMPANY: b"\x02"}, rssi=-50)
    await wait_for(lambda: hub.states.get(conn.entity_id).value == "off", timeout=30)  # type: ignore[arg-type,union-attr]


async def test_async_connect_reads_and_writes_gatt(bluez: MockBluez) -> None:
    await bluez.add_adapter("hci0")
    seen: dict[str, object] = {}
    def remember(info: BleInfo) -> None:
        seen.setdefault(info.address, info)

    source = BleSource(remember, lambda a: None, watchdog=30, scanning_mode="active")
    await source.async_start()
    await wait_for(lambda: source.scanners[0].running)
    try:
        path = await bluez.add_device("hci0", addr(9), "lock", {0x0059: b"\xde\xad"}, {SVC_UUID: b"\x01"})
        await wait_for(lambda: addr(9) in seen, timeout=30)
        await bluez.add_gatt(path, SVC_UUID, CHR_UUID, b"\x05")
        device = source.ble_device(addr(9))
        assert device is not None
        set_max_connections(1)
        client = await async_connect(device)
        try:
            assert await client.read_gatt_char(CHR_UUID) == b"\x05"
            await client.write_gatt_char(CHR_UUID, b"\x01\x02", response=True)
            assert await client.read_gatt_char(CHR_UUID) == b"\x01\x02"
        finally:
            await client.disconnect()
    finally:
        await source.async_stop()


def test_the_connection_cap_loads_no_connector_until_a_driver_connects() -> None:
    """Every hub with BLE discovery sets the cap at start; bleak-retry-connector and bluetooth-adapters (~4 MiB)
    load with the first connection (the test above connects through them)."""
    code = ("import sys; from qilu_hub.discovery.connect import set_max_connections; set_max_connections(2); "
            "print(','.join(m for m in ('bleak_retry_connector', 'bluetooth_adapters') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


async def test_identical_adverts_are_deduplicated_and_bursts_coalesced() -> None:
    got: list[BleInfo] = []
    source = BleSource(got.append, lambda a: None, min_interval=0.2)
    source._loop = asyncio.get_running_loop()
    info = BleInfo(addr(1), "x", -50, {QD_COMPANY: b"\x01"}, time=1000.0)
    source.handle(info)
    source.handle(BleInfo(addr(1), "x", -70, {QD_COMPANY: b"\x01"}, time=1000.01))  # same payload
    assert len(got) == 1 and source.rssi(addr(1)) == -70 and source.stats["ble_duplicate"] == 1
    for n in range(2, 10):  # a burst of changes inside the interval: one dispatch, the newest
        source.handle(BleInfo(addr(1), "x", -50, {QD_COMPANY: bytes([n])}, time=1000.02 + n / 1000))
    assert len(got) == 1
    await wait_for(lambda: len(got) == 2, timeout=5)
    assert got[-1].manufacturer_data[QD_COMPANY] == bytes([9])
    assert source.expire(now=1000.0 + source.timeout + 1) == [addr(1)]


async def test_bad_adverts_through_bluez_are_dropped_and_counted(bluez: MockBluez, hubs: HubFactory) -> None:
    await bluez.add_adapter("hci0")
    _, manager, driver = await hubs.start(ble_enabled=True, ble_watchdog=30, ble_scanning_mode="active")
    assert manager.ble is not None
    await wait_for(lambda: manager.ble.scanners[0].running)  # type: ignore[union-attr]
    # An oversize manufacturer payload next to a valid one, and a service-data key that is no UUID.
    await bluez.add_device("hci0", addr(20), "odd", {QD_COMPANY: b"\x01", 0x0001: b"x" * 400},
                           {"not-a-uuid": b"\x01"}, uuids=[])
    await wait_for(lambda: live(manager, driver, 1), timeout=30)
    info = driver.connections[f"qdtest-{addr(20).lower()}"].appliance
    assert info.key.endswith(addr(20).lower())
    assert manager.stats["ble_manufacturer_data_invalid"] >= 1 and manager.stats["ble_service_data_invalid"] >= 1
    tracked = manager.ble.tracks[addr(20)].info
    assert tracked.manufacturer_data == {QD_COMPANY: b"\x01"} and tracked.service_data == {}


async def test_several_adapters_scan_at_once(bluez: MockBluez, hubs: HubFactory) -> None:
    await bluez.add_adapter("hci0")
    await bluez.add_adapter("hci1")
    _, manager, driver = await hubs.start(ble_enabled=True, ble_watchdog=30, ble_scanning_mode="active",
                                          ble_adapters=["hci0", "hci1"])
    assert manager.ble is not None
    await wait_for(lambda: all(s.running for s in manager.ble.scanners))  # type: ignore[union-attr]
    await bluez.add_device("hci0", addr(30), "a", {QD_COMPANY: b"\x01"})
    await bluez.add_device("hci1", addr(31), "b", {QD_COMPANY: b"\x01"})
    await wait_for(lambda: live(manager, driver, 2), timeout=30)
    assert {manager.ble.tracks[addr(30)].adapter, manager.ble.tracks[addr(31)].adapter} == {"hci0", "hci1"}


async def test_one_appliance_over_mdns_and_ble_is_one_device(bluez: MockBluez, hubs: HubFactory) -> None:
    from tests.testbeds.mdns_responder import Responder, mac_for

    from .qd_driver import QD_TYPE

    await bluez.add_adapter("hci0")
    async with Responder(["127.0.0.1"], QD_TYPE, 1, tag="both"):
        hub, manager, driver = await hubs.start(ble_enabled=True, ble_scanning_mode="active", ble_watchdog=30,
                                                mdns_enabled=True, mdns_interfaces=["127.0.0.1"])
        assert manager.ble is not None
        await wait_for(lambda: manager.ble.scanners[0].running)  # type: ignore[union-attr]
        path = await bluez.add_device("hci0", mac_for("both", 0).upper(), "both", {QD_COMPANY: b"\x01"})
        # The radio stays on until the connection has heard it: on a loaded machine adoption can finish after
        # a short burst of adverts has ended, and a connection hears only adverts sent while it runs.
        async with radio(bluez, path):
            await wait_for(lambda: any(sorted(e["sources"]) == ["ble", "mdns"] for e in manager.inbox_entries()),
                           timeout=30)
            await wait_for(lambda: live(manager, driver, 1), timeout=30)
            assert len(hub.devices) == 1 and len(manager.inbox_entries()) == 1 and driver.starts == 1
            [conn] = driver.connections.values()
            # The connection hears the appliance over both radios: the one mDNS record too, which it got at its
            # start even when a stream of adverts had come after it (the lifecycle keeps each source's last one).
            await wait_for(lambda: {type(u).__name__ for u in conn.updates} == {"MdnsInfo", "BleInfo"}, timeout=30)


async def test_a_clock_stepped_back_delays_neither_changes_nor_expiry() -> None:
    """Advert times are wall-clock times. After the clock is stepped back an hour (NTP, a manual fix), a changed
    advert is still dispatched within min_interval, not an hour later, and a device that then goes quiet is
    forgotten one timeout after the step, not an hour and a timeout."""
    got: list[BleInfo] = []
    lost: list[str] = []
    source = BleSource(got.append, lost.append, min_interval=0.2)
    source._loop = asyncio.get_running_loop()
    source.handle(BleInfo(addr(1), "x", -50, {QD_COMPANY: b"\x01"}, time=5000.0))
    source.handle(BleInfo(addr(2), "quiet", -50, {QD_COMPANY: b"\x01"}, time=5000.0))  # not heard after the step
    stepped = 5000.0 - 3600
    source.handle(BleInfo(addr(1), "x", -50, {QD_COMPANY: b"\x02"}, time=stepped + 0.01))
    await wait_for(lambda: any(i.manufacturer_data[QD_COMPANY] == b"\x02" for i in got), timeout=5)
    assert source.expire(now=stepped + 1) == []
    assert sorted(source.expire(now=stepped + 1 + source.timeout + 1)) == [addr(1), addr(2)]


NO_BUS_PROBE = """
import asyncio, json, logging, sys
from {module} import BleSource

said = []
class Keep(logging.Handler):
    def emit(self, record): said.append(record.levelname + " " + record.getMessage())
logger = logging.getLogger("{module}")
logger.addHandler(Keep())
logger.setLevel(logging.DEBUG)

async def main():
    source = BleSource(lambda info: None, lambda address: None, bus_check=0.001)
    await source.async_start()
    [scanner] = source.scanners
    for _ in range(10_000):  # bounded: until the socket was looked for a few dozen times
        if scanner.bus_looks >= 30:
            break
        await asyncio.sleep(0.001)
    status = source.status()["adapters"][0]
    await source.async_stop()
    print(json.dumps({{"looks": scanner.bus_looks, "said": said, "status": status,
                      "dbus_fast": "dbus_fast" in sys.modules}}))

asyncio.run(main())
"""


def test_without_a_system_bus_the_scanner_says_so_once_and_loads_no_dbus_library(tmp_path: Path) -> None:
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus' / 'system_bus_socket'}"}
    out = subprocess.run([sys.executable, "-c", NO_BUS_PROBE.format(module=BleSource.__module__)], env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["looks"] >= 30  # looked for the bus again and again ...
    [said] = report["said"]  # ... and said so once, at WARNING, with no retries, backoff or failures
    assert said.startswith("WARNING") and "no D-Bus system bus" in said and "no-bus" in said
    assert report["status"]["no_system_bus"] and not report["status"]["running"]
    assert report["status"]["failures"] == 0 and "no BlueZ" in report["status"]["last_error"]
    assert not report["dbus_fast"]  # bleak's BlueZ backend never loaded


async def test_a_system_bus_that_appears_is_scanned_at_a_restart_request(
        bluez: MockBluez, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await bluez.add_adapter("hci0")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'system_bus_socket'}")
    source = BleSource(lambda info: None, lambda address: None, scanning_mode="active", bus_check=3600)
    await source.async_start()
    try:
        [scanner] = source.scanners
        await wait_for(lambda: scanner.no_system_bus is not None)
        assert not scanner.running and scanner.failures == 0
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bluez.address)  # the bus (and BlueZ) come up
        scanner.restart_now()  # the explicit event: not the hour-long interval
        await wait_for(lambda: scanner.running)
        assert scanner.no_system_bus is None and scanner.failures == 0
    finally:
        await source.async_stop()
