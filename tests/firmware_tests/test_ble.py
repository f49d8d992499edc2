"""The BLE conformance kit through bleak's real BlueZ backend against the mock BlueZ: the good smart lock
conforms, and each broken firmware variant fails exactly its check, for its reason."""

from __future__ import annotations

import pytest

from drivers.qoap.ble_simulator import QoapBleSimulator
from firmware_tests import Report
from firmware_tests.ble import BleConformanceKit
from tests.testbeds import bluez as bluez_bed

ADDRESS = "C0:0A:00:00:00:42"
CHECKS = ["ble.advertised", "gatt.services", "description.valid", "state.readable", "commands.round_trip",
          "bad_input.rejected", "framing.fragmented", "framing.oversize", "notify.resubscribe", "link.reconnect"]


async def run_kit(bluez: bluez_bed.MockBluez, variant: str = "ok", **sim_args: object) -> tuple[Report, list[str]]:
    await bluez.add_adapter("hci0")
    sim = QoapBleSimulator(ADDRESS, variant=variant, advert_interval=0.2, **sim_args)  # type: ignore[arg-type]
    await sim.start()
    progress: list[str] = []
    try:
        kit = BleConformanceKit(ADDRESS, adapter="hci0", bound=1.0, scan_timeout=5.0,
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
    ("silent", "commands.round_trip", "no state notification within 1 s"),
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
    if variant == "lax":  # what a lax firmware gets away with over IP too: every refusal is checked
        assert {d.split(":")[0] for d in failed.details} == {"unknown entity", "unknown command", "unknown argument",
                                                              "wrong argument type"}
