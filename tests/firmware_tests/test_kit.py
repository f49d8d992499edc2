"""The conformance kit passes the good simulators and fails each broken variant for the right reason."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import pytest

from qilu_hub.drivers.qoap.simulator import QoapSimulator, Variant
from qilu_hub.firmware_tests import ConformanceKit, Report, plans_for
from qilu_hub.firmware_tests.results import CheckResult
from qilu_hub.sdk.testing import MdnsAdvertiser


@pytest.fixture
async def advertiser() -> AsyncIterator[MdnsAdvertiser]:
    adv = MdnsAdvertiser("127.0.0.1")
    await adv.start()
    yield adv
    await adv.close()


async def run_kit(advertiser: MdnsAdvertiser, kind: str, variant: Variant = "ok") -> tuple[Report, list[str]]:
    sim = QoapSimulator(kind, advertiser=advertiser, variant=variant, restart_delay=0.3)
    await sim.start()
    progress: list[str] = []
    try:
        kit = ConformanceKit("127.0.0.1", sim.port, bound=1.5,
                             progress=lambda done, total, r: progress.append(f"{done}/{total} {r.id}"))
        return await kit.run(), progress
    finally:
        await sim.stop()


def status(report: Report, check_id: str) -> str:
    result = report.get(check_id)
    assert result is not None, check_id
    return result.status


@pytest.mark.parametrize("kind", ["air_conditioner", "fridge", "washing_machine"])
async def test_good_appliances_conform(advertiser: MdnsAdvertiser, kind: str) -> None:
    report, progress = await run_kit(advertiser, kind)
    assert report.ok, report.text()
    assert [r.status for r in report.results] == ["pass"] * 9
    assert progress[0] == "1/9 mdns.advertised" and progress[-1] == "9/9 restart.reconnect"
    assert "CONFORMS" in report.text()


async def test_profile_1_0_firmware_conforms_with_the_identity_check_skipped(advertiser: MdnsAdvertiser) -> None:
    report, _ = await run_kit(advertiser, "fridge", "profile_1_0")
    assert report.ok, report.text()
    identity = report.get("identity.proof")
    assert identity is not None and identity.status == "skip"
    assert "1.0" in identity.message and "confirm every address change" in identity.message


async def test_identity_not_bound_to_the_address_fails_the_identity_check(advertiser: MdnsAdvertiser) -> None:
    report, _ = await run_kit(advertiser, "fridge", "unbound_identity")
    assert not report.ok
    identity = report.get("identity.proof")
    assert identity is not None and identity.status == "fail" and "does not verify" in identity.message
    assert [r.id for r in report.failed] == ["identity.proof"]


async def test_wrong_txt_record_fails_the_txt_check(advertiser: MdnsAdvertiser) -> None:
    report, _ = await run_kit(advertiser, "fridge", "bad_txt")
    assert not report.ok
    assert status(report, "mdns.advertised") == "pass"
    txt = report.get("mdns.txt_schema")
    assert txt is not None and txt.status == "fail" and "'pv' is missing" in txt.message
    description = report.get("description.valid")
    assert description is not None and description.status == "fail" and "someone-else" in description.message


async def test_missing_notifications_fail_the_round_trip(advertiser: MdnsAdvertiser) -> None:
    report, _ = await run_kit(advertiser, "fridge", "silent")
    for check in ("mdns.txt_schema", "description.valid", "state.readable", "ws.formats"):
        assert status(report, check) == "pass", check
    commands = report.get("commands.round_trip")
    assert commands is not None and commands.status == "fail"
    assert all("no state notification" in d for d in commands.details)  # the state did change; no push came


async def test_crash_on_bad_input_fails_the_bad_input_check(advertiser: MdnsAdvertiser) -> None:
    report, _ = await run_kit(advertiser, "fridge", "crashy")
    assert status(report, "commands.round_trip") == "pass"
    bad = report.get("bad_input.rejected")
    assert bad is not None and bad.status == "fail" and "stopped answering" in bad.message
    assert status(report, "restart.reconnect") == "skip"


async def test_absent_device_fails_fast_and_skips_the_rest() -> None:
    kit = ConformanceKit("127.0.0.1", 1, mdns_timeout=1.0)
    report = await kit.run()
    assert status(report, "mdns.advertised") == "fail"
    assert status(report, "description.valid") == "fail"  # connection refused, reported as such
    assert status(report, "state.readable") == "skip"


def test_reports_render() -> None:
    report = Report(target="127.0.0.1:1", profile="qoap 1.0")
    report.results += [CheckResult("mdns.advertised", "Advertised", "pass", "ok"),
                       CheckResult("mdns.txt_schema", "TXT", "fail", "TXT key 'pv' is missing", ["<pv>"]),
                       CheckResult("state.readable", "State", "skip", "needs description.valid")]
    suite = ET.fromstring(report.junit_xml()).find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    failure = suite.find("testcase[@name='mdns.txt_schema']/failure")
    assert failure is not None and failure.get("message") == "TXT key 'pv' is missing"
    page = report.html()
    assert "Does not conform" in page and "&lt;pv&gt;" in page


def test_plans_cover_the_command_capabilities() -> None:
    assert [p.command for p in plans_for(["operational_state"])] == ["start", "pause", "resume", "stop"]
    assert [p.command for p in plans_for(["on_off", "level"])][-1] == "turn_on"
    assert plans_for(["temperature"]) == []
    with pytest.raises(ValueError):
        ConformanceKit("127.0.0.1", profile_name="zigbee")
