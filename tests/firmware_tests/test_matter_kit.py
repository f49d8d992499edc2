"""The Matter conformance kit against real matter.js appliances on the namespace LAN: a good one conforms, each
broken variant fails for its reason (the variants are in tests/testbeds/matter_devices/virtual_appliances.mjs:
ignores commands, incomplete Basic Information, forgets its state, never reports, wrong attribute types, ignores
transition times)."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from qilu_hub.firmware_tests.matter import MatterConformanceKit
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
                                "light:ignores-transitions"])
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

    # A sensor without a serial number: a hub cannot tell it from another of its kind
    report = await MatterConformanceKit(appliances.qr("temperature-2"), url=server_url).run()
    basic = report.get("basic.information")
    assert basic is not None and basic.status == "fail" and "serial number" in basic.message
    assert report.get("measurement.range").status == "pass"  # type: ignore[union-attr]

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

    # A code that is not one fails before anything is commissioned
    report = await MatterConformanceKit("MT:nonsense", url=server_url).run()
    assert [(r.id, r.status) for r in report.results] == [("commission", "fail")]
