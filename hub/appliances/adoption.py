"""Adoption: the one door through which an appliance of any source becomes a device.

Drivers' appliances (found over mDNS or BLE, adopted from the inbox), entities imported from
an MQTT broker, and the demo's virtual appliances all become devices here, through
:func:`adopt_device` (which merges by identifiers and identifying connections: *one appliance,
one device*). :func:`adopt_appliance` adds what a driver's appliance needs on top: its bind
key, if it encrypts its adverts (the one bind-key gate, :func:`qilu_hub.appliances.bind_keys.require_bind_key`).
A new source (Matter) adopts through the same two functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .bind_keys import BindKeys, require_bind_key

if TYPE_CHECKING:
    from qilu_hub.core import Hub
    from qilu_hub.model import Device

    from .appliance import DiscoveredAppliance


def adopt_device(
    hub: Hub, *, source: str, name: str, identifiers: Iterable[tuple[str, str]],
    connections: Iterable[tuple[str, str]] = (), manufacturer: str | None = None, model: str | None = None,
    sw_version: str | None = None, area_id: str | None = None, driver: str | None = None,
    via_device_id: str | None = None,
) -> Device:
    """Create the device of an adopted appliance, or update the one it already is (matched by any identifier
    or identifying connection); ``source`` says where it came from (``qoap``, ``mqtt``, ``virtual``...);
    ``via_device_id`` is the bridge a bridged appliance is reached through (a Matter aggregator)."""
    return hub.devices.async_get_or_create(
        source=source, name=name, identifiers=list(identifiers), connections=list(connections),
        manufacturer=manufacturer, model=model, sw_version=sw_version, area_id=area_id, driver=driver or source,
        via_device_id=via_device_id,
    )


def adopt_appliance(hub: Hub, driver_name: str, appliance: DiscoveredAppliance) -> Device:
    """The device of a driver's appliance; ``BindKeyRequired`` if it encrypts and no bind key is stored."""
    require_bind_key(BindKeys(hub.storage), driver_name, appliance.key, appliance.data, appliance.title)
    identifiers: Sequence[tuple[str, str]] = appliance.identifiers or ((driver_name, appliance.key),)
    return adopt_device(hub, source=driver_name, name=appliance.title, identifiers=identifiers,
                        connections=appliance.connections, manufacturer=appliance.manufacturer,
                        model=appliance.model, driver=driver_name)


__all__ = ["adopt_appliance", "adopt_device"]
