"""Demo appliances: simulated Shelly, WLED, BTHome, Xiaomi and QOAP appliances on loopback, adopted
through the driver manager as discovery would (mDNS resolved for real; BLE adverts fed directly
until the BLE source is wired to the mock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from qilu_hub.discovery.models import BleInfo, MdnsInfo

from .fleet import Fleet
from .manager import DriverManager
from .mdns_probe import browse

if TYPE_CHECKING:
    from qilu_hub.core import Hub

_LOGGER = logging.getLogger(__name__)

MDNS_TYPES = ("_qoap._tcp.local.", "_shelly._tcp.local.", "_wled._tcp.local.")


class DemoAppliances:
    """Component ``drivers-demo``: add after the ``drivers`` component."""

    name = "drivers-demo"

    def __init__(self, adopt: bool = True, ble_interval: float = 2.0) -> None:
        self.adopt = adopt
        self.ble_interval = ble_interval
        self.fleet = Fleet("127.0.0.1")
        self._task: asyncio.Task[None] | None = None
        self.adopted: list[str] = []
        self.discovery: Any = None
        self._fleet_outlives_drivers = False

    def fleet_closer(self) -> _FleetCloser:
        """A component to add *before* the ``drivers`` component: components stop in reverse order, so the
        simulators then stop after the drivers, and shutting the demo down does not read as every appliance
        going offline (a log line and an "unavailable" state each)."""
        self._fleet_outlives_drivers = True
        return _FleetCloser(self.fleet)

    async def async_start(self, hub: Hub) -> None:
        manager = hub.components.get("drivers")
        if not isinstance(manager, DriverManager):
            raise RuntimeError("drivers-demo needs the drivers component added before it")
        self.discovery = hub.components.get("discovery")
        if self.discovery is not None:
            self.adopt = False  # discovery finds the simulators over loopback mDNS and adopts them
        # In the background: registering a dozen mDNS services takes seconds, the hub need not wait.
        self._task = asyncio.get_running_loop().create_task(self._run(manager))

    async def _run(self, manager: DriverManager) -> None:
        kinds = ("air_conditioner", "fridge", "washing_machine", "shelly", "shelly-cover", "wled", "bthome",
                 "bthome-motion", "xiaomi")
        results = await asyncio.gather(*(self.fleet.add(kind) for kind in kinds), return_exceptions=True)
        for kind, result in zip(kinds, results, strict=True):
            if isinstance(result, BaseException):  # WLED's port 80 needs root or CAP_NET_BIND_SERVICE
                _LOGGER.warning("Demo %s not started: %s", kind, result)
        if self.adopt:
            await self._adopt_all(manager)
        else:
            self.fleet.run_ble(lambda info: self._on_advert(manager, info), self.ble_interval)

    async def _adopt_all(self, manager: DriverManager) -> None:
        expected = len(self.fleet.network)
        # Loopback mDNS is shared by every process on the machine: adopt this demo's simulators only, never
        # those of another demo or test running beside it.
        own = {(sim.host, sim.port) for sim in self.fleet.network}

        def ours(info: MdnsInfo) -> bool:
            return any((address, info.port) in own for address in info.addresses)

        infos = []
        for type_ in MDNS_TYPES:
            wanted = sum(1 for sim in self.fleet.network if type_.startswith(_service_prefix(sim)))
            infos += await browse(type_, expect=wanted, timeout=10.0, accept=ours)
        for info in infos:
            for driver, appliance in await manager.async_identify(info):  # drivers load off the loop
                self.adopted.append(await manager.async_adopt(driver.manifest.name, appliance))
        if len(infos) < expected:
            _LOGGER.warning("Demo: resolved %d of %d simulated network appliances", len(infos), expected)
        self.fleet.run_ble(lambda info: self._on_advert(manager, info), self.ble_interval)

    def _on_advert(self, manager: DriverManager, info: BleInfo) -> None:
        if self.discovery is not None:
            # With a discovery component the adverts take the real path: matchers, inbox, adoption.
            self.discovery.handle(info, f"ble:{info.address}")
            return
        for driver, appliance in manager.identify(info):
            if not manager.is_adopted(driver.manifest.name, appliance.key):
                task = asyncio.get_running_loop().create_task(manager.async_adopt(driver.manifest.name, appliance))
                task.add_done_callback(lambda t: t.exception())
            manager.discovery_updated(f"{driver.manifest.name}:{appliance.key}", info)

    async def async_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if not self._fleet_outlives_drivers:
            await self.fleet.stop()


class _FleetCloser:
    name = "drivers-demo-fleet"

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    async def async_start(self, hub: Hub) -> None:
        return None

    async def async_stop(self) -> None:
        await self._fleet.stop()


def _service_prefix(sim: object) -> str:
    module = type(sim).__module__
    return "_qoap" if ".qoap." in module else "_shelly" if ".shelly." in module else "_wled"
