"""The driver contract: one narrow base class, many implementations; the core never knows which.

A driver is a factory of device connections. It declares in its :class:`Manifest`
which discoveries it wants (as data), turns a matching discovery into a
:class:`DiscoveredAppliance` (a stable key and the identity of the appliance), and,
once the household adopts it, opens a :class:`DeviceConnection` that publishes the
appliance's entities and states and executes commands.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from ..appliances.appliance import DiscoveredAppliance
from ..discovery.models import BleMatcher, DiscoveryInfo, MdnsMatcher

if TYPE_CHECKING:
    from ..context import Context
    from ..model import Entity
    from ._context import DeviceContext

Quality = Literal["bronze", "silver", "gold"]


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str  # the driver's id, lowercase: "shelly"
    version: str
    title: str
    mdns: tuple[MdnsMatcher, ...] = ()
    ble: tuple[BleMatcher, ...] = ()
    capabilities: tuple[str, ...] = ()
    quality: Quality = "bronze"
    iot_class: Literal["local_push", "local_polling"] = "local_polling"
    auto_adopt: bool = False
    requirements: tuple[str, ...] = ()
    documentation: str = ""
    # "module:Class" of the driver, imported when an advert first matches (or an adopted appliance starts), so
    # a manifest is data that loads without the protocol library. Empty for a driver registered as an object.
    driver: str = ""


class DeviceConnection(abc.ABC):
    """One adopted appliance: publishes its entities and states, executes commands.

    Lifecycle, driven by the driver manager: ``async_start`` (time-limited; raising means
    "not ready, retry with backoff"), then commands and ``discovery_updated`` calls,
    then ``async_stop``. A connection that loses its appliance after a successful start
    calls :meth:`report_lost`; the manager marks its entities unavailable and restarts it.
    """

    # Set by the driver manager; a plain attribute so subclasses need not call super().__init__.
    _lost_callback: Callable[[str], None] | None = None
    # Credentials the connection established with the appliance at start (a QOAP identity key pinned at
    # adoption): the driver manager keeps them in the adoption's ``data`` for every later connection and proof.
    learned_data: Mapping[str, Any] = MappingProxyType({})

    @abc.abstractmethod
    async def async_start(self) -> None:
        """Connect, register entities, publish initial states. Raise to signal 'not ready yet'."""

    @abc.abstractmethod
    async def async_stop(self) -> None:
        """Disconnect and release everything."""

    @abc.abstractmethod
    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        """Execute a validated command; the new state arrives through the normal state path."""

    def discovery_updated(self, info: DiscoveryInfo) -> None:  # noqa: B027 - optional hook
        """The appliance was seen again (maybe at a new address); passive BLE drivers read adverts here."""

    def report_lost(self, reason: str) -> None:
        """Tell the manager the appliance went away; it will stop and restart this connection."""
        if self._lost_callback is not None:
            self._lost_callback(reason)


class Driver(abc.ABC):
    """A factory of connections. ``identify`` must be cheap and pure: it runs for every matching advert."""

    manifest: Manifest

    @abc.abstractmethod
    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        """Turn a matching discovery into an appliance, or None if it is not one of ours after all."""

    @abc.abstractmethod
    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        """Create the connection for an adopted appliance (not started yet); ``context`` is all of the hub it
        may use: its device, entities and states, bind key, tasks, log and data folder."""

    async def async_prove_identity(self, context: DeviceContext, adopted: DiscoveredAppliance,
                                   claimed: DiscoveredAppliance) -> tuple[bool, str]:
        """Whether the appliance at ``claimed``'s address proves it is the ``adopted`` one (same key, new
        address), checked *before* anything is switched. ``(True, how)`` lets discovery follow the move at
        once; ``(False, why)`` leaves it for the household to confirm. An advert alone is no proof: the
        default proves nothing."""
        return False, f"{self.manifest.name} appliances cannot prove their identity: confirm the address change"
