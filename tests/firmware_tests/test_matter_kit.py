"""The Matter conformance kit against real matter.js appliances on the namespace LAN: a good one conforms, each
broken variant fails for its reason (the variants are in tests/testbeds/matter_devices/virtual_appliances.mjs:
ignores commands, incomplete Basic Information, forgets its state, never reports, wrong attribute types, ignores
transition times, measures in the wrong scale); and the --reference flag refuses what it cannot use."""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from qilu_hub.firmware_tests.matter import MatterConformanceKit
from qilu_hub.firmware_tests.matter_units import UNITS, BadReference, judge, parse_reference, parse_references
from qilu_hub.matter.server import ManagedServer
from qilu_hub.matter.settings import MatterSettings
from tests.conftest import skip_outside_ci
from tests.testbeds import matter as bed

pytestmark = pytest.mark.timeout(360)


@pytest.fixture(scope="module")
def appliances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bed.Appliances]:
    reason = bed.missing()
    if reason:
        skip_outside_ci(reason)
    with bed.MatterLan(tmp_path_factory.mktemp("matter-kit")) as lan:
        found = lan.appliances(["light", "plug:ignores-commands", "temperature:incomplete-info",
                                "light:forgets-state", "plug:never-reports", "light:wrong-types",
                                "light:ignores-transitions", "humidity", "temperature:wrong-scale",
                                "humidity:wrong-scale"])
        lan.enter()
        yield found


@pytest.fixture
async def server_url(appliances: bed.Appliances, tmp_path: Path) -> AsyncIterator[str]:
    settings = MatterSettings(**{**bed.managed_server_config(port=20000 + secrets.randbelow(30000)),  # type: ignore[arg-type]
                                 "venv": bed.SERVER_VENV, "paa_root_cert_dir": bed.PAA})
    server = ManagedServer(settings, tmp_path)
    await server.async_start()
    yield settings.ws_url()
    await server.async_stop()


async def _restart_on_request(appliances: bed.Appliances, flag: Path) -> None:
    """Restart the appliances whenever the kit's restart command leaves ``flag``; remove it when done."""
    for _ in range(3000):  # bounded: the test's own timeout ends it sooner
        if flag.exists():
            await asyncio.to_thread(appliances.restart)
            flag.unlink()
        await asyncio.sleep(0.05)


async def test_good_and_broken_appliances(appliances: bed.Appliances, server_url: str, tmp_path: Path) -> None:
    # The good light, through the command line in another process: it conforms, with JUnit and HTML reports.
    # Its --restart-command asks this test to restart the appliances' process (a power cut, storage kept).
    junit, html, flag = tmp_path / "junit.xml", tmp_path / "report.html", tmp_path / "restart-please"
    restart_command = f"touch {flag} && timeout 90 sh -c 'while [ -e {flag} ]; do sleep 0.1; done'"
    restarter = asyncio.create_task(_restart_on_request(appliances, flag))
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qilu_hub", "firmware-test", "--matter", appliances.qr("light-0"),
        "--matter-url", server_url, "--junit", str(junit), "--report", str(html),
        "--restart-command", restart_command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await asyncio.wait_for(cli.communicate(), 180))[0].decode()
    restarter.cancel()
    assert cli.returncode == 0, output
    assert "CONFORMS" in output and "PASS  onoff.toggle" in output and "PASS  level.bounds" in output
    assert "PASS  level.transition" in output  # the light follows a 2 s transition and reports its end
    assert "PASS  restart.state" in output and "PASS  restart.subscription" in output
    assert 'failures="0"' in junit.read_text() and "Conforms" in html.read_text()

    # A light that comes back from a restart in its factory state
    report = await MatterConformanceKit(appliances.qr("light-3"), url=server_url,
                                        restart=lambda: asyncio.to_thread(appliances.restart)).run()
    state = report.get("restart.state")
    assert state is not None and state.status == "fail" and "forgot its state" in state.message, report.text()
    assert report.get("onoff.toggle").status == "pass"  # type: ignore[union-attr]
    assert report.get("restart.subscription").status == "pass"  # type: ignore[union-attr]

    # A plug that accepts On/Off commands and ignores them
    report = await MatterConformanceKit(appliances.qr("plug-1"), url=server_url).run()
    assert not report.ok
    toggle = report.get("onoff.toggle")
    assert toggle is not None and toggle.status == "fail" and "stayed" in toggle.message
    assert report.get("basic.information").status == "pass"  # type: ignore[union-attr]

    # A sensor without a serial number: a hub cannot tell it from another of its kind. Its 2150 is 21.5 °C in the
    # specification's 0.01 °C, as the reference says.
    report = await MatterConformanceKit(appliances.qr("temperature-2"), url=server_url,
                                        references=parse_references(["temperature=21.5±1.5"])).run()
    basic = report.get("basic.information")
    assert basic is not None and basic.status == "fail" and "serial number" in basic.message
    assert report.get("measurement.range").status == "pass"  # type: ignore[union-attr]
    units = report.get("measurement.units")
    assert units is not None and units.status == "pass", report.text()
    assert "2150 reads as 21.5 °C, within the reference 21.5 ± 1.5 °C" in units.details[0]

    # A plug that takes the subscription and stays silent on it: the change is read back, never reported
    report = await MatterConformanceKit(appliances.qr("plug-4"), url=server_url).run()
    toggle = report.get("onoff.toggle")
    assert toggle is not None and toggle.status == "fail", report.text()
    assert "changed to True (read back) but no report of it came" in toggle.message
    assert report.get("attributes.types").status == "pass"  # type: ignore[union-attr]

    # A light that sends OnOff as an integer and CurrentLevel as a string (the kit's client keeps listening)
    report = await MatterConformanceKit(appliances.qr("light-5"), url=server_url).run()
    types = report.get("attributes.types")
    assert types is not None and types.status == "fail", report.text()
    assert "1/6/0 (OnOff) is int" in types.message and "1/8/0 (CurrentLevel) is str" in types.message
    assert "not a boolean" in report.get("onoff.toggle").message  # type: ignore[union-attr]
    assert report.get("basic.information").status == "pass"  # type: ignore[union-attr]

    # A light that jumps to a level command's target whatever its transition time
    report = await MatterConformanceKit(appliances.qr("light-6"), url=server_url).run()
    transition = report.get("level.transition")
    assert transition is not None and transition.status == "fail" and "jumped" in transition.message, report.text()
    assert report.get("level.bounds").status == "pass"  # type: ignore[union-attr]

    # A humidity sensor in 0.01 % conforms, judged against a reference
    report = await MatterConformanceKit(appliances.qr("humidity-7"), url=server_url,
                                        references=parse_references(["humidity=45±10"])).run()
    assert report.ok and report.get("measurement.units").status == "pass", report.text()  # type: ignore[union-attr]

    # A temperature sensor in whole °C (22 for 22 °C, its range -40..85): within its declared range, and within
    # what 0.01 °C can mean, so only the reference (given on the command line) tells; a reference for a quantity
    # the appliance does not measure is named too
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qilu_hub", "firmware-test", "--matter", appliances.qr("temperature-8"),
        "--matter-url", server_url, "--reference", "temperature=21.5±1.5", "--reference", "humidity=45±10",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await asyncio.wait_for(cli.communicate(), 120))[0].decode()
    assert cli.returncode == 1 and "DOES NOT CONFORM" in output, output
    assert "PASS  measurement.range" in output and "FAIL  measurement.units" in output
    assert ("endpoint 1 temperature: 22 reads as 0.22 °C (the specification's unit is 0.01 °C); the reference is "
            "21.5 ± 1.5 °C: is the value in °C instead of 0.01 °C?") in output
    assert "a reference for humidity was given, but no endpoint has Relative Humidity Measurement" in output

    # The same fault in a humidity sensor (45 for 45 %), without a reference: the kit says it could not judge
    # the scale (a skip, never a silent pass) and what the reading means in the specification's unit
    report = await MatterConformanceKit(appliances.qr("humidity-9"), url=server_url).run()
    units = report.get("measurement.units")
    assert units is not None and units.status == "skip", report.text()
    assert "humidity (endpoint 1) not judged" in units.message
    assert units.details == ["endpoint 1 humidity: 45 reads as 0.45 % in the specification's unit (0.01 %); its scale "
                             "is not judged without --reference humidity=VALUE±TOLERANCE"]

    # A code that is not one fails before anything is commissioned
    report = await MatterConformanceKit("MT:nonsense", url=server_url).run()
    assert [(r.id, r.status) for r in report.results] == [("commission", "fail")]


@pytest.mark.parametrize(("argument", "reason"), [
    ("temp=21", "no quantity 'temp' (one of temperature, humidity"),
    ("temperature", "give QUANTITY[@ENDPOINT]=VALUE[±TOLERANCE]"),
    ("temperature=warm", "the value 'warm' is not a number"),
    ("temperature=21±x", "the tolerance 'x' is not a number"),
    ("temperature=70°F", "temperature is given in °C (what the kit decodes Temperature Measurement to), not '°F'"),
    ("humidity=140", "humidity 140 % is outside what the quantity can be (0 to 100 %)"),
    ("temperature@one=4", "the endpoint 'one' is not an endpoint number"),
    ("temperature=21±-1", "the tolerance must not be negative"),
])
def test_bad_references_are_refused(argument: str, reason: str) -> None:
    with pytest.raises(BadReference, match=re.escape(reason)):
        parse_reference(argument)


def test_references_and_the_scaling_they_reveal() -> None:
    assert parse_reference("temperature@2=-18 +/- 2 °C").text() == "-18 ± 2 °C (endpoint 2)"
    assert parse_reference("illuminance=300").tolerance == 150  # the default: half the value for a logarithmic unit
    with pytest.raises(BadReference, match="--reference humidity is given twice"):
        parse_references(["humidity=45", "humidity=50±5"])
    reference = parse_reference("temperature=21.5±1.5")
    # Each reading is judged in the specification's unit, and a mismatch names the scaling that would match
    cases = {2150: None, 215: "in 0.1 °C instead of 0.01 °C", 7070: "in 0.01 °F instead of 0.01 °C",
             500: "no other usual scaling of it matches", -28000: "outside what 0.01 °C can mean"}
    for raw, hint in cases.items():
        problem = judge(UNITS["temperature"], 1, raw, reference).problem
        assert (problem is None) if hint is None else (problem is not None and hint in problem), (raw, problem)
    problem = judge(UNITS["battery"], 0, 80, parse_reference("battery=80±5")).problem
    assert problem is not None and "40 %" in problem and "in % instead of half percent" in problem
    problem = judge(UNITS["illuminance"], 1, 300, parse_reference("illuminance=300±50")).problem
    assert problem is not None and "in lx (not logarithmic) instead of 10000 × log10(lx) + 1" in problem
    assert judge(UNITS["power"], 1, 60000, parse_reference("power=60±5W")).problem is None  # 60000 mW


async def test_cli_refuses_a_bad_reference_before_commissioning() -> None:
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qilu_hub", "firmware-test", "--matter", "MT:Y.K90AFN00Y00648G00", "--matter-url",
        "ws://127.0.0.1:9/ws", "--reference", "temperature=21.5±1.5", "--reference", "humidity=45±ten",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await asyncio.wait_for(cli.communicate(), 60))[0].decode()
    assert cli.returncode == 2, output
    assert "--reference 'humidity=45±ten': the tolerance 'ten' is not a number" in output
    assert "Checking" not in output  # nothing was started
    # A reference means something to the Matter kit only
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qilu_hub", "firmware-test", "--host", "127.0.0.1", "--reference", "temperature=21",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await asyncio.wait_for(cli.communicate(), 60))[0].decode()
    assert cli.returncode == 2 and "--reference applies to --matter only" in output, output
