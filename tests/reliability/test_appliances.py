"""Appliances that vanish and return, and drivers that misbehave in every method."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from qilu_hub.capabilities import CommandError
from qilu_hub.context import Context
from qilu_hub.core import Hub
from qilu_hub.discovery.models import DiscoveryInfo, MdnsInfo, MdnsMatcher
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.qoap.simulator import QoapSimulator
from qilu_hub.model import Entity
from qilu_hub.sdk import DeviceConnection, DeviceContext, DiscoveredAppliance, Driver, Manifest
from qilu_hub.sdk.testing import MdnsAdvertiser, wait_for
from qilu_hub.virtual import VirtualAppliances
from tests.drivers.test_qoap import adopt_sim

LIGHT = "light.living_room_ceiling_light"


async def test_appliance_vanishes_and_returns(hub_with_drivers: tuple[Hub, DriverManager],
                                              advertiser: MdnsAdvertiser) -> None:
    hub, manager = hub_with_drivers
    sim = QoapSimulator("fridge", advertiser=advertiser, tick=0.1)
    await sim.start()
    try:
        device_id = await adopt_sim(manager, sim)
        await wait_for(lambda: len(hub.entities.for_device(device_id)) >= 2, what="entities")
        ids = [e.entity_id for e in hub.entities.for_device(device_id)]
        await wait_for(lambda: all(hub.states.get(i) is not None and hub.states.get(i).value != "unavailable"
                                   for i in ids), what="live states")
        rec = manager.get(sim.device_id)
        assert rec is not None
        for round_ in range(3):  # power cut, come back, repeatedly: one device, same entities each time
            await sim.stop()
            await wait_for(lambda: all(hub.states.get(i).value == "unavailable" for i in ids),  # type: ignore[union-attr]
                           what=f"unavailable after power cut {round_}")
            await sim.start()
            await wait_for(lambda: all(hub.states.get(i).value != "unavailable" for i in ids),  # type: ignore[union-attr]
                           what=f"back after power cut {round_}")
        assert [e.entity_id for e in hub.entities.for_device(device_id)] == ids
        assert len(hub.devices) == 1 and rec.state == "running" and rec.restarts >= 3
    finally:
        await sim.stop()


class EvilConnection(DeviceConnection):
    """Raises or hangs in every method it has."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang

    async def _misbehave(self) -> None:
        if self.hang:
            await asyncio.sleep(3600)
        raise RuntimeError("evil")

    async def async_start(self) -> None:
        await self._misbehave()

    async def async_stop(self) -> None:
        await self._misbehave()

    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        await self._misbehave()

    def discovery_updated(self, info: DiscoveryInfo) -> None:
        raise RuntimeError("evil")


class EvilDriver(Driver):
    def __init__(self, hang: bool) -> None:
        self.manifest = Manifest(name=f"evil_{'hang' if hang else 'raise'}", version="6.6.6", title="Evil",
                                 mdns=(MdnsMatcher("_evil._tcp.local."),), capabilities=("on_off",))
        self.hang = hang
        self.identify_calls = 0

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        self.identify_calls += 1
        if self.identify_calls > 1:  # first call lets the test adopt; then it breaks too
            raise RuntimeError("evil identify")
        return DiscoveredAppliance(key=f"evil-{self.hang}", title="Evil", identifiers=(("evil", str(self.hang)),))

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        return EvilConnection(self.hang)


def evil_info() -> MdnsInfo:
    return MdnsInfo(type="_evil._tcp.local.", name="e._evil._tcp.local.", server="e.local.",
                    addresses=("127.0.0.1",), port=1, properties={})


async def test_drivers_that_raise_or_hang_everywhere_do_not_hurt_the_hub(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {}, recorder=False)
    hub.add_component(VirtualAppliances(animate=False))
    raising, hanging = EvilDriver(hang=False), EvilDriver(hang=True)
    manager = DriverManager((raising, hanging), builtin=False, entry_points_group=None, retry_initial=0.05,
                            retry_max=0.2, start_timeout=0.3, stop_timeout=0.3, command_timeout=0.3)
    hub.add_component(manager)
    await hub.async_start()
    try:
        keys = []
        for driver, appliance in manager.identify(evil_info()):
            keys.append(appliance.key)
            await manager.async_adopt(driver.manifest.name, appliance)
        assert len(keys) == 2
        assert manager.identify(evil_info()) == []  # both identify() now raise: skipped, logged
        for key in keys:
            manager.discovery_updated(key, evil_info())  # raising discovery_updated / identify: contained
        # Both keep failing to start and are retried with backoff, time-limited; meanwhile the hub works.
        def retried() -> bool:
            recs = [manager.get(k) for k in keys]
            return all(r is not None and r.failures >= 2 and r.state != "running" for r in recs)

        await wait_for(retried, what="retries")
        for _ in range(5):
            await hub.commands.async_call(LIGHT, "toggle", {})
        assert hub.states.get(LIGHT).value == "on"  # type: ignore[union-attr]
        # A command to an evil device's entity (none registered) must fail cleanly, not hang.
        started = time.monotonic()
        try:
            await hub.commands.async_call("switch.evil_nothing", "turn_on", {})
        except CommandError as err:
            assert err.code in ("not_found", "unavailable")
        assert time.monotonic() - started < 5  # a bound on a hang, not a performance figure
    finally:
        started = time.monotonic()
        await hub.async_stop()
        assert time.monotonic() - started < 10  # a hanging async_stop is cut off by stop_timeout
