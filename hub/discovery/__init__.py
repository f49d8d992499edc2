"""Discovery: mDNS and BLE sources, matching against driver manifests, and the inbox."""

from .bind_keys import BindKey, BindKeyError, BindKeyRequired, BindKeys
from .catalog import DriverCatalog, MatcherIndex, StaticCatalog
from .inbox import EntryState, Inbox, InboxEntry
from .manager import EVENT_DEVICE_AVAILABILITY, EVENT_DISCOVERY_INBOX_UPDATED, AdoptError, DiscoveryManager
from .models import BleInfo, BleMatcher, DiscoveryInfo, MdnsInfo, MdnsMatcher
from .settings import DiscoverySettings

__all__ = [
    "EVENT_DEVICE_AVAILABILITY",
    "EVENT_DISCOVERY_INBOX_UPDATED",
    "AdoptError",
    "BindKey",
    "BindKeyError",
    "BindKeyRequired",
    "BindKeys",
    "BleInfo",
    "BleMatcher",
    "DiscoveryInfo",
    "DiscoveryManager",
    "DiscoverySettings",
    "DriverCatalog",
    "EntryState",
    "Inbox",
    "InboxEntry",
    "MatcherIndex",
    "MdnsInfo",
    "MdnsMatcher",
    "StaticCatalog",
]
