"""A spoofed advert on a real LAN: the hub in one network namespace, the adopted QOAP appliance in a second,
an impostor (or the same appliance after a DHCP move) in a third; real multicast mDNS, real HTTP/WebSocket.

The impostor announces the adopted appliance's id under another instance name from another address. The hub
must keep talking to the real appliance, keep its stored address, log a WARNING, and show the claim in the
inbox with both addresses; it follows only when an admin confirms, or when the appliance at the new address
signs a challenge with the key pinned at adoption (QOAP 1.1), as the real one does after moving.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from qilu_hub import Hub
from qilu_hub.appliances import ApplianceLifecycle
from qilu_hub.drivers.manager import STORAGE_KIND, AdoptedDevice, DriverManager
from tests.conftest import skip_outside_ci
from tests.testbeds import netns as netns_bed
from tests.testbeds.netns import EmulatedLan, in_netns, popen

from .conftest import wait_for

pytestmark = pytest.mark.netns
ROOT = Path(__file__).resolve().parents[2]


class ApplianceHost:
    """A QOAP fridge simulator process on one host of the LAN (tests/discovery/qoap_host.py)."""

    def __init__(self, lan: EmulatedLan, i: int, device_id: str, seed: str, instance: str | None = None) -> None:
        self.address = lan.app_address(i)
        argv = [sys.executable, "-m", "tests.discovery.qoap_host", self.address, "fridge", "--device-id", device_id,
                "--seed", seed]
        if instance:
            argv += ["--instance", instance]
        self.proc = popen(lan.app(i), argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("ready "), line
        self.port = int(line.split()[1])

    def ask(self, what: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the simulator sends its mDNS goodbye and exits
                self.proc.wait(10)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def lan() -> Iterator[EmulatedLan]:
    reason = netns_bed.can_build()
    if reason:
        skip_outside_ci(reason)
    # Namespace names unique per run, so two runs of the suite on one machine never share a LAN.
    with EmulatedLan(prefix=f"qs{uuid.uuid4().hex[:4]}-", subnet="10.76.0", hosts=2) as built:
        yield built


@pytest.fixture
async def appliances() -> AsyncIterator[list[ApplianceHost]]:
    started: list[ApplianceHost] = []
    yield started
    for host in started:
        host.stop()


async def start_hub(lan: EmulatedLan, config_dir: Path) -> tuple[Hub, DriverManager, ApplianceLifecycle]:
    """The hub with the real driver manager and discovery, browsing mDNS on the hub host's interface."""
    hub = Hub(config_dir, {}, recorder=False)
    drivers = DriverManager(entry_points_group=None, retry_initial=0.2, retry_max=1.0, start_timeout=5.0)
    hub.add_component(drivers)
    discovery = ApplianceLifecycle("drivers", mdns_interfaces=[lan.hub_address], ble_enabled=False)
    hub.add_component(discovery)
    await hub.async_start()
    return hub, drivers, discovery


async def adopt(discovery: ApplianceLifecycle, drivers: DriverManager, key: str) -> AdoptedDevice:
    await wait_for(lambda: discovery.inbox is not None and key in discovery.inbox, timeout=30)
    await discovery.async_adopt(key)
    rec = drivers.get(key)
    assert rec is not None
    await wait_for(lambda: rec.state == "running", timeout=30)
    return rec


def switch_of(hub: Hub, rec: AdoptedDevice) -> str:
    return next(e.entity_id for e in hub.entities.for_device(rec.device_id) if "on_off" in e.capabilities)


def entry(discovery: ApplianceLifecycle, key: str) -> dict[str, Any]:
    return next(e for e in discovery.inbox_entries() if e["key"] == key)


async def test_spoofed_advert_does_not_take_over_and_admin_confirmation_follows(
        lan: EmulatedLan, appliances: list[ApplianceHost], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tag = uuid.uuid4().hex[:6]
    key = f"qoap-fridge-{tag}"
    with in_netns(lan.hub):  # every socket the hub opens (mDNS, HTTP, WebSocket) lives on the hub host
        real = ApplianceHost(lan, 1, key, seed=f"real-{tag}")
        appliances.append(real)
        hub, drivers, discovery = await start_hub(lan, tmp_path / "config")
        try:
            rec = await adopt(discovery, drivers, key)
            switch = switch_of(hub, rec)
            adopted_at = f"{real.address}:{real.port}"

            with caplog.at_level(logging.WARNING, logger="qilu_hub.appliances.lifecycle"):
                impostor = ApplianceHost(lan, 2, key, seed=f"impostor-{tag}", instance="Kitchen Fridge")
                appliances.append(impostor)
                claimed_at = f"{impostor.address}:{impostor.port}"
                await wait_for(lambda: (entry(discovery, key)["move"] or {}).get("to") == claimed_at
                               and entry(discovery, key)["move"]["proof"] != "checking", timeout=30)
            move = entry(discovery, key)["move"]
            assert move["from"] == adopted_at and "another key" in move["proof"]
            assert entry(discovery, key)["problem"] == "address_change"
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any(adopted_at in m and claimed_at in m for m in warnings), warnings

            # The hub still talks to the real fridge only, and its stored address has not changed.
            await hub.commands.async_call(switch, "turn_on", {})
            assert real.ask("state")["super_cool"] == "on"
            assert impostor.ask("state")["super_cool"] == "off" and impostor.ask("counts")["commands"] == 0
            assert rec.state == "running" and rec.appliance.data["host"] == real.address
            stored = hub.storage.get(STORAGE_KIND, f"qoap:{key}") or {}
            assert stored["appliance"]["data"]["host"] == real.address
            assert entry(discovery, key)["address"] == real.address

            # The admin confirms (say the fridge really was replaced by this unit): the hub follows.
            restarts = rec.restarts
            await discovery.async_confirm_move(key)
            await wait_for(lambda: rec.appliance.data["host"] == impostor.address and rec.restarts > restarts
                           and rec.state == "running", timeout=30)
            await hub.commands.async_call(switch, "turn_on", {})
            assert impostor.ask("counts")["commands"] == 1 and impostor.ask("state")["super_cool"] == "on"
            assert entry(discovery, key)["address"] == impostor.address and entry(discovery, key)["move"] is None
        finally:
            await hub.async_stop()


async def test_appliance_that_really_moved_proves_it_and_is_followed(
        lan: EmulatedLan, appliances: list[ApplianceHost], tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    key = f"qoap-fridge-{tag}"
    with in_netns(lan.hub):
        before = ApplianceHost(lan, 1, key, seed=f"home-{tag}")
        appliances.append(before)
        hub, drivers, discovery = await start_hub(lan, tmp_path / "config")
        try:
            rec = await adopt(discovery, drivers, key)
            switch = switch_of(hub, rec)
            pinned = rec.appliance.data["identity_key"]
            before.stop()  # the fridge is unplugged (mDNS goodbye)...
            after = ApplianceHost(lan, 2, key, seed=f"home-{tag}")  # ...and comes back with a new DHCP lease
            appliances.append(after)
            await wait_for(lambda: rec.appliance.data["host"] == after.address and rec.state == "running",
                           timeout=30)
            assert rec.appliance.data["identity_key"] == pinned  # the pin survives the move
            [info] = [e for e in discovery.inbox_entries() if e["key"] == key]
            assert info["move"] is None and info["address"] == after.address and info["online"]
            await hub.commands.async_call(switch, "turn_on", {})
            assert after.ask("state")["super_cool"] == "on"
        finally:
            await hub.async_stop()
