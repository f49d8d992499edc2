"""Sightings: which sources currently vouch for which appliance keys, and the last advert of each key per source.

A *sighting* is one thing a source hears: an mDNS instance (``"mdns:<name>"``) or a BLE address
(``"ble:<address>"``). An appliance key is online while at least one sighting vouches for it; when
its last one is gone (mDNS goodbye or expiry, BLE timeout) it is offline. This module only keeps
that book; the lifecycle decides what going on- or offline means (:mod:`qilu_hub.appliances.availability`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qilu_hub.discovery.models import DiscoveryInfo


class Sightings:
    """Keys ↔ the sightings vouching for them, the last advert per key and source, and waiters for a key's next
    sighting."""

    __slots__ = ("_keys_of", "_seen", "_tokens", "last_info")

    def __init__(self) -> None:
        self._tokens: dict[str, set[str]] = {}  # key -> sightings present
        self._keys_of: dict[str, set[str]] = {}  # sighting -> keys
        self._seen: dict[str, asyncio.Event] = {}  # key -> set at its next new sighting
        # key -> source ("mdns", "ble") -> the last advert from that source that named it: an appliance heard over
        # both radios keeps both, so a connection started later hears each (a BLE advert every second would
        # otherwise hide the one mDNS record, which carries the connection details)
        self.last_info: dict[str, dict[str, DiscoveryInfo]] = {}

    def __len__(self) -> int:
        """How many keys the book holds (bounded by the inbox: a dropped entry is forgotten here too)."""
        return len(self._tokens)

    def note(self, key: str, info: DiscoveryInfo) -> None:
        """``info`` is the newest advert from its source that named ``key``."""
        infos = self.last_info.get(key)
        if infos is None:
            infos = self.last_info[key] = {}
        infos[info.source] = info

    def latest(self, key: str) -> list[DiscoveryInfo]:
        """The last advert of each source that named ``key``, oldest first (so the newest is passed on last)."""
        return sorted(self.last_info.get(key, {}).values(), key=lambda info: info.time)

    def online(self, key: str) -> bool:
        return bool(self._tokens.get(key))

    def add(self, key: str, sighting: str) -> bool:
        """``sighting`` vouches for ``key``; True when that made the key come online."""
        tokens = self._tokens.setdefault(key, set())
        if sighting in tokens:
            return False
        was_online = bool(tokens)
        tokens.add(sighting)
        self._keys_of.setdefault(sighting, set()).add(key)
        event = self._seen.get(key)
        if event is not None:
            event.set()
        return not was_online

    def gone(self, sighting: str) -> list[str]:
        """A source lost ``sighting``; the keys that it left with no sighting (now offline)."""
        offline = []
        for key in self._keys_of.pop(sighting, ()):
            tokens = self._tokens.get(key)
            if tokens is None:
                continue
            tokens.discard(sighting)
            self._drop_stale(key, sighting, tokens)
            if not tokens:
                offline.append(key)
        return offline

    def _drop_stale(self, key: str, sighting: str, tokens: set[str]) -> None:
        """A source's last advert for ``key`` is no longer what it says once none of its sightings vouch for the
        key (an mDNS goodbye, a BLE timeout): a connection started later must not be handed it."""
        source = sighting.partition(":")[0]
        if any(t.partition(":")[0] == source for t in tokens):
            return
        infos = self.last_info.get(key)
        if infos is not None:
            infos.pop(source, None)

    def withdraw(self, key: str, sighting: str) -> bool:
        """``sighting`` no longer vouches for ``key`` (it claims the key elsewhere); True when the key went offline."""
        tokens = self._tokens.get(key)
        if tokens is None or sighting not in tokens:
            return False
        tokens.discard(sighting)
        self._drop_stale(key, sighting, tokens)
        keys = self._keys_of.get(sighting)
        if keys is not None:
            keys.discard(key)
        return not tokens

    async def wait_seen(self, key: str) -> None:
        """Until ``key`` gets a new sighting (an adoption that failed waits for the appliance to be back)."""
        event = self._seen.setdefault(key, asyncio.Event())
        event.clear()
        await event.wait()

    def forget(self, key: str) -> None:
        """Drop everything about a key whose inbox entry is gone."""
        self.last_info.pop(key, None)
        self._seen.pop(key, None)
        for sighting in self._tokens.pop(key, ()):
            keys = self._keys_of.get(sighting)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_of[sighting]


__all__ = ["Sightings"]
