"""The ``discover`` and ``inbox`` commands, run as the installed command line runs them."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qilu_hub.cli import main
from qilu_hub.discovery import MdnsInfo
from tests.testbeds.mdns_responder import Responder

from .conftest import HubFactory
from .qd_driver import QD_TYPE, QdDriver
from .test_manager import mdns

ROOT = Path(__file__).resolve().parents[2]


async def test_inbox_list_ignore_adopt_on_the_stored_inbox(hubs: HubFactory, capsys: pytest.CaptureFixture[str],
                                                           ) -> None:
    hub, manager, _ = await hubs.start(QdDriver(auto_adopt=False))
    manager.handle(mdns(i=1, mac="02:78:00:00:00:01"), "mdns:1")
    manager.handle(mdns(i=2, mac="02:78:00:00:00:02"), "mdns:2")
    await hubs.stop(hub)
    config = str(hubs.config_dir)
    assert main(["--config", config, "inbox", "list"]) == 0
    out = capsys.readouterr().out
    assert "qdtest-02:78:00:00:00:01" in out and "pending" in out
    assert main(["--config", config, "inbox", "ignore", "qdtest-02:78:00:00:00:01"]) == 0
    assert main(["--config", config, "inbox", "adopt", "qdtest-02:78:00:00:00:02"]) == 0
    assert main(["--config", config, "inbox", "adopt", "nope"]) == 1
    capsys.readouterr()

    # The next hub start honours both decisions when the appliances show up.
    hub, manager, driver = await hubs.start(QdDriver(auto_adopt=False))
    manager.handle(mdns(i=1, mac="02:78:00:00:00:01"), "mdns:1")
    manager.handle(mdns(i=2, mac="02:78:00:00:00:02"), "mdns:2")
    for _ in range(200):
        if driver.connections:
            break
        await asyncio.sleep(0.02)
    assert list(driver.connections) == ["qdtest-02:78:00:00:00:02"]
    states = {e["key"]: e["state"] for e in manager.inbox_entries()}
    assert states == {"qdtest-02:78:00:00:00:01": "ignored", "qdtest-02:78:00:00:00:02": "adopted"}


async def test_inbox_decisions_from_the_command_line_reach_a_running_hub(
    hubs: HubFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`qilu-hub inbox adopt|ignore` write the database while the hub runs; the hub acts on them within its
    check interval, and a sighting in between does not write the old decision back over them."""
    from qilu_hub.appliances import ApplianceLifecycle
    from qilu_hub.appliances.bind_keys import BindKey, BindKeys
    from qilu_hub.appliances.inbox import STORE_KIND

    from .conftest import wait_for
    from .test_manager import MAC

    monkeypatch.setattr(ApplianceLifecycle, "external_check_interval", 0.05)
    hub, manager, driver = await hubs.start(QdDriver(auto_adopt=False))
    manager.handle(mdns(), "mdns:a")
    key = manager.inbox_entries()[0]["key"]
    config = str(hubs.config_dir)

    def cli(*argv: str) -> int:
        return main(["--config", config, "inbox", *argv])

    # Adopt from the command line, then the appliance moves (DHCP) before the hub looks (no await in
    # between, so the watcher cannot run): identity is stored, the household's decision is kept. Before,
    # the hub wrote "pending" back and the adoption was silently lost.
    assert cli("adopt", key) == 0
    assert "within a few seconds" in capsys.readouterr().err
    manager.handle(mdns(address="10.78.0.77"), "mdns:a")
    stored = hub.storage.get(STORE_KIND, key)
    assert stored is not None and stored["state"] == "adopted" and stored["address"] == "10.78.0.77"
    await wait_for(lambda: key in driver.connections)  # the hub's watcher adopts it
    assert manager.inbox.get(key).state.value == "adopted"  # type: ignore[union-attr]
    assert driver.connections[key].appliance.data["host"] == "10.78.0.77"

    assert await asyncio.to_thread(cli, "ignore", key) == 0
    conn = driver.connections[key]
    await wait_for(lambda: conn.stopped)
    assert manager.inbox_entries()[0]["state"] == "ignored"

    # An encrypted appliance waits for its key; the key given on the command line adopts it; a new key
    # given later restarts its connection with that key.
    sensor_mac = "02:78:00:00:00:09"
    manager.handle(MdnsInfo(QD_TYPE, f"qd-9.{QD_TYPE}", "qd-9.local.", ("10.78.0.9",), 80,
                            {"mac": sensor_mac, "name": "Sensor", "encrypted": "1"}), "mdns:9")
    sensor = next(e for e in manager.inbox_entries() if e["key"].endswith(sensor_mac))
    assert sensor["problem"] == "needs_bind_key"
    first, second = "00112233445566778899aabbccddeeff", "ffeeddccbbaa99887766554433221100"
    monkeypatch.setattr("sys.stdin", io.StringIO(first + "\n"))
    assert await asyncio.to_thread(cli, "adopt", sensor["key"], "--bind-key", "-") == 0
    await wait_for(lambda: sensor["key"] in driver.connections)
    started = driver.connections[sensor["key"]]
    monkeypatch.setattr("sys.stdin", io.StringIO(second + "\n"))
    assert await asyncio.to_thread(cli, "adopt", sensor["key"], "--bind-key", "-") == 0
    await wait_for(lambda: started.stopped and driver.connections[sensor["key"]] is not started)
    assert BindKeys(hub.storage).get("qdtest", sensor["key"]) == BindKey.parse(second)
    assert MAC not in sensor["key"]


async def test_discover_prints_services_on_loopback() -> None:
    async with Responder(["127.0.0.1"], QD_TYPE, 2, tag="cli"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qilu_hub", "discover", "--interface", "127.0.0.1", "--seconds", "4", "--json",
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    data = json.loads(out)
    # Loopback is shared with whatever else runs on this machine: look for ours among the answers.
    ours = sorted((s["name"], s["properties"]["id"]) for s in data["mdns"] if s["name"].startswith("cli-"))
    assert ours == [(f"cli-000.{QD_TYPE}", "cli-000"), (f"cli-001.{QD_TYPE}", "cli-001")]


async def test_address_change_confirmed_or_rejected_from_the_command_line(
    hubs: HubFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An adopted appliance announced elsewhere shows in `inbox list` with both addresses; `inbox confirm-move`
    makes the running hub follow it, `inbox reject-move` keeps it where it was adopted."""
    from qilu_hub.appliances import ApplianceLifecycle

    from .conftest import live, wait_for

    monkeypatch.setattr(ApplianceLifecycle, "external_check_interval", 0.05)
    _hub, manager, driver = await hubs.start()
    manager.handle(mdns(address="10.78.0.11"), "mdns:a")
    manager.handle(mdns(i=2, mac="02:78:00:00:00:02", address="10.78.0.12"), "mdns:b")
    await wait_for(lambda: live(manager, driver, 2))
    manager.handle(mdns(address="10.78.0.42"), "mdns:c")
    manager.handle(mdns(i=2, mac="02:78:00:00:00:02", address="10.78.0.43"), "mdns:d")
    moved, stays = (e["key"] for e in manager.inbox_entries())
    config = str(hubs.config_dir)

    def cli(*argv: str) -> int:
        return main(["--config", config, "inbox", *argv])

    assert await asyncio.to_thread(cli, "list") == 0
    out = capsys.readouterr().out
    assert "address change, confirm: adopted at 10.78.0.11:80, announced at 10.78.0.42:80" in out
    assert await asyncio.to_thread(cli, "confirm-move", moved) == 0
    assert await asyncio.to_thread(cli, "reject-move", stays) == 0
    assert "10.78.0.42:80" in capsys.readouterr().out
    await wait_for(lambda: driver.connections[moved].appliance.data["host"] == "10.78.0.42"
                   and manager.inbox.get(stays).move is None)  # type: ignore[union-attr]
    assert driver.connections[stays].appliance.data["host"] == "10.78.0.12"
    assert manager.inbox.get(stays).address == "10.78.0.12"  # type: ignore[union-attr]
    assert await asyncio.to_thread(cli, "confirm-move", stays) == 1  # nothing waits any more
    assert "no address change waiting" in capsys.readouterr().err
