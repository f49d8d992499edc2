"""Matching: which drivers want an advert (the indexed matcher) and what each makes of it (the identify guard).

Both run for every new or changed advert, so the index looks candidates up by what is cheap to
compare (mDNS service type, BLE company id, service-data and service UUIDs) before any matcher
runs, and :func:`identify` is the one place a driver's ``identify`` is called: it contains what
the driver raises or returns wrongly, so a broken driver never stops the walk of an advert.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from qilu_hub.discovery.models import BleInfo, DiscoveryInfo, MdnsInfo
from qilu_hub.discovery.parse import normalize_uuid

from .appliance import DiscoveredAppliance

if TYPE_CHECKING:
    from qilu_hub.sdk import Driver

_LOGGER = logging.getLogger(__name__)

# A key is what the inbox, the adopted record and the bind-key store are indexed by; bound it.
MAX_KEY_LENGTH = 200


def mdns_type(value: str) -> str:
    """``_shelly._tcp`` / ``_shelly._tcp.local.`` → ``_shelly._tcp.local.`` (what zeroconf browses)."""
    value = value.rstrip(".")
    if not value.endswith(".local"):
        value += ".local"
    return value + "."


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
        """The drivers whose manifest matchers accept ``info``, each once, in manifest order of the candidates."""
        found: list[Driver] = []
        if isinstance(info, MdnsInfo):
            for matcher, driver in self._mdns_by_type.get(mdns_type(info.type), ()):
                if driver not in found and matcher.matches(info):
                    found.append(driver)
            return found
        if not isinstance(info, BleInfo):
            return found  # a source without manifest matchers (MQTT import, virtual) never comes here
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


def identify(driver: Driver, info: DiscoveryInfo, stats: Counter[str] | None = None) -> DiscoveredAppliance | None:
    """What ``driver`` makes of ``info``, or None: the one guard around ``Driver.identify``.

    A driver that raises, returns something other than a :class:`DiscoveredAppliance`, or gives an
    appliance a key that is empty, not text or over :data:`MAX_KEY_LENGTH` characters is counted in
    ``stats`` (``identify_error``, ``identify_invalid``, ``key_invalid``) and yields None.
    """
    name = driver.manifest.name
    try:
        appliance = driver.identify(info)
    except Exception:
        if stats is not None:
            stats["identify_error"] += 1
        _LOGGER.exception("Driver %s failed to identify %r", name, info)
        return None
    if appliance is None:
        return None
    if not isinstance(appliance, DiscoveredAppliance):
        if stats is not None:
            stats["identify_invalid"] += 1
        _LOGGER.error("Driver %s.identify returned %r", name, appliance)
        return None
    if not isinstance(appliance.key, str) or not appliance.key or len(appliance.key) > MAX_KEY_LENGTH:
        if stats is not None:
            stats["key_invalid"] += 1
        return None
    return appliance


__all__ = ["MAX_KEY_LENGTH", "MatcherIndex", "identify", "mdns_type"]
