"""The discovery inbox: every appliance found once, by its stable key, with the household's decision.

An entry is keyed by the driver's :attr:`DiscoveredAppliance.key` (a MAC, serial or
device id), never by an address or a name, so an appliance keeps its entry, and an
ignored one stays ignored, across restarts, address changes and renames. Entries
are stored write-through in the registry store (kind ``"inbox"``) when they are
created and when their state changes; sightings only touch memory.

An adopted entry also keeps the connection data it was adopted with (``pinned``): a later
sighting that puts the same key at another address does not change it. Such a claim waits
in the entry as a ``move`` ("address change, confirm": both addresses) until the household
confirms it or the appliance proves it is the same one (:mod:`qilu_hub.appliances.lifecycle`).

Pending entries are capped (:meth:`Inbox.evict_for`): anyone on the LAN can announce
appliances, so the inbox and the database must not grow with what they announce.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .appliance import DiscoveredAppliance

if TYPE_CHECKING:
    from qilu_hub.storage import RegistryStore

STORE_KIND = "inbox"

# Where an appliance is reached: the keys of ``DiscoveredAppliance.data`` that a sighting may not change
# for an adopted appliance without confirmation or proof. Other keys (a profile version...) refresh freely.
ENDPOINT_KEYS = ("host", "port", "address")


def endpoint_changed(pinned: Mapping[str, Any], seen: Mapping[str, Any]) -> bool:
    """Whether ``seen`` puts the appliance somewhere else than ``pinned``. Only keys both carry count: an
    appliance adopted over mDNS and also heard over BLE has a host in one and an address in the other."""
    return any(key in pinned and key in seen and str(pinned[key]) != str(seen[key]) for key in ENDPOINT_KEYS)


def where(data: Mapping[str, Any], fallback: str | None = None) -> str | None:
    """Connection data as people read an address: ``host:port``, a BLE address, or ``fallback``."""
    if data.get("host") is not None:
        host = str(data["host"])
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{data['port']}" if data.get("port") is not None else host
    if data.get("address") is not None:
        return str(data["address"])
    return fallback


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
    pinned: dict[str, Any] | None = None  # adopted: the connection data it was adopted with (or moved to)
    # adopted: a sighting of this key elsewhere, waiting for confirmation or proof: "from" and "to" (addresses
    # as people read them), "data" (the connection data it claims), "proof" (what the proof attempt said),
    # "first_seen", "last_seen", and "confirmed" once the command line confirmed it.
    move: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "driver": self.driver, "title": self.title, "state": str(self.state),
            "sources": list(self.sources), "manufacturer": self.manufacturer, "model": self.model,
            "identifiers": [list(i) for i in self.identifiers], "connections": [list(c) for c in self.connections],
            "data": _jsonable(self.data), "first_seen": self.first_seen, "last_seen": self.last_seen,
            "device_id": self.device_id, "address": self.address,
            "pinned": None if self.pinned is None else _jsonable(self.pinned),
            "move": None if self.move is None else _jsonable(self.move),
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
            pinned=dict(data["pinned"]) if isinstance(data.get("pinned"), dict) else None,
            move=dict(data["move"]) if isinstance(data.get("move"), dict) else None,
        )

    def appliance(self) -> DiscoveredAppliance:
        """The appliance as the driver last described it (to adopt it again after a restart)."""
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
                entry = InboxEntry.from_dict(data)
            except (KeyError, TypeError, ValueError):
                # A damaged record must not stop discovery; it is kept in storage for inspection.
                continue
            if entry.state is EntryState.ADOPTED and entry.pinned is None:
                entry.pinned = dict(entry.data)  # adopted before pinning existed: its stored data is what it uses
            self._entries[key] = entry

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
        # An adopted appliance's address is the one it was adopted with (or confirmed to have moved to).
        held = entry.state is EntryState.ADOPTED and entry.pinned is not None
        if address is not None and entry.address != address and not (
                held and endpoint_changed(entry.pinned or {}, appliance.data)):
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
        if entry.driver == driver and appliance.data and not (held and endpoint_changed(entry.pinned or {},
                                                                                       appliance.data)):
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
            move = stored.get("move")
            if (isinstance(move, dict) and move.get("confirmed") and entry.move is not None
                    and move.get("to") == entry.move.get("to")):
                data["move"]["confirmed"] = True  # confirmed by the command line since this process read it
        self._store.put(STORE_KIND, entry.key, data)

    def save_news(self, entry: InboxEntry) -> None:
        """Store what this process learnt about an entry (a claimed move), keeping decisions made elsewhere."""
        self._save_identity(entry)

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

    def external_move_decisions(self) -> list[tuple[InboxEntry, bool]]:
        """Claimed moves another process decided (``qilu-hub inbox confirm-move|reject-move``): (entry, whether
        confirmed). Only a decision about the move this process holds counts, not about an older claim."""
        out = []
        for key, data in self._store.load(STORE_KIND).items():
            entry = self._entries.get(key)
            if entry is None or entry.move is None:
                continue
            move = data.get("move")
            if isinstance(move, dict) and move.get("confirmed") and move.get("to") == entry.move.get("to"):
                out.append((entry, True))
            elif move is None and data.get("rejected_move") == entry.move.get("to"):
                out.append((entry, False))
        return out

    def decide_move(self, key: str, confirm: bool) -> InboxEntry:
        """Record the household's decision about a claimed move in the store, for the running hub to act on
        (the command line's path; a running hub acts on it within seconds, a stopped one when it starts)."""
        entry = self._entries[key]
        if entry.move is None:
            raise ValueError(f"{entry.title} has no address change waiting for confirmation")
        data = self._store.get(STORE_KIND, key) or entry.to_dict()
        if confirm:
            data["move"] = {**(data.get("move") or _jsonable(entry.move)), "confirmed": True}
            entry.move["confirmed"] = True
        else:
            data["move"], data["rejected_move"] = None, entry.move.get("to")
            entry.move = None
        self._store.put(STORE_KIND, key, data)
        return entry

    def set_state(self, key: str, state: EntryState, device_id: str | None = None) -> InboxEntry:
        entry = self._entries[key]
        entry.state = state
        if state is not EntryState.ADOPTED:
            # What was pinned belongs to that adoption; adopting again pins what it is adopted with then.
            entry.pinned = entry.move = None
        if device_id is not None:
            entry.device_id = device_id
        self.save(entry)
        return entry

    def pending_count(self) -> int:
        return sum(1 for e in self._entries.values() if e.state is EntryState.PENDING)

    def evict_for(self, address: str | None, per_address: int, overall: int) -> list[InboxEntry]:
        """Make room for one new pending entry from ``address``: drop the least recently seen pending entries
        of that address beyond ``per_address - 1``, then overall beyond ``overall - 1``. Adopted and ignored
        entries are the household's decisions and are never dropped. Returns what was dropped."""
        pending = [e for e in self._entries.values() if e.state is EntryState.PENDING]
        victims: list[InboxEntry] = []
        if address is not None:
            mine = sorted((e for e in pending if e.address == address), key=lambda e: (e.last_seen, e.key))
            victims += mine[:max(0, len(mine) - per_address + 1)]
        left = len(pending) - len(victims)
        if left >= overall:
            chosen = {e.key for e in victims}
            rest = sorted((e for e in pending if e.key not in chosen), key=lambda e: (e.last_seen, e.key))
            victims += rest[:left - overall + 1]
        for entry in victims:
            self.remove(entry.key)
        return victims

    def save(self, entry: InboxEntry) -> None:
        self._store.put(STORE_KIND, entry.key, entry.to_dict())

    def remove(self, key: str) -> bool:
        if self._entries.pop(key, None) is None:
            return False
        self._store.delete(STORE_KIND, key)
        return True
