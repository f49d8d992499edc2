"""mDNS across an emulated LAN: the hub in one network namespace, appliance processes in two others.

Real kernel multicast over veth pairs and a bridge; the suite builds and removes the
namespaces itself (root needed; CI runs as root). Nothing touches the machine's own interfaces.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncZeroconf

from tests.testbeds.mdns_responder import mac_for
from tests.testbeds.netns import EmulatedLan, in_netns, popen

from .conftest import HubFactory, wait_for
from .qd_driver import QD_TYPE

ROOT = Path(__file__).resolve().parents[2]
PER_HOST = 25


class AppHost:
    def __init__(self, lan: EmulatedLan, i: int, count: int) -> None:
        self.tag = f"h{i}"
        self.proc = popen(lan.app(i), [sys.executable, "-m", "tests.testbeds.mdns_responder", lan.app_address(i),
                                       str(count), QD_TYPE, self.tag], cwd=ROOT, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("registered"), line

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().startswith("done")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(10)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def apps(lan: EmulatedLan) -> Iterator[list[AppHost]]:
    hosts = [AppHost(lan, i, PER_HOST) for i in (1, 2)]
    yield hosts
    for host in hosts:
        host.stop()


@pytest.mark.netns
async def test_fifty_appliances_across_the_lan_are_all_adopted(lan: EmulatedLan, apps: list[AppHost],
                                                               hubs: HubFactory) -> None:
    with in_netns(lan.hub):
        aiozc = AsyncZeroconf(interfaces=[lan.hub_address], ip_version=IPVersion.V4Only)
    try:
        hub, manager, driver = await hubs.start(mdns_enabled=True, zeroconf=aiozc)
        await wait_for(lambda: len(manager.inbox_entries()) == 2 * PER_HOST
                       and all(e["state"] == "adopted" for e in manager.inbox_entries()), timeout=60)
        assert len(hub.devices) == 50 and len(driver.connections) == 50
        hosts = {c.appliance.data["host"] for c in driver.connections.values()}
        assert hosts == {lan.app_address(1), lan.app_address(2)}

        # One appliance moves to a new address: held for confirmation (the test driver has no identity proof),
        # then, confirmed, still one device, and its connection follows.
        lan.add_address(lan.app(1), "10.78.0.50")
        apps[0].command("address 3 10.78.0.50")
        key = f"qdtest-{mac_for('h1', 3)}"
        await wait_for(lambda: manager.inbox.get(key).move is not None, timeout=30)  # type: ignore[union-attr]
        assert manager.inbox.get(key).address == lan.app_address(1)  # type: ignore[union-attr]
        await manager.async_confirm_move(key)
        await wait_for(lambda: driver.connections[key].appliance.data["host"] == "10.78.0.50", timeout=30)
        assert len(hub.devices) == 50 and len(manager.inbox_entries()) == 50
        assert manager.inbox.get(key).address == "10.78.0.50"  # type: ignore[union-attr]

        # A goodbye from the other host makes that device unavailable.
        apps[1].command("goodbye 7")
        gone = driver.connections[f"qdtest-{mac_for('h2', 7)}"]
        await wait_for(lambda: hub.states.get(gone.entity_id).value == "unavailable", timeout=30)  # type: ignore[arg-type,union-attr]
    finally:
        await aiozc.async_close()
