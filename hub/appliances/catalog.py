"""What the lifecycle needs from the side that holds drivers and connections: the :class:`DriverCatalog` protocol.

The lifecycle (:mod:`qilu_hub.appliances.lifecycle`) does not load or run drivers. It asks a catalog
which drivers want an advert, asks those drivers to identify it, and asks the catalog to adopt an
appliance. :class:`~qilu_hub.appliances.connections.Connections` is the one implementation (the drivers
package's ``DriverManager`` is ``Connections`` plus driver loading); :class:`StaticCatalog` is
``Connections`` over a fixed list of drivers (tests, benchmarks, and a fallback when no driver
manager is installed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .connections import Connections, Supervision

if TYPE_CHECKING:
    from qilu_hub.core import Hub
    from qilu_hub.discovery.models import DiscoveryInfo
    from qilu_hub.sdk import Driver, Manifest

    from .appliance import DiscoveredAppliance


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


class StaticCatalog(Connections):
    """The :class:`DriverCatalog` over a fixed list of drivers, for one hub: :class:`Connections` that keeps
    nothing in the store and adopts only once the connection started (tests, benchmarks, and the fallback
    when no driver component is installed)."""

    name = "static_catalog"

    def __init__(self, hub: Hub, drivers: Iterable[Driver], start_timeout: float = 10.0) -> None:
        super().__init__(drivers, persist=False, wait_for_start=True,
                         timing=Supervision(start_timeout=start_timeout, stop_timeout=start_timeout))
        self.bind(hub)


__all__ = ["DriverCatalog", "StaticCatalog"]
