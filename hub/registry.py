"""Registries of areas, devices and entities, persisted write-through in the registry store.

The device registry implements "one appliance, one device": a report from any
protocol carrying an identifier or connection (MAC, BLE address, serial, ...) that
matches a known device updates that device instead of creating another; a report
matching two devices merges them, keeping the older one, moving the other's
entities to it, and recording where each identifier came from.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .bus import EventBus, EventType
from .model import Area, Device, Entity, Pose, Provenance, normalize_connection, slugify
from .storage import RegistryStore

EVENT_DEVICE_REGISTRY_UPDATED: EventType[dict[str, Any]] = EventType("device_registry_updated")
EVENT_ENTITY_REGISTRY_UPDATED: EventType[dict[str, Any]] = EventType("entity_registry_updated")
EVENT_AREA_REGISTRY_UPDATED: EventType[dict[str, Any]] = EventType("area_registry_updated")

# Connection kinds that identify hardware uniquely (an IP address does not: DHCP reuses it).
_IDENTIFYING_CONNECTIONS = frozenset({"mac", "ble", "serial", "zigbee", "thread"})


class _Registry:
    """What the three registries share: their store and bus, and the events held back during a batch."""

    def __init__(self, store: RegistryStore, bus: EventBus) -> None:
        self._store = store
        self._bus = bus
        self._held: list[tuple[EventType[dict[str, Any]], dict[str, Any]]] | None = None

    def _fire(self, event_type: EventType[dict[str, Any]], data: dict[str, Any]) -> None:
        if self._held is not None:  # in a batch: listeners hear of a change only once it is on disk
            self._held.append((event_type, data))
        else:
            self._bus.fire(event_type, data)

    def _reload(self) -> None:
        """Memory from disk again: after a batch that failed, disk holds the truth."""
        raise NotImplementedError


@contextmanager
def registry_batch(*registries: _Registry) -> Iterator[None]:
    """Registry changes made inside are committed together with one synchronous write, and announced after it.

    If anything inside fails, nothing of it reaches the disk and the registries' memory is loaded again from disk,
    so memory equals disk and no half-adopted node remains; the events of the undone changes are dropped. A batch
    inside a batch joins it. Synchronous only: the store's lock is held until the end."""
    store = registries[0]._store
    if store.in_batch:
        with store.batch():
            yield
        return
    held: list[tuple[EventType[dict[str, Any]], dict[str, Any]]] = []
    for registry in registries:
        registry._held = held
    try:
        with store.batch():
            yield
    except BaseException:
        for registry in registries:
            registry._held = None
            registry._reload()
        raise
    for registry in registries:
        registry._held = None
    bus = registries[0]._bus
    for event_type, data in held:
        bus.fire(event_type, data)


class AreaRegistry(_Registry):
    def __init__(self, store: RegistryStore, bus: EventBus) -> None:
        super().__init__(store, bus)
        self._reload()

    def _reload(self) -> None:
        self._areas = {key: Area.from_dict(data) for key, data in self._store.load("area").items()}

    def get(self, area_id: str) -> Area | None:
        return self._areas.get(area_id)

    def all(self) -> list[Area]:
        return list(self._areas.values())

    def async_get_or_create(self, name: str, floor: str | None = None, pose: Pose | None = None) -> Area:
        area_id = slugify(name)
        area = self._areas.get(area_id)
        if area is None:
            area = Area(area_id, name, floor, pose)
            self._areas[area_id] = area
            self._store.put("area", area_id, area.to_dict())
            self._fire(EVENT_AREA_REGISTRY_UPDATED, {"action": "create", "area_id": area_id})
        return area

    def async_create(self, name: str, floor: str | None = None, icon: str | None = None) -> Area:
        """A new area; ValueError if an area of that name (compared as its id, ``slugify(name)``) exists."""
        area_id = slugify(name)
        if area_id in self._areas:
            raise ValueError(f"The name {name} ({area_id}) is already in use")
        area = Area(area_id, name, floor, icon=icon)
        self._store.put("area", area_id, area.to_dict())  # disk first: no area in memory only
        self._areas[area_id] = area
        self._fire(EVENT_AREA_REGISTRY_UPDATED, {"action": "create", "area_id": area_id})
        return area

    def async_update(self, area_id: str, **changes: Any) -> Area:
        """Change an area's name, floor, icon or pose (its frame in the home, for XR placement); its id stays."""
        area = self._areas[area_id]
        for key in changes:
            if key not in ("name", "floor", "pose", "icon"):
                raise ValueError(f"area field {key!r} cannot be changed")
        changed = {key: value for key, value in changes.items() if getattr(area, key) != value}
        if not changed:
            return area
        updated = Area(**{**{k: getattr(area, k) for k in ("id", "name", "floor", "pose", "icon")}, **changed})
        self._store.put("area", area_id, updated.to_dict())  # disk first: memory changes only once stored
        for key, value in changed.items():
            setattr(area, key, value)
        self._fire(EVENT_AREA_REGISTRY_UPDATED, {"action": "update", "area_id": area_id})
        return area

    def async_remove(self, area_id: str) -> None:
        """Forget an area (KeyError if unknown). Callers move its devices and entities out first."""
        if area_id not in self._areas:
            raise KeyError(area_id)
        self._store.delete("area", area_id)
        del self._areas[area_id]
        self._fire(EVENT_AREA_REGISTRY_UPDATED, {"action": "remove", "area_id": area_id})


class DeviceRegistry(_Registry):
    def __init__(self, store: RegistryStore, bus: EventBus) -> None:
        super().__init__(store, bus)
        self._reload()
        self.entities: EntityRegistry | None = None  # set by the hub, for moving entities on merge

    def _reload(self) -> None:
        self._devices = {key: Device.from_dict(data) for key, data in self._store.load("device").items()}
        self._index: dict[tuple[str, ...], str] = {}
        for device in self._devices.values():
            self._index_device(device)

    def _index_device(self, device: Device) -> None:
        for key in device.identifiers:
            self._index[("id", *key)] = device.id
        for kind, value in device.connections:
            if kind in _IDENTIFYING_CONNECTIONS:
                self._index[("conn", kind, value)] = device.id

    def get(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def all(self) -> list[Device]:
        return list(self._devices.values())

    def __len__(self) -> int:
        return len(self._devices)

    def find(
        self,
        identifiers: Iterable[tuple[str, str]] = (),
        connections: Iterable[tuple[str, str]] = (),
    ) -> list[Device]:
        """Devices matching any identifier or identifying connection, oldest first."""
        found: dict[str, Device] = {}
        keys: list[tuple[str, ...]] = [("id", ns, val) for ns, val in identifiers]
        keys += [("conn", kind, normalize_connection(kind, val)) for kind, val in connections
                 if kind in _IDENTIFYING_CONNECTIONS]
        for key in keys:
            device_id = self._index.get(key)
            if device_id is not None and device_id in self._devices:
                found[device_id] = self._devices[device_id]
        return sorted(found.values(), key=lambda d: d.created)

    def async_get_or_create(
        self,
        *,
        source: str,
        name: str,
        identifiers: Iterable[tuple[str, str]] = (),
        connections: Iterable[tuple[str, str]] = (),
        manufacturer: str | None = None,
        model: str | None = None,
        hw_version: str | None = None,
        sw_version: str | None = None,
        area_id: str | None = None,
        via_device_id: str | None = None,
        driver: str | None = None,
    ) -> Device:
        """Create a device, or update and return the one that shares an identifier or connection."""
        identifiers = [(str(ns), str(val)) for ns, val in identifiers]
        connections = [(kind, normalize_connection(kind, str(val))) for kind, val in connections]
        if not identifiers and not connections:
            raise ValueError("a device needs at least one identifier or connection")
        now = time.time()
        matches = self.find(identifiers, connections)
        absorbed: list[str] = []
        with self._store.transaction() as conn:
            if not matches:
                device = Device(id=uuid.uuid4().hex, name=name, created=now)
                action = "create"
            else:
                device = matches[0]
                action = "update"
                for other in matches[1:]:
                    self._absorb(device, other, conn)
                    absorbed.append(other.id)
                    action = "merge"
            for key in identifiers:
                self._touch(device.identifiers, key, source, now)
            for key in connections:
                self._touch(device.connections, key, source, now)
            # First reporter names the device; later reporters fill gaps only.
            device.manufacturer = device.manufacturer or manufacturer
            device.model = device.model or model
            device.hw_version = hw_version or device.hw_version
            device.sw_version = sw_version or device.sw_version
            device.area_id = device.area_id or area_id
            device.via_device_id = device.via_device_id or via_device_id
            device.driver = device.driver or driver
            # Disk first: if the write fails (disk full) a new device must not exist in memory only.
            self._store.put("device", device.id, device.to_dict(), conn)
            self._devices[device.id] = device
            self._index_device(device)
        self._fire(EVENT_DEVICE_REGISTRY_UPDATED, {"action": action, "device_id": device.id})
        for gone in absorbed:  # a merged-away device no longer exists: listeners drop it (its pose, caches)
            self._fire(EVENT_DEVICE_REGISTRY_UPDATED, {"action": "remove", "device_id": gone,
                                                           "merged_into": device.id})
        return device

    @staticmethod
    def _touch(table: dict[tuple[str, str], Provenance], key: tuple[str, str], source: str, now: float) -> None:
        prov = table.get(key)
        if prov is None:
            table[key] = Provenance(source, now, now)
        else:
            prov.last_seen = now

    def _absorb(self, keeper: Device, other: Device, conn: Any) -> None:
        for key, prov in other.identifiers.items():
            keeper.identifiers.setdefault(key, prov)
        for key, prov in other.connections.items():
            keeper.connections.setdefault(key, prov)
        keeper.merged_from.append(other.id)
        # What only the merged-away device knew fills the keeper's gaps (its own values win, as for reports).
        keeper.manufacturer = keeper.manufacturer or other.manufacturer
        keeper.model = keeper.model or other.model
        keeper.hw_version = keeper.hw_version or other.hw_version
        keeper.sw_version = keeper.sw_version or other.sw_version
        keeper.via_device_id = keeper.via_device_id or other.via_device_id
        keeper.area_id = keeper.area_id or other.area_id
        keeper.pose = keeper.pose or other.pose
        del self._devices[other.id]
        self._store.delete("device", other.id, conn)
        for bridged in self._devices.values():  # devices reached through the merged-away one (a bridge's)
            if bridged.via_device_id == other.id:
                bridged.via_device_id = keeper.id
                self._store.put("device", bridged.id, bridged.to_dict(), conn)
        if self.entities is not None:
            self.entities._move_device(other.id, keeper.id, conn)
        self._index = {k: (keeper.id if v == other.id else v) for k, v in self._index.items()}

    def async_update(self, device_id: str, conn: Any = None, **changes: Any) -> Device:
        """Change some fields; the event (only when something changed) carries their old values in
        ``changes``, as Home Assistant's ``device_registry_updated`` does."""
        device = self._devices[device_id]
        for key in changes:
            if key not in ("name_by_user", "area_id", "pose", "name", "sw_version", "hw_version", "disabled_by"):
                raise ValueError(f"device field {key!r} cannot be changed")
        old = {key: getattr(device, key) for key, value in changes.items() if getattr(device, key) != value}
        if not old:
            return device
        stored = Device.from_dict(device.to_dict())
        for key in old:
            setattr(stored, key, changes[key])
        self._store.put("device", device_id, stored.to_dict(), conn)  # disk first, then memory
        for key in old:
            setattr(device, key, changes[key])
        self._fire(EVENT_DEVICE_REGISTRY_UPDATED, {"action": "update", "device_id": device_id,
                                                       "changes": _plain_changes(old)})
        return device

    def async_remove(self, device_id: str) -> None:
        device = self._devices.pop(device_id, None)
        if device is None:
            return
        self._index = {k: v for k, v in self._index.items() if v != device_id}
        with self._store.transaction() as conn:
            self._store.delete("device", device_id, conn)
            if self.entities is not None:
                for entity in self.entities.for_device(device_id):
                    self.entities._remove(entity.entity_id, conn)
        self._fire(EVENT_DEVICE_REGISTRY_UPDATED, {"action": "remove", "device_id": device_id})


class EntityRegistry(_Registry):
    def __init__(self, store: RegistryStore, bus: EventBus, devices: DeviceRegistry, areas: AreaRegistry) -> None:
        super().__init__(store, bus)
        self._devices = devices
        self._areas = areas
        self._reload()
        devices.entities = self

    def _reload(self) -> None:
        self._entities = {key: Entity.from_dict(data) for key, data in self._store.load("entity").items()}
        self._by_unique = {e.unique_id: e.entity_id for e in self._entities.values()}

    def get(self, entity_id: str) -> Entity | None:
        return self._entities.get(entity_id)

    def get_by_unique_id(self, unique_id: str) -> Entity | None:
        entity_id = self._by_unique.get(unique_id)
        return self._entities.get(entity_id) if entity_id else None

    def all(self) -> list[Entity]:
        return list(self._entities.values())

    def for_device(self, device_id: str) -> list[Entity]:
        return [e for e in self._entities.values() if e.device_id == device_id]

    def __len__(self) -> int:
        return len(self._entities)

    def area_of(self, entity: Entity) -> str | None:
        if entity.area_id:
            return entity.area_id
        device = self._devices.get(entity.device_id) if entity.device_id else None
        return device.area_id if device else None

    def _new_entity_id(self, domain: str, name: str) -> str:
        base = f"{domain}.{slugify(name)}"
        candidate, n = base, 2
        while candidate in self._entities:
            candidate = f"{base}_{n}"
            n += 1
        return candidate

    def async_get_or_create(
        self,
        *,
        unique_id: str,
        capabilities: Iterable[str],
        name: str,
        device_id: str | None = None,
        device_class: str | None = None,
        unit: str | None = None,
        area_id: str | None = None,
        entity_category: str | None = None,
        suggested_object_id: str | None = None,
    ) -> Entity:
        """Register an entity once per ``unique_id``; later calls return the same entity and id."""
        existing = self.get_by_unique_id(unique_id)
        if existing is not None:
            if device_id and existing.device_id != device_id:
                existing.device_id = device_id
                self._store.put("entity", existing.entity_id, existing.to_dict())
            return existing
        caps = tuple(capabilities)
        probe = Entity("probe.probe", unique_id, device_id, caps, name, device_class=device_class, unit=unit)
        if suggested_object_id is None:
            device = self._devices.get(device_id) if device_id else None
            area = self._areas.get(area_id or (device.area_id if device else None) or "")
            # "Kitchen" + "Kitchen Motion" + "Kitchen Motion Battery" → kitchen_motion_battery
            object_id = name
            if device is not None and slugify(device.display_name) not in slugify(object_id):
                object_id = f"{device.display_name} {object_id}"
            if area is not None and slugify(area.name) not in slugify(object_id):
                object_id = f"{area.name} {object_id}"
            suggested_object_id = object_id
        entity_id = self._new_entity_id(probe.domain, suggested_object_id)
        entity = Entity(entity_id, unique_id, device_id, caps, name, probe.domain, probe.device_class,
                        area_id, probe.unit, entity_category=entity_category)
        self._store.put("entity", entity_id, entity.to_dict())  # disk first, as for devices
        self._entities[entity_id] = entity
        self._by_unique[unique_id] = entity_id
        self._fire(EVENT_ENTITY_REGISTRY_UPDATED, {"action": "create", "entity_id": entity_id})
        return entity

    def _move_device(self, old_device_id: str, new_device_id: str, conn: Any) -> None:
        for entity in self.for_device(old_device_id):
            entity.device_id = new_device_id
            self._store.put("entity", entity.entity_id, entity.to_dict(), conn)

    def _remove(self, entity_id: str, conn: Any = None) -> None:
        entity = self._entities.pop(entity_id, None)
        if entity is None:
            return
        self._by_unique.pop(entity.unique_id, None)
        self._store.delete("entity", entity_id, conn)
        self._fire(EVENT_ENTITY_REGISTRY_UPDATED, {"action": "remove", "entity_id": entity_id})

    def async_remove(self, entity_id: str) -> None:
        self._remove(entity_id)

    def async_update(self, entity_id: str, conn: Any = None, **changes: Any) -> Entity:
        """Change the household's fields of an entity: ``name_by_user``, ``icon``, ``area_id``, ``disabled_by``.
        The event carries the old values under Home Assistant's names (``name`` for ``name_by_user``)."""
        entity = self._entities[entity_id]
        for key in changes:
            if key not in _ENTITY_FIELDS:
                raise ValueError(f"entity field {key!r} cannot be changed")
        old = {key: getattr(entity, key) for key, value in changes.items() if getattr(entity, key) != value}
        if not old:
            return entity
        stored = entity.to_dict()
        stored.update({key: changes[key] for key in old})
        self._store.put("entity", entity_id, stored, conn)  # disk first, then memory
        for key in old:
            setattr(entity, key, changes[key])
        self._fire(EVENT_ENTITY_REGISTRY_UPDATED, {
            "action": "update", "entity_id": entity_id,
            "changes": {_ENTITY_FIELDS[key]: value for key, value in old.items()},
        })
        return entity


# Entity fields the household may change, and their names in Home Assistant's entity registry.
_ENTITY_FIELDS = {"name_by_user": "name", "icon": "icon", "area_id": "area_id", "disabled_by": "disabled_by"}


def _plain_changes(old: dict[str, Any]) -> dict[str, Any]:
    return {key: value.to_dict() if hasattr(value, "to_dict") else value for key, value in old.items()}
