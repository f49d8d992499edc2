"""The discovery inbox: every appliance found once, by its stable key, with the household's decision.

An entry is keyed by the driver's :attr:`DiscoveredAppliance.key` (a MAC, serial or
device id), never by an address or a name, so an appliance keeps its entry, and an
ignored one stays ignored, across restarts, address changes and renames. Entries
are stored write-through in the registry store (kind ``"inbox"``) when they are
created and when their state changes; sightings only touch memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drivers.base import DiscoveredAppliance
    from hub.storage import RegistryStore

STORE_KIND = "inbox"


class EntryState(StrEnum):
    PENDING = "pending"
    ADOPTED = "adopted"
    IGNORED = "ignored"


@dataclass(slots=True)
class InboxEntry:
    key: str
    driver: str
    title: str
    state: EntryState = EntryState.PENDING
    sources: list[str] = field(default_factory=list)  # "mdns", "ble"
    manufacturer: str | None = None
    model: str | None = None
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    connections: list[tuple[str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    first_seen: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    device_id: str | None = None
    address: str | None = None  # last host or BLE address, for people reading the list

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "driver": self.driver, "title": self.title, "state": str(self.state),
            "sources": list(self.sources), "manufacturer": self.manufacturer, "model": self.model,
            "identifiers": [list(i) for i in self.identifiers], "connections": [list(c) for c in self.connections],
            "data": _jsonable(self.data), "first_seen": self.first_seen, "last_seen": self.last_seen,
            "device_id": self.device_id, "address": self.address,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InboxEntry:
        return cls(
            key=data["key"], driver=data["driver"], title=data.get("title") or data["key"],
            state=EntryState(data.get("state", "pending")), sources=list(data.get("sources") or []),
            manufacturer=data.get("manufacturer"), model=data.get("model"),
            identifiers=[(str(a), str(b)) for a, b in data.get("identifiers") or []],
            connections=[(str(a), str(b)) for a, b in data.get("connections") or []],
            data=dict(data.get("data") or {}), first_seen=float(data.get("first_seen") or 0.0),
            last_seen=float(data.get("last_seen") or 0.0), device_id=data.get("device_id"),
            address=data.get("address"),
        )

    def appliance(self) -> DiscoveredAppliance:
        """The appliance as the driver last described it (to adopt it again after a restart)."""
        from drivers.base import DiscoveredAppliance

        return DiscoveredAppliance(
            key=self.key, title=self.title, identifiers=tuple(self.identifiers), connections=tuple(self.connections),
            manufacturer=self.manufacturer, model=self.model, data=dict(self.data),
        )


def _jsonable(value: Any) -> Any:
    """Driver data as JSON (bytes as hex, tuples as lists, unknown objects as text)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class Inbox:
    """Entries by key, loaded from and written through to the registry store."""

    def __init__(self, store: RegistryStore) -> None:
        self._store = store
        self._entries: dict[str, InboxEntry] = {}
        for key, data in store.load(STORE_KIND).items():
            try:
                self._entries[key] = InboxEntry.from_dict(data)
            except (KeyError, TypeError, ValueError):
                # A damaged record must not stop discovery; it is kept in storage for inspection.
                continue

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> InboxEntry | None:
        return self._entries.get(key)

    def entries(self, state: EntryState | None = None) -> list[InboxEntry]:
        items = sorted(self._entries.values(), key=lambda e: (e.first_seen, e.key))
        return [e for e in items if state is None or e.state is state]

    def seen(self, driver: str, appliance: DiscoveredAppliance, source: str, address: str | None,
             now: float) -> tuple[InboxEntry, bool]:
        """Record a sighting; returns the entry and whether it is new. Persists only new or changed identity."""
        entry = self._entries.get(appliance.key)
        if entry is None:
            entry = InboxEntry(
                key=appliance.key, driver=driver, title=appliance.title, sources=[source],
                manufacturer=appliance.manufacturer, model=appliance.model,
                identifiers=list(appliance.identifiers), connections=list(appliance.connections),
                data=dict(appliance.data), first_seen=now, last_seen=now, address=address,
            )
            self._entries[appliance.key] = entry
            self.save(entry)
            return entry, True
        entry.last_seen = now
        changed = False
        if source not in entry.sources:
            entry.sources.append(source)
            changed = True
        if address is not None and entry.address != address:
            entry.address = address
            changed = True
        # An appliance seen over a second radio brings more identity; keep the union.
        for ident in appliance.identifiers:
            if ident not in entry.identifiers:
                entry.identifiers.append(ident)
                changed = True
        for conn in appliance.connections:
            if conn not in entry.connections:
                entry.connections.append(conn)
                changed = True
        if entry.driver == driver and appliance.title != entry.title:
            entry.title = appliance.title  # a rename changes the title, never the key
            changed = True
        if entry.driver == driver and appliance.data:
            entry.data = dict(appliance.data)  # kept in memory; stored with the next identity change
        if changed:
            self._save_identity(entry)
        return entry, False

    def _save_identity(self, entry: InboxEntry) -> None:
        """Store a sighting's news without overwriting the household's decision: the command line may have
        adopted or ignored the entry in the database since this process last read it (``external_changes``
        picks that up); writing the remembered state back would silently undo it."""
        data = entry.to_dict()
        stored = self._store.get(STORE_KIND, entry.key)
        if stored is not None:
            data["state"], data["device_id"] = stored.get("state", data["state"]), stored.get("device_id")
        self._store.put(STORE_KIND, entry.key, data)

    def external_changes(self) -> list[tuple[InboxEntry, EntryState]]:
        """Entries whose stored state another process changed: (entry as this process knows it, new state)."""
        out = []
        for key, data in self._store.load(STORE_KIND).items():
            entry = self._entries.get(key)
            try:
                state = EntryState(str(data.get("state")))
            except ValueError:
                continue
            if entry is not None and state is not entry.state:
                out.append((entry, state))
        return out

    def set_state(self, key: str, state: EntryState, device_id: str | None = None) -> InboxEntry:
        entry = self._entries[key]
        entry.state = state
        if device_id is not None:
            entry.device_id = device_id
        self.save(entry)
        return entry

    def save(self, entry: InboxEntry) -> None:
        self._store.put(STORE_KIND, entry.key, entry.to_dict())

    def remove(self, key: str) -> bool:
        if self._entries.pop(key, None) is None:
            return False
        self._store.delete(STORE_KIND, key)
        return True
