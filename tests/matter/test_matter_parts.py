"""Matter's parts that need no LAN: setup codes, what adverts become, the cluster table, the managed server's
errors, and the inbox gate that asks for a setup code. (tests/matter/test_matter_e2e.py runs them together.)"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from qilu_hub import Hub
from qilu_hub.appliances.lifecycle import ApplianceLifecycle
from qilu_hub.appliances.setup_codes import SetupCodeRequired
from qilu_hub.discovery.parse import mdns_info
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.matter.driver import MatterDriver
from qilu_hub.drivers.matter.manifest import MANIFEST, MATTER_BLE_SERVICE
from qilu_hub.matter import mapping
from qilu_hub.matter.codes import SetupCodeError, parse_setup_code
from qilu_hub.matter.controller import MatterController
from qilu_hub.matter.server import SERVER_VERSION, ServerUnavailable, check_installed
from qilu_hub.matter.settings import MatterSettings
from qilu_hub.sdk import BleInfo

# Pairing codes matter.js printed for its test appliances (vendor 0xFFF1, product 0x8000, passcode 20202021).
QR = "MT:Y.K90AFN00Y00648G00"  # discriminator 912
MANUAL = "04970112335"  # the same appliance's manual code


def test_qr_payload_carries_discriminator_vendor_and_product() -> None:
    code = parse_setup_code(QR)
    assert (code.discriminator, code.long_discriminator, code.vendor_id, code.product_id) == (912, True, 0xFFF1, 0x8000)
    assert code.matches(912, 0xFFF1, 0x8000)
    assert not code.matches(913, 0xFFF1, 0x8000) and not code.matches(912, 0xFFF1, 0x8001)
    assert "20202021" not in repr(code) and QR not in repr(code)  # the passcode never shows


def test_manual_code_carries_the_top_four_bits_only() -> None:
    code = parse_setup_code("0497-011-2335")
    assert (code.discriminator, code.long_discriminator) == (912 >> 8, False)
    assert code.matches(912, 0xFFF1, 0x8000) and code.matches(0x3FF, None, None)  # same top bits: ambiguous
    assert not code.matches(1169, None, None)


@pytest.mark.parametrize("bad", ["", "MT:", "MT:abc!", "04970112336", "1234", "MT:" + "0" * 600, "9" * 11])
def test_bad_codes_get_a_clear_error_without_the_code(bad: str) -> None:
    with pytest.raises(SetupCodeError) as info:
        parse_setup_code(bad)
    assert bad not in str(info.value) or not bad


def test_commissionable_mdns_advert_becomes_an_inbox_appliance() -> None:
    info = mdns_info("_matterc._udp.local.", "8D923C8865375876._matterc._udp.local.", "1A0B3153485B0000.local.", [],
                     5540, {b"D": b"912", b"VP": b"65521+32768", b"DN": b"virtual light", b"CM": b"1"})
    assert info is not None
    appliance = MatterDriver().identify(info)
    assert appliance is not None and appliance.key == "fff1-8000-912" and appliance.title == "virtual light"
    assert appliance.data["setup_code"] == "matter" and appliance.data["discriminator"] == 912
    # the random instance name of the next commissioning window is the same appliance
    again = mdns_info("_matterc._udp.local.", "0000000000000001._matterc._udp.local.", "x.local.", [], 5540,
                      {b"D": b"912", b"VP": b"65521+32768"})
    assert again is not None and MatterDriver().identify(again).key == appliance.key  # type: ignore[union-attr]
    operational = mdns_info("_matter._tcp.local.", "ABCD-0001._matter._tcp.local.", "x.local.", [], 5540, {})
    assert operational is not None and MatterDriver().identify(operational) is None
    broken = mdns_info("_matterc._udp.local.", "y._matterc._udp.local.", "x.local.", [], 5540, {b"D": b"99999"})
    assert broken is not None and MatterDriver().identify(broken) is None


def test_ble_advert_with_matter_service_data_is_the_same_appliance() -> None:
    payload = bytes([0]) + (912 | (0 << 12)).to_bytes(2, "little") + (0xFFF1).to_bytes(2, "little") \
        + (0x8000).to_bytes(2, "little") + b"\x00"
    info = BleInfo("AA:BB:CC:DD:EE:FF", None, -60, service_data={MATTER_BLE_SERVICE: payload})
    appliance = MatterDriver().identify(info)
    assert appliance is not None and appliance.key == "fff1-8000-912"
    assert MatterDriver().identify(BleInfo("AA:BB:CC:DD:EE:FF", None, -60,
                                           service_data={MATTER_BLE_SERVICE: b"\x01"})) is None
    assert any(m.service_data_uuid == MATTER_BLE_SERVICE for m in MANIFEST.ble)


def test_cluster_table_reads_and_commands() -> None:
    attrs = {"1/6/0": True, "1/8/0": 254, "1/8/2": 1, "1/8/3": 200, "1/768/7": 250, "2/69/0": False,
             "3/1026/0": 2150, "4/513/0": 2100, "4/513/18": 2000, "4/513/28": 4, "5/258/14": 2500}
    rows = mapping.entity_rows({6, 8, 768, 3, 29})
    assert len(rows) == 1 and rows[0][1] == ("on_off", "level", "color_temperature")
    light = rows[0][0]
    assert mapping.read(light, attrs, 1) == ("on", {"brightness": 255, "color_temp_kelvin": 4000})
    assert mapping.read(mapping.ROWS_BY_CLUSTER[69], attrs, 2)[0] == "on"  # StateValue false: the door is open
    assert mapping.read(mapping.ROWS_BY_CLUSTER[0x402], attrs, 3)[0] == 21.5
    assert mapping.read(mapping.ROWS_BY_CLUSTER[0x201], attrs, 4) == (
        "heat", {"current_temperature": 21.0, "temperature": 20.0, "hvac_modes": "heat,off"})
    assert mapping.read(mapping.ROWS_BY_CLUSTER[0x102], attrs, 5) == ("open", {"current_position": 75})
    # a brightness beyond what the appliance says it can do is brought within its max level
    (call,) = mapping.commands_for(light, 1, "turn_on", {"brightness": 255}, attrs)
    assert (call.cluster, call.command, call.fields["level"]) == (8, "MoveToLevelWithOnOff", 200)
    assert mapping.commands_for(light, 1, "toggle", {}, attrs)[0].command == "Toggle"
    (write,) = mapping.commands_for(mapping.ROWS_BY_CLUSTER[0x201], 4, "set_temperature", {"temperature": 21.5}, attrs)
    assert (write.write, write.value) == (18, 2150)
    with pytest.raises(mapping.UnsupportedCommand):
        mapping.commands_for(mapping.ROWS_BY_CLUSTER[69], 2, "turn_on", {}, attrs)
    # a fan reports what it runs at (PercentCurrent) and is told a setting (PercentSetting)
    fan = mapping.ROWS_BY_CLUSTER[0x202]
    assert mapping.read(fan, {"6/514/2": 80, "6/514/3": 40}, 6) == ("on", {"percentage": 40})
    (setting,) = mapping.commands_for(fan, 6, "set_percentage", {"percentage": 30}, {})
    assert (setting.cluster, setting.write, setting.value) == (0x202, 2, 30)
    # electrical power in mW, energy as a struct in mWh, battery in half percent
    assert mapping.read(mapping.ROWS_BY_CLUSTER[0x90], {"7/144/8": 61500}, 7)[0] == 61.5
    assert mapping.read(mapping.ROWS_BY_CLUSTER[0x91], {"7/145/1": {"energy": 2_500_000}}, 7)[0] == 2.5
    assert mapping.read(mapping.ROWS_BY_CLUSTER[0x2F], {"8/47/12": 150}, 8)[0] == 75
    # a value the appliance has not given, or gave in a type the cluster does not have, is no state at all
    # (the entity keeps what it showed or stays unknown), not a guess such as "off"
    for cluster, endpoint, wrong in ((6, 1, 1), (69, 2, "closed"), (0x406, 9, True), (0x201, 4, "heat"),
                                     (0x102, 5, None), (0x101, 10, None), (0x202, 6, "fast")):
        row = mapping.ROWS_BY_CLUSTER[cluster]
        assert mapping.read(row, {}, endpoint)[0] is None, cluster
        primary = {6: 0, 69: 0, 0x406: 0, 0x201: 28, 0x102: 14, 0x101: 0, 0x202: 3}[cluster]
        if wrong is not None:
            assert mapping.read(row, {f"{endpoint}/{cluster}/{primary}": wrong}, endpoint)[0] is None, cluster


def test_missing_or_wrong_server_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ServerUnavailable, match="qilu-hub matter server install"):
        check_installed(tmp_path / "no-venv")
    # a venv holding another version (its python answers the version query with 6.1.2): both versions named
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\necho 6.1.2\n")
    python.chmod(0o755)
    (venv / "bin" / "matter-server").write_text("")
    with pytest.raises(ServerUnavailable, match=f"6.1.2 .* not the version this hub uses \\({SERVER_VERSION}\\)"):
        check_installed(venv)


async def test_hub_starts_without_a_server_and_says_why(tmp_path: Path) -> None:
    settings = MatterSettings(server="managed", venv=tmp_path / "missing-venv")
    hub = Hub(tmp_path / "config", {"recorder": {"commit_interval": 0.05}})
    controller = MatterController(settings)
    hub.add_component(controller)
    await hub.async_start()
    try:
        assert controller.problem is not None and "qilu-hub matter server install" in controller.problem
        assert controller.status()["connected"] is False
        with pytest.raises(ServerUnavailable):
            await controller.async_wait_connected(0.1)
    finally:
        await hub.async_stop()


async def test_inbox_asks_for_a_setup_code_and_checks_it(tmp_path: Path) -> None:
    """A commissionable appliance waits in the inbox for its code; a code of another appliance is refused."""
    hub = Hub(tmp_path / "config", {"recorder": {"commit_interval": 0.05}})
    drivers = DriverManager(builtin=False, entry_points_group=None, drivers=[MatterDriver()])
    hub.add_component(drivers)
    lifecycle = ApplianceLifecycle(drivers, mdns_enabled=False, ble_enabled=False)
    hub.add_component(lifecycle)
    await hub.async_start()
    try:
        info = mdns_info("_matterc._udp.local.", "A._matterc._udp.local.", "a.local.", [], 5540,
                         {b"D": b"912", b"VP": b"65521+32768"})
        assert info is not None
        lifecycle.handle(info, "mdns:A")
        (entry,) = lifecycle.inbox_entries()
        assert entry["key"] == "fff1-8000-912" and entry["problem"] == "needs_setup_code"
        with pytest.raises(SetupCodeRequired):
            await lifecycle.async_adopt(entry["key"])
        other = "MT:-24J0IRV018F0648G00"  # discriminator 1169, product 0x8001
        with pytest.raises(ValueError, match="another appliance"):
            await lifecycle.async_adopt(entry["key"], setup_code=other)
        with pytest.raises(SetupCodeError):
            await lifecycle.async_adopt(entry["key"], setup_code="MT:???")
        assert hub.storage.load("setup_code") == {}  # nothing kept from refused codes
    finally:
        await hub.async_stop()


def test_companion_unit_installs_beside_the_hubs_and_verifies(tmp_path: Path) -> None:
    from qilu_hub.cli import main
    from qilu_hub.cli.service import MATTER_UNIT_NAME, UNIT_NAME

    assert main(["service", "install", "--matter-server", "--primary-interface", "eth0", "--prefix", str(tmp_path),
                 "--unit-dir", "/etc/systemd/system"]) == 0
    unit = tmp_path / "etc" / "systemd" / "system" / MATTER_UNIT_NAME
    text = unit.read_text()
    assert f"Before={UNIT_NAME}" in text and "--listen-address 127.0.0.1" in text  # never on the LAN
    assert "--primary-interface eth0" in text and "BindPaths=/var/lib/qilu-hub/matter-server/chip:/data" in text
    tool = shutil.which("systemd-analyze")
    if tool is not None:
        result = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
        # The venv exists only on the gateway (`matter server install`); anything else would be a unit error.
        problems = [line for line in result.stderr.splitlines() if MATTER_UNIT_NAME in line
                    and "is not executable" not in line]
        assert problems == []
    assert main(["service", "uninstall", "--matter-server", "--prefix", str(tmp_path),
                 "--unit-dir", "/etc/systemd/system"]) == 0
    assert not unit.exists()


async def test_ble_advert_reaches_the_inbox_through_bluez(bluez: Any, tmp_path: Path) -> None:
    """An appliance before it has a network, heard by bleak's real BlueZ backend (python-dbusmock's BlueZ):
    it waits in the inbox for its setup code. Commissioning it over BLE is matter-server's and needs an adapter."""
    await bluez.add_adapter("hci0")
    hub = Hub(tmp_path / "config", {"recorder": {"commit_interval": 0.05}}, recorder=False)
    drivers = DriverManager(builtin=False, entry_points_group=None, drivers=[MatterDriver()])
    hub.add_component(drivers)
    lifecycle = ApplianceLifecycle(drivers, mdns_enabled=False, ble_enabled=True, ble_scanning_mode="active")
    hub.add_component(lifecycle)
    await hub.async_start()
    try:
        assert lifecycle.ble is not None
        for _ in range(300):  # bounded: the scanner starts
            if lifecycle.ble.scanners and lifecycle.ble.scanners[0].running:
                break
            await asyncio.sleep(0.05)
        payload = b"\x00" + (912).to_bytes(2, "little") + (0xFFF1).to_bytes(2, "little") \
            + (0x8000).to_bytes(2, "little")
        path = await bluez.add_device("hci0", "C0:78:00:00:09:12", "MATTER-0912",
                                      service_data={MATTER_BLE_SERVICE: payload})
        for n in range(300):  # bounded: 15 s; the appliance keeps advertising (BlueZ reports each advert)
            entries = lifecycle.inbox_entries()
            if entries:
                break
            await bluez.update_device(path, rssi=-60 - n % 2)
            await asyncio.sleep(0.05)
        assert [(e["key"], e["problem"]) for e in entries] == [("fff1-8000-912", "needs_setup_code")]
    finally:
        await hub.async_stop()
