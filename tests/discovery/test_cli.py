"""The ``discover`` and ``inbox`` commands, run as the installed command line runs them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli import main
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


async def test_discover_prints_services_on_loopback() -> None:
    async with Responder(["127.0.0.1"], QD_TYPE, 2, tag="cli"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", "discover", "--interface", "127.0.0.1", "--seconds", "4", "--json",
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    data = json.loads(out)
    # Loopback is shared with whatever else runs on this machine: look for ours among the answers.
    ours = sorted((s["name"], s["properties"]["id"]) for s in data["mdns"] if s["name"].startswith("cli-"))
    assert ours == [(f"cli-000.{QD_TYPE}", "cli-000"), (f"cli-001.{QD_TYPE}", "cli-001")]
