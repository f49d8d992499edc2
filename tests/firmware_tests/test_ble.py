"""The BLE conformance kit through bleak's real BlueZ backend against the mock BlueZ: the good smart lock
conforms, and each broken firmware variant fails exactly its check, for its reason."""

from __future__ import annotations

import asyncio
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from qilu_hub.drivers.qoap.ble_simulator import QoapBleSimulator
from qilu_hub.firmware_tests import BleConformanceKit, Report
from tests.testbeds import bluez as bluez_bed

ADDRESS = "C0:0A:00:00:00:42"
BOUND = 2.0  # seconds for a result or notification: the mock answers in milliseconds, even on a busy machine
CHECKS = ["ble.advertised", "gatt.services", "description.valid", "state.readable", "commands.round_trip",
          "bad_input.rejected", "framing.fragmented", "framing.oversize", "notify.resubscribe", "link.reconnect"]


async def run_kit(bluez: bluez_bed.MockBluez, variant: str = "ok", **sim_args: object) -> tuple[Report, list[str]]:
    await bluez.add_adapter("hci0")
    sim = QoapBleSimulator(ADDRESS, variant=variant, advert_interval=0.2, **sim_args)  # type: ignore[arg-type]
    await sim.start()
    progress: list[str] = []
    try:
        kit = BleConformanceKit(ADDRESS, adapter="hci0", bound=BOUND, scan_timeout=5.0,
                                progress=lambda done, total, r: progress.append(f"{done}/{total} {r.id}"))
        return await kit.run(), progress
    finally:
        await sim.stop()


async def test_good_lock_conforms(bluez: bluez_bed.MockBluez) -> None:
    report, progress = await run_kit(bluez, frame_size=40)  # several frames per read
    assert report.ok, report.text()
    assert [r.id for r in report.results] == CHECKS
    assert [r.status for r in report.results] == ["pass"] * len(CHECKS), report.text()
    assert progress[0] == "1/10 ble.advertised" and progress[-1] == "10/10 link.reconnect"
    assert report.device["id"] == "qoap-smartlock-0001"
    print(report.text())


@pytest.mark.parametrize(("variant", "check", "words"), [
    ("bad_advert", "ble.advertised", "service data is 4 bytes"),
    ("bad_props", "gatt.services", "command characteristic 7e1a0004-5143-4f41-9000-716f61700001 lacks indicate"),
    ("bad_description", "description.valid", "unknown capabilities ['teleport']"),
    ("silent", "commands.round_trip", f"no state notification within {BOUND:g} s"),
    ("lax", "bad_input.rejected", "answered ok=True, expected a refusal"),
    ("no_reassembly", "framing.fragmented", "got no result with id"),
    ("no_oversize", "framing.oversize", "got no invalid_format result"),
    ("no_resubscribe", "notify.resubscribe", "after unsubscribing and subscribing again"),
    ("no_reconnect", "link.reconnect", "no new connection after a disconnect"),
])
async def test_broken_variant_fails_exactly_its_check(bluez: bluez_bed.MockBluez, variant: str, check: str,
                                                      words: str) -> None:
    report, _ = await run_kit(bluez, variant)
    assert [r.id for r in report.failed] == [check], report.text()
    failed = report.failed[0]
    assert words in failed.message, report.text()
    assert not report.ok and "DOES NOT CONFORM" in report.text()
    assert all(r.status == "pass" for r in report.results[:report.results.index(failed)])
    if variant == "lax":  # what a lax firmware gets away with over IP too: every refusal is checked
        assert {d.split(":")[0] for d in failed.details} == {"unknown entity", "unknown command", "unknown argument",
                                                              "wrong argument type"}


async def firmware_test(*args: str) -> tuple[int, str, str]:
    """``qilu-hub firmware-test`` in its own process, as a maker runs it (the mock's bus is in the environment)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "qilu_hub", "firmware-test", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(("variant", "code", "words"), [("ok", 0, "CONFORMS: 10 passed"),
                                                        ("no_oversize", 1, "DOES NOT CONFORM: 9 passed, 1 failed")])
async def test_cli_checks_a_ble_appliance(bluez: bluez_bed.MockBluez, tmp_path: Path, variant: str, code: int,
                                          words: str) -> None:
    await bluez.add_adapter("hci1")
    sim = QoapBleSimulator(ADDRESS, adapter="hci1", variant=variant, advert_interval=0.2)  # type: ignore[arg-type]
    await sim.start()
    try:
        junit, page = tmp_path / "ble.xml", tmp_path / "ble.html"
        rc, out, err = await firmware_test("--ble", ADDRESS.lower(), "--adapter", "hci1", "--bound", str(BOUND),
                                           "--junit", str(junit), "--report", str(page))
    finally:
        await sim.stop()
    assert rc == code, out + err
    assert words in out and f"BLE {ADDRESS} via hci1" in out
    assert "[1/10] PASS ble.advertised" in err and "[10/10]" in err  # progress while it runs
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "10" and suite.get("failures") == str(code)
    if code:
        failure = suite.find("testcase[@name='framing.oversize']/failure")
        assert failure is not None and "invalid_format" in (failure.get("message") or "")
    assert page.read_text().startswith("<!doctype html>")


@pytest.mark.parametrize(("args", "words"), [
    (["--ble", "C0:0A:00:00:00:42", "--host", "127.0.0.1"], "not allowed with argument"),
    (["--ble", "not-an-address"], "is not a Bluetooth address"),
    (["--ble", "C0:0A:00:00:00:42", "--port", "80"], "--port applies to --host only"),
    (["--host", "127.0.0.1", "--adapter", "hci0"], "apply to --ble only"),
])
async def test_cli_refuses_bad_arguments(args: list[str], words: str) -> None:
    rc, _, err = await firmware_test(*args)
    assert rc == 2 and words in err


async def test_appliance_that_crashes_on_bad_input_fails_that_check_and_is_reconnected(
        bluez: bluez_bed.MockBluez) -> None:
    report, _ = await run_kit(bluez, "crashy")
    assert [r.id for r in report.failed] == ["bad_input.rejected"], report.text()
    assert "dropped the link after not msgpack" in report.failed[0].message
    for check in ("framing.fragmented", "framing.oversize", "notify.resubscribe"):
        skipped = report.get(check)
        assert skipped is not None and skipped.status == "skip" and "dropped the link" in skipped.message
    reconnect = report.get("link.reconnect")
    assert reconnect is not None and reconnect.status == "pass", report.text()  # a crash is survivable


async def test_absent_appliance_fails_the_advert_and_skips_the_rest(bluez: bluez_bed.MockBluez) -> None:
    await bluez.add_adapter("hci0")
    report = await BleConformanceKit(ADDRESS, scan_timeout=0.5).run()
    assert report.results[0].status == "fail" and "was not heard on hci0 within 0.5 s" in report.results[0].message
    assert [r.status for r in report.results[1:]] == ["skip"] * 9


async def test_missing_adapter_is_reported_as_such(bluez: bluez_bed.MockBluez) -> None:
    await bluez.add_adapter("hci0")
    report = await BleConformanceKit(ADDRESS, adapter="hci7", scan_timeout=0.5).run()
    advert = report.results[0]
    assert advert.status == "fail" and advert.message.startswith("cannot scan on hci7"), advert.message
    assert "bluetoothctl" in advert.message
