"""The appliance lifecycle: one home for sightings → matching → inbox → adoption → connection →
availability → removal, for every source (mDNS, BLE, MQTT import, virtual appliances; Matter next).

What each module holds (the names below are the public face; the modules are the implementation):

``appliance``     the record an appliance is carried as (``DiscoveredAppliance``)
``sightings``     which sources vouch for which keys (online/offline)
``matching``      the indexed manifest matcher and the one ``identify`` guard
``inbox``         entries by stable key with the household's decision, moves, the pending cap
``bind_keys``     encrypted sensors' keys and the one bind-key gate
``adoption``      the one door from an appliance of any source to a device
``connections``   supervised connections of adopted appliances (the driver catalog)
``availability``  the one writer of ``unavailable`` and its rule
``lifecycle``     the ``discovery`` component that walks each advert down this line
``catalog``       the protocol between the lifecycle and the connections
"""

from .adoption import adopt_appliance, adopt_device
from .appliance import DiscoveredAppliance
from .availability import Availability, availability, device_entity_ids
from .bind_keys import (
    BindKey,
    BindKeyError,
    BindKeyRequired,
    BindKeys,
    missing_bind_key,
    needs_bind_key,
    require_bind_key,
)
from .catalog import DriverCatalog, StaticCatalog
from .connections import AdoptedDevice, Connections, Supervision
from .inbox import EntryState, Inbox, InboxEntry
from .lifecycle import EVENT_DEVICE_AVAILABILITY, EVENT_DISCOVERY_INBOX_UPDATED, AdoptError, ApplianceLifecycle
from .matching import MatcherIndex, identify, mdns_type
from .sightings import Sightings

__all__ = [
    "EVENT_DEVICE_AVAILABILITY",
    "EVENT_DISCOVERY_INBOX_UPDATED",
    "AdoptError",
    "AdoptedDevice",
    "ApplianceLifecycle",
    "Availability",
    "BindKey",
    "BindKeyError",
    "BindKeyRequired",
    "BindKeys",
    "Connections",
    "DiscoveredAppliance",
    "DriverCatalog",
    "EntryState",
    "Inbox",
    "InboxEntry",
    "MatcherIndex",
    "Sightings",
    "StaticCatalog",
    "Supervision",
    "adopt_appliance",
    "adopt_device",
    "availability",
    "device_entity_ids",
    "identify",
    "mdns_type",
    "missing_bind_key",
    "needs_bind_key",
    "require_bind_key",
]
