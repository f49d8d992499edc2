"""The demo component: every kind of simulated appliance is discovered, adopted and controllable, also beside
another demo on the same machine (which shares loopback, its mDNS and port 80 on every loopback address)."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qilu_hub.core import Hub
from qilu_hub.drivers.demo import DemoAppliances
from qilu_hub.drivers.fleet import Fleet
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.wled.simulator import WledSimulator
from qilu_hub.sdk.testing import wait_for

OLD_DEMO_WLED = "127.0.79.1"  # where every demo put its WLED before addresses were picked at random


@pytest.fixture
async def neighbour() -> AsyncIterator[Fleet]:
    """Another demo's simulators on this machine's loopback (as `qilu-hub demo` in a second terminal): a WLED
    holding port 80 on the address an older demo takes, and a fridge and a Shelly advertised over mDNS. Its
    serials differ from the demo's, so that this is about addresses and adoption, not names."""
    fleet = Fleet("127.0.0.1")
    wled = WledSimulator(OLD_DEMO_WLED, 80, serial=900, advertiser=fleet.advertiser)
    try:
        await asyncio.gather(fleet.add("fridge", start_serial=900), fleet.add("shelly", start_serial=900))
        try:
            await wled.start()
            fleet.network.append(wled)
        except OSError as err:
            if err.errno != errno.EADDRINUSE:  # held already: another process plays the neighbour's part
                raise
        yield fleet
    finally:
        await fleet.stop()


async def test_demo_adopts_every_kind(tmp_path: Path, neighbour: Fleet) -> None:
    """Exactly its own appliances: the neighbour's WLED does not keep this demo's off port 80, and the
    neighbour's adverts, seen on the shared loopback mDNS, are not adopted."""
    hub = Hub(tmp_path, {}, recorder=False)
    manager = DriverManager(entry_points_group=None, retry_initial=0.1)
    hub.add_component(manager)
    demo = DemoAppliances(ble_interval=0.2)
    hub.add_component(demo)
    await hub.async_start()
    try:
        expected = {"qoap": 3, "shelly": 2, "wled": 1, "bthome": 2, "xiaomi": 1}

        def counts() -> dict[str, int]:
            out: dict[str, int] = {}
            for rec in manager.status():
                if rec["state"] == "running":
                    out[rec["driver"]] = out.get(rec["driver"], 0) + 1
            return out

        await wait_for(lambda: counts() == expected, timeout=30, what=f"{expected} running")
        by_domain: dict[str, list[str]] = {}
        for entity in hub.entities.all():
            by_domain.setdefault(entity.domain, []).append(entity.entity_id)
        assert {"switch", "light", "cover", "climate", "fan", "sensor", "binary_sensor"} <= set(by_domain)
        light = by_domain["light"][0]
        await hub.commands.async_call(light, "turn_on", {"brightness": 90})
        await wait_for(lambda: getattr(hub.states.get(light), "value", None) == "on", what="WLED on")
        climate = by_domain["climate"][0]
        await hub.commands.async_call(climate, "set_hvac_mode", {"hvac_mode": "cool"})
        assert getattr(hub.states.get(climate), "value", None) == "cool"

        def xiaomi_temperature() -> object:
            for e in hub.entities.all():
                if e.unique_id.startswith("xiaomi:") and e.capabilities == ("temperature",):
                    return getattr(hub.states.get(e.entity_id), "value", None)
            return None

        await wait_for(lambda: isinstance(xiaomi_temperature(), float), what="Xiaomi temperature")
        [ours] = [sim for sim in demo.fleet.network if isinstance(sim, WledSimulator)]
        assert ours.state["on"] and ours.host != OLD_DEMO_WLED
        assert not any(sim.state["on"] for sim in neighbour.network if isinstance(sim, WledSimulator))
    finally:
        await hub.async_stop()


async def test_stopping_the_demo_does_not_read_as_appliances_going_offline(tmp_path: Path) -> None:
    """build_hub(demo=True) stops the simulators after the drivers and discovery: shutting down must not set
    every appliance "unavailable" (recorded in history, logged as an outage)."""
    from qilu_hub.setup import build_hub

    hub = build_hub(tmp_path, {"hub": {"port": 0}, "recorder": {"enabled": False}}, demo=True)
    manager = hub.components["drivers"]
    assert isinstance(manager, DriverManager)
    await hub.async_start()
    went_unavailable: list[str] = []
    try:
        await wait_for(lambda: sum(rec["state"] == "running" for rec in manager.status()) >= 3, timeout=30,
                       what="three demo appliances adopted over loopback mDNS")
        adopted = {e.entity_id for rec in manager.status() for e in hub.entities.for_device(rec["device_id"])}
        hub.bus.listen(
            "state_changed",
            lambda event: went_unavailable.append(event.data["entity_id"])
            if event.data["entity_id"] in adopted and getattr(event.data.get("new_state"), "value", None)
            == "unavailable" else None,
        )
    finally:
        await hub.async_stop()
    assert adopted and went_unavailable == []
