"""Test and simulation helpers for driver authors: what a driver's simulator and tests may import.

``HubHarness`` runs a real hub with only the drivers under test, so a test adopts, commands and loses
an appliance the way the hub does, without importing the hub's internals. ``HttpServer`` and
``MdnsAdvertiser`` make a protocol-true simulator (a real aiohttp server, real mDNS bound to one
address); ``resolve_advert`` resolves its advert as the hub's discovery would; ``wait_for`` bounds a
wait in tests; ``BluezMock`` puts simulated BLE sensors on python-dbusmock's BlueZ (imported on first
use: it needs dbus-fast).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..core import Hub
from ..discovery.models import DiscoveryInfo, MdnsInfo
from ._context import DeviceContext
from ._driver import DiscoveredAppliance, Driver
from ._simulation import HttpServer, MdnsAdvertiser

if TYPE_CHECKING:
    from ._ble_mock import BluezMock

__all__ = ["BluezMock", "DeviceContext", "HttpServer", "HubHarness", "MdnsAdvertiser", "resolve_advert", "wait_for"]


class HubHarness:
    """A real hub (registries in ``config_dir``, no recorder, no API) running only ``drivers``.

    ``async with HubHarness(path, [MyDriver()]) as harness:`` starts it; the driver manager supervises
    the connections as in production (time limits, "unavailable", restart with backoff ``retry``).
    """

    def __init__(self, config_dir: str | Path, drivers: Iterable[Driver], *, retry: float = 0.1) -> None:
        # The manager sits above the SDK: imported when a test builds a harness, not with the SDK.
        from qilu_hub.drivers.manager import DriverManager

        self.hub = Hub(config_dir, {}, recorder=False)
        self._manager = DriverManager(drivers, builtin=False, entry_points_group=None, retry_initial=retry)
        self.hub.add_component(self._manager)

    async def __aenter__(self) -> HubHarness:
        await self.hub.async_start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.hub.async_stop()

    def identify(self, info: DiscoveryInfo) -> list[tuple[str, DiscoveredAppliance]]:
        """(driver name, appliance) for each driver whose manifest matches ``info`` and that identifies it."""
        return [(driver.manifest.name, appliance) for driver, appliance in self._manager.identify(info)]

    async def async_adopt(self, info: DiscoveryInfo) -> str:
        """Identify ``info`` (exactly one driver must claim it) and adopt it, as the household would; the
        device id. The connection starts in the background: wait for its entities."""
        found = self.identify(info)
        if len(found) != 1:
            raise AssertionError(f"expected one driver to identify {info!r}, got {[name for name, _ in found]}")
        [(name, appliance)] = found
        return await self._manager.async_adopt(name, appliance)

    def entity_ids(self, device_id: str, domain: str | None = None) -> list[str]:
        """The device's entities (of ``domain``: "switch", "sensor"...)."""
        return [e.entity_id for e in self.hub.entities.for_device(device_id) if domain in (None, e.domain)]

    def state(self, entity_id: str) -> Any:
        """An entity's state value; None before its first state."""
        state = self.hub.states.get(entity_id)
        return state.value if state is not None else None

    async def async_call(self, entity_id: str, command: str, **args: Any) -> None:
        """A command as a client sends it: validated against the capability, time-limited, then the driver."""
        await self.hub.commands.async_call(entity_id, command, args)


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` (a bound, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def resolve_advert(type_: str, host: str, port: int, timeout: float = 15.0) -> MdnsInfo:
    """The real mDNS resolution of the service at host:port, as the hub's discovery would see it."""
    # The resolver lives with the appliance lifecycle, above the SDK: imported when a test asks for it.
    from qilu_hub.drivers.mdns_probe import browse

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = await browse(type_, timeout=min(5.0, deadline - loop.time()), expect=1000,
                             until=lambda i: host in i.addresses and i.port == port)
        for info in found:
            if host in info.addresses and info.port == port:
                return info
    raise AssertionError(f"no {type_} advert for {host}:{port} within {timeout:g} s")


def __getattr__(name: str) -> Any:
    if name == "BluezMock":
        from ._ble_mock import BluezMock

        return BluezMock
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
