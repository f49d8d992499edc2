"""The record an appliance is carried as through the lifecycle: what a driver makes of a sighting.

Drivers create it (``Driver.identify``); the inbox, adoption, connections and the stored adoptions
carry it. It lives here, below the drivers, so that the lifecycle never imports the driver layer;
``qilu_hub.sdk`` re-exports it for drivers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class DiscoveredAppliance:
    """What a driver makes of a discovery, before adoption."""

    key: str  # stable across restarts, address changes and renames: a MAC, serial or device id
    title: str
    identifiers: tuple[tuple[str, str], ...] = ()
    connections: tuple[tuple[str, str], ...] = ()
    manufacturer: str | None = None
    model: str | None = None
    # What the driver needs to connect. ``host``/``port`` (IP) or ``address`` (BLE) say where the appliance is:
    # once adopted, a sighting may change them only with the household's confirmation or the appliance's proof.
    data: Mapping[str, Any] = field(default_factory=dict)


__all__ = ["DiscoveredAppliance"]
