"""What discovery needs from the drivers side: the :class:`DriverCatalog` protocol.

The discovery manager does not load or run drivers. It asks a catalog which
drivers want an advert, asks those drivers to identify it, and asks the catalog to
adopt an appliance. The drivers package's ``DriverManager`` satisfies this protocol;
:class:`StaticCatalog` is a small complete implementation over a fixed list of
drivers (tests, benchmarks, and a fallback when no driver manager is installed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .models import DiscoveryInfo, MdnsInfo
from .parse import normalize_uuid

if TYPE_CHECKING:
    from hub.context import Context
    from hub.core import Hub
    from hub.model import Entity
    from hub.sdk import DeviceConnection, DiscoveredAppliance, Driver, Manifest

_LOGGER = logging.getLogger(__name__)


@runtime_checkable
class DriverCatalog(Protocol):
    """The drivers side of discovery. All methods are called on the event loop.

    ``manifests()``
        The installed drivers' manifests; read when discovery starts (which mDNS types
        to browse, which BLE matchers exist, each driver's ``auto_adopt``).
    ``match(info)``
        The drivers whose manifest matchers accept this advert (cheap, no I/O; called
        for every new or changed advert, so it must be fast).
    ``async_adopt(driver_name, appliance)``
        Create or update the device in the device registry (with the appliance's
        identifiers and connections, so a device seen over two radios merges), start
        its connection and register its command handler; return the device id. Must
        be idempotent per ``appliance.key``: adopting a key whose connection is
        running returns the same device id without starting a second connection.
        Raise to signal "not reachable now"; discovery retries with backoff.
    ``discovery_updated(key, info)``
        An adopted appliance was seen again, maybe at a new address; forward to its
        connection's ``DeviceConnection.discovery_updated``. Must not raise.
    ``async_unload(key)``
        Stop the connection of an adopted appliance (used when it is ignored after
        adoption, and at shutdown of discovery it is *not* called: the catalog stops
        its own connections).

    Optional: ``problem(key) -> str | None``, what an adopted appliance's connection
    reports as wrong (``"wrong_bind_key"``...); discovery shows it in the inbox entry.

    Optional, for appliances that move (DHCP): discovery never passes a sighting of an
    adopted key at another address to ``discovery_updated``; it asks
    ``async_prove_move(key, appliance) -> (bool, reason)`` whether the appliance at
    ``appliance``'s address proves it is the adopted one (without it: never proved, the
    household confirms), and once proved or confirmed calls ``async_follow(key, appliance,
    proved=...)`` to make that the adoption's connection data and reconnect (proved: keeping
    what the adoption pinned; confirmed: afresh); without it, ``async_unload`` and
    ``async_adopt`` again.
    """

    def manifests(self) -> Sequence[Manifest]: ...

    def match(self, info: DiscoveryInfo) -> Sequence[Driver]: ...

    async def async_adopt(self, driver_name: str, appliance: DiscoveredAppliance) -> str: ...

    def discovery_updated(self, key: str, info: DiscoveryInfo) -> None: ...

    async def async_unload(self, key: str) -> None: ...


class MatcherIndex:
    """Manifest matchers indexed by what is cheap to look up, so dispatch is O(candidates)."""

    __slots__ = ("_ble_by_mfr", "_ble_by_svc", "_ble_by_uuid", "_ble_other", "_mdns_by_type")

    def __init__(self, drivers: Iterable[Driver]) -> None:
        self._mdns_by_type: dict[str, list[tuple[Any, Driver]]] = {}
        self._ble_by_mfr: dict[int, list[tuple[Any, Driver]]] = {}
        self._ble_by_svc: dict[str, list[tuple[Any, Driver]]] = {}
        self._ble_by_uuid: dict[str, list[tuple[Any, Driver]]] = {}
        self._ble_other: list[tuple[Any, Driver]] = []
        for driver in drivers:
            for m in driver.manifest.mdns:
                self._mdns_by_type.setdefault(mdns_type(m.type), []).append((m, driver))
            for b in driver.manifest.ble:
                if b.manufacturer_id is not None:
                    self._ble_by_mfr.setdefault(b.manufacturer_id, []).append((b, driver))
                elif b.service_data_uuid is not None:
                    uuid = normalize_uuid(b.service_data_uuid) or b.service_data_uuid.lower()
                    self._ble_by_svc.setdefault(uuid, []).append((b, driver))
                elif b.service_uuid is not None:
                    uuid = normalize_uuid(b.service_uuid) or b.service_uuid.lower()
                    self._ble_by_uuid.setdefault(uuid, []).append((b, driver))
                else:
                    self._ble_other.append((b, driver))

    def match(self, info: DiscoveryInfo) -> list[Driver]:
        found: list[Driver] = []
        if isinstance(info, MdnsInfo):
            for matcher, driver in self._mdns_by_type.get(mdns_type(info.type), ()):
                if driver not in found and matcher.matches(info):
                    found.append(driver)
            return found
        candidates: list[tuple[Any, Driver]] = []
        for company in info.manufacturer_data:
            candidates += self._ble_by_mfr.get(company, ())
        for uuid in info.service_data:
            candidates += self._ble_by_svc.get(uuid, ())
        for uuid in info.service_uuids:
            candidates += self._ble_by_uuid.get(uuid, ())
        candidates += self._ble_other
        for matcher, driver in candidates:
            if driver not in found and matcher.matches(info):
                found.append(driver)
        return found


def mdns_type(value: str) -> str:
    """``_shelly._tcp`` / ``_shelly._tcp.local.`` → ``_shelly._tcp.local.`` (what zeroconf browses)."""
    value = value.rstrip(".")
    if not value.endswith(".local"):
        value += ".local"
    return value + "."


class StaticCatalog:
    """A :class:`DriverCatalog` over a fixed list of drivers, adopting straight into the hub."""

    def __init__(self, hub: Hub, drivers: Iterable[Driver], start_timeout: float = 10.0) -> None:
        self._hub = hub
        self._drivers = {d.manifest.name: d for d in drivers}
        self._index = MatcherIndex(self._drivers.values())
        self._start_timeout = start_timeout
        self.connections: dict[str, DeviceConnection] = {}
        self.device_ids: dict[str, str] = {}
        self._unregister: dict[str, Callable[[], None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._adopted: dict[str, tuple[str, DiscoveredAppliance]] = {}  # key -> (driver, what it was adopted as)

    def manifests(self) -> list[Manifest]:
        return [d.manifest for d in self._drivers.values()]

    def match(self, info: DiscoveryInfo) -> list[Driver]:
        return self._index.match(info)

    async def async_adopt(self, driver_name: str, appliance: DiscoveredAppliance) -> str:
        lock = self._locks.setdefault(appliance.key, asyncio.Lock())
        async with lock:
            if appliance.key in self.connections:
                return self.device_ids[appliance.key]
            driver = self._drivers[driver_name]
            identifiers = appliance.identifiers or ((driver_name, appliance.key),)
            device = self._hub.devices.async_get_or_create(
                source=driver_name, name=appliance.title, identifiers=identifiers,
                connections=appliance.connections, manufacturer=appliance.manufacturer, model=appliance.model,
                driver=driver_name,
            )
            from ..sdk import DeviceContext  # the SDK imports discovery's models: not at module level

            connection = driver.connect(DeviceContext(self._hub, driver_name, device.id, appliance.key), appliance)
            try:
                await asyncio.wait_for(connection.async_start(), self._start_timeout)
            except BaseException:
                try:
                    await asyncio.wait_for(connection.async_stop(), self._start_timeout)
                except Exception:
                    _LOGGER.exception("Stopping the failed connection of %s failed", appliance.key)
                raise
            self.connections[appliance.key] = connection
            self.device_ids[appliance.key] = device.id
            self._adopted[appliance.key] = (driver_name, appliance)

            async def handler(entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
                await connection.async_command(entity, command, args, context)

            self._unregister[appliance.key] = self._hub.commands.register_device(device.id, handler)
            return device.id

    def discovery_updated(self, key: str, info: DiscoveryInfo) -> None:
        connection = self.connections.get(key)
        if connection is None:
            return
        try:
            connection.discovery_updated(info)
        except Exception:
            _LOGGER.exception("Connection of %s failed to take a discovery update", key)

    async def async_prove_move(self, key: str, appliance: DiscoveredAppliance) -> tuple[bool, str]:
        adopted = self._adopted.get(key)
        if adopted is None:
            return False, "not adopted in this process"
        driver = self._drivers[adopted[0]]
        from ..sdk import DeviceContext

        context = DeviceContext(self._hub, adopted[0], self.device_ids.get(key, ""), adopted[1].key)
        return await driver.async_prove_identity(context, adopted[1], appliance)

    async def async_follow(self, key: str, appliance: DiscoveredAppliance, proved: bool = False) -> None:
        adopted = self._adopted.get(key)
        if adopted is None:
            return
        if proved:
            appliance = replace(appliance, data={**adopted[1].data, **appliance.data})  # keeps what was pinned
        await self.async_unload(key)
        await self.async_adopt(adopted[0], appliance)

    def problem(self, key: str) -> str | None:
        problem = getattr(self.connections.get(key), "problem", None)
        return problem if isinstance(problem, str) else None

    async def async_unload(self, key: str) -> None:
        connection = self.connections.pop(key, None)
        self.device_ids.pop(key, None)
        self._adopted.pop(key, None)
        unregister = self._unregister.pop(key, None)
        if unregister is not None:
            unregister()
        if connection is not None:
            try:
                await asyncio.wait_for(connection.async_stop(), self._start_timeout)
            except Exception:
                _LOGGER.exception("Connection of %s did not stop cleanly", key)

    async def async_stop(self) -> None:
        for key in list(self.connections):
            await self.async_unload(key)


__all__ = ["DriverCatalog", "MatcherIndex", "StaticCatalog", "mdns_type"]
