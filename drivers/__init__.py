"""The driver SDK: what an appliance maker needs to bring a product to qilu-hub.

See docs/writing-a-driver.md. Built-in drivers live in the subpackages (``drivers.shelly``, ...).
"""

from .base import DeviceConnection, DiscoveredAppliance, Driver, Manifest, Quality
from .entity import EntityDescription, EntityPublisher, resolve
from .helpers import Backoff, PollingCoordinator, reconnect_with_backoff, spawn_tracked

__all__ = [
    "Backoff",
    "DeviceConnection",
    "DiscoveredAppliance",
    "Driver",
    "EntityDescription",
    "EntityPublisher",
    "Manifest",
    "PollingCoordinator",
    "Quality",
    "reconnect_with_backoff",
    "resolve",
    "spawn_tracked",
]
