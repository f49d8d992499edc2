"""Discovery: mDNS and BLE sources, matching against driver manifests, and the inbox."""

from .models import BleInfo, BleMatcher, DiscoveryInfo, MdnsInfo, MdnsMatcher

__all__ = ["BleInfo", "BleMatcher", "DiscoveryInfo", "MdnsInfo", "MdnsMatcher"]
