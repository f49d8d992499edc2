"""Discovery sources: what mDNS (python-zeroconf) and BLE (bleak) hear, as hardened advert records.

The sources only report: each resolved service or advert becomes an :class:`MdnsInfo` /
:class:`BleInfo` (:mod:`.parse` refuses what is malformed) and goes to the appliance lifecycle
(:mod:`qilu_hub.appliances`), which matches, identifies, adopts and keeps availability.
"""

from .models import BleInfo, BleMatcher, DiscoveryInfo, MdnsInfo, MdnsMatcher
from .settings import DiscoverySettings

__all__ = [
    "BleInfo",
    "BleMatcher",
    "DiscoveryInfo",
    "DiscoverySettings",
    "MdnsInfo",
    "MdnsMatcher",
]
