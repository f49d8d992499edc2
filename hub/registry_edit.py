"""The household's edits of the registries (areas, device and entity names, areas, switching off), checked.

One door for every client that edits: the Home Assistant WebSocket commands (``hub/api/registry_ws.py``)
and ``qilu-hub area``/``device`` on a stopped hub (``hub/cli/area.py``). Each edit checks all of its input
before it changes anything, so a refused edit changes nothing; errors are :class:`CommandError` with the
codes the API answers with (``not_found``, ``invalid_format``, ``invalid_info``). Who may edit what is the
API's business (scoped tokens); this module only knows what a valid edit is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from .capabilities import CommandError
from .model import Area, Device, Entity, slugify
from .registry import AreaRegistry, DeviceRegistry, EntityRegistry

__all__ = ["MAX_NAME", "RegistryEditor", "check_name", "match_name"]

MAX_NAME = 100  # characters; a name is shown in lists and on headsets, not a paragraph
_ICON = re.compile(r"^[a-z0-9-]{1,32}:[a-z0-9-]{1,64}$")  # "mdi:sofa"
# Home Assistant fields this hub does not store: accepted when they ask for nothing (the HA frontend sends
# its whole form), refused otherwise rather than silently dropped.
_UNSTORED = {"aliases", "labels", "picture", "hidden_by", "categories", "device_class", "options",
             "options_domain", "humidity_entity_id", "temperature_entity_id"}


def check_name(value: Any, what: str) -> str:
    """A name a person typed: text, 1 to MAX_NAME characters after trimming, no control characters."""
    if not isinstance(value, str):
        raise CommandError("invalid_format", f"{what} must be a string")
    name = value.strip()
    if not name:
        raise CommandError("invalid_format", f"{what} must not be empty")
    if len(name) > MAX_NAME:
        raise CommandError("invalid_format", f"{what} is longer than {MAX_NAME} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in name):
        raise CommandError("invalid_format", f"{what} contains control characters")
    return name


def _optional_name(value: Any, what: str) -> str | None:
    return None if value is None else check_name(value, what)


def _icon(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ICON.match(value):
        raise CommandError("invalid_format", "icon must be null or an icon name such as mdi:sofa")
    return value


def _disabled_by(value: Any) -> str | None:
    if value is None or value == "user":
        return value
    raise CommandError("invalid_format", "disabled_by must be null or \"user\"")


def _fields(given: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    """The fields of an edit: those this hub stores; HA fields it does not store must be empty."""
    out = {}
    for key, value in given.items():
        if key in allowed:
            out[key] = value
        elif key in _UNSTORED:
            if value not in (None, [], {}, ""):
                raise CommandError("not_supported", f"{key} is not stored by this hub")
        else:
            raise CommandError("invalid_format", f"unknown field {key!r}")
    return out


def match_name(text: str, items: list[tuple[str, tuple[str, ...]]], what: str, listing: str) -> str:
    """The id of the one item that ``text`` names: an exact name first, else a unique name prefix
    (case-insensitive). Several matches or none are a clear error that says how to find the right one."""
    folded = text.casefold()
    exact = [item_id for item_id, names in items if any(n.casefold() == folded for n in names)]
    prefix = [item_id for item_id, names in items if any(n.casefold().startswith(folded) for n in names)]
    for candidates in (exact, prefix):
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            names = {item_id: names[0] for item_id, names in items}
            shown = ", ".join(sorted(f"{names[c]} ({c[:8]})" for c in candidates)[:5])
            raise CommandError("invalid_info", f"{text!r} matches {len(candidates)} {what}s: {shown}; "
                                               "give more of the name or the id")
    raise CommandError("not_found", f"no {what} {text!r} (see `{listing}`)")


class RegistryEditor:
    """Checked edits over the three registries of one hub (or of a stopped hub's database)."""

    __slots__ = ("areas", "devices", "entities")

    def __init__(self, areas: AreaRegistry, devices: DeviceRegistry, entities: EntityRegistry) -> None:
        self.areas = areas
        self.devices = devices
        self.entities = entities

    # -- lookups ------------------------------------------------------------------------
    def area(self, area_id: Any) -> Area:
        area = self.areas.get(area_id) if isinstance(area_id, str) else None
        if area is None:
            raise CommandError("not_found", f"Area {area_id!r} not found")
        return area

    def device(self, device_id: Any) -> Device:
        device = self.devices.get(device_id) if isinstance(device_id, str) else None
        if device is None:
            raise CommandError("not_found", f"Device {device_id!r} not found")
        return device

    def entity(self, entity_id: Any) -> Entity:
        entity = self.entities.get(entity_id) if isinstance(entity_id, str) else None
        if entity is None:
            raise CommandError("not_found", "Entity not found")
        return entity

    def find_area(self, text: str) -> Area:
        """An area by id or by name (case-insensitive), for people typing at a command line."""
        area = self.areas.get(text) or self.areas.get(slugify(text))
        if area is not None:
            return area
        return self.area(match_name(text, [(a.id, (a.name,)) for a in self.areas.all()], "area",
                                    "qilu-hub area list"))

    def find_device(self, text: str) -> Device:
        """A device by id, by its exact name, or by a name prefix that only one device has."""
        device = self.devices.get(text)
        if device is not None:
            return device
        found = match_name(text, [(d.id, (d.display_name, d.name)) for d in self.devices.all()], "device",
                           "qilu-hub devices")
        return self.device(found)

    def _area_ref(self, value: Any) -> str | None:
        if value is None:
            return None
        return self.area(value).id

    def _name_free(self, name: str, keep: str | None = None) -> None:
        area_id = slugify(name)
        for other in self.areas.all():
            if other.id != keep and (other.id == area_id or other.name.casefold() == name.casefold()):
                raise CommandError("invalid_info", f"The name {name} ({area_id}) is already in use")

    # -- areas --------------------------------------------------------------------------
    def create_area(self, fields: Mapping[str, Any]) -> Area:
        given = _fields(fields, {"name", "floor_id", "icon"})
        if "name" not in given:
            raise CommandError("invalid_format", "name is required")
        name = check_name(given["name"], "name")
        floor = _optional_name(given.get("floor_id"), "floor_id")
        icon = _icon(given.get("icon"))
        self._name_free(name)
        try:
            return self.areas.async_create(name, floor, icon)
        except ValueError as err:  # checked above; a race with config areas would land here
            raise CommandError("invalid_info", str(err)) from None

    def update_area(self, area_id: Any, fields: Mapping[str, Any]) -> Area:
        area = self.area(area_id)
        given = _fields(fields, {"name", "floor_id", "icon"})
        changes: dict[str, Any] = {}
        if "name" in given:
            changes["name"] = check_name(given["name"], "name")
            self._name_free(changes["name"], keep=area.id)
        if "floor_id" in given:
            changes["floor"] = _optional_name(given["floor_id"], "floor_id")
        if "icon" in given:
            changes["icon"] = _icon(given["icon"])
        return self.areas.async_update(area.id, **changes)

    def area_users(self, area_id: str) -> tuple[list[Device], list[Entity]]:
        return ([d for d in self.devices.all() if d.area_id == area_id],
                [e for e in self.entities.all() if e.area_id == area_id])

    def delete_area(self, area_id: Any) -> None:
        """Remove an area that nothing is in; one in use is refused (move its devices first), so no device
        silently loses its place."""
        area = self.area(area_id)
        devices, entities = self.area_users(area.id)
        if devices or entities:
            parts = [f"{len(devices)} device{'s' * (len(devices) != 1)}"] if devices else []
            parts += [f"{len(entities)} entit{'ies' if len(entities) != 1 else 'y'}"] if entities else []
            raise CommandError("invalid_info", f"Area {area.name} is in use by {' and '.join(parts)}; "
                                               "move them to another area (or to none) first")
        self.areas.async_remove(area.id)

    # -- devices ------------------------------------------------------------------------
    def device_changes(self, device: Device, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The checked changes an edit asks of a device (nothing applied yet)."""
        given = _fields(fields, {"name_by_user", "area_id", "disabled_by"})
        changes: dict[str, Any] = {}
        if "name_by_user" in given:
            changes["name_by_user"] = _optional_name(given["name_by_user"], "name_by_user")
        if "area_id" in given:
            changes["area_id"] = self._area_ref(given["area_id"])
        if "disabled_by" in given:
            changes["disabled_by"] = _disabled_by(given["disabled_by"])
        return changes

    def update_device(self, device_id: Any, fields: Mapping[str, Any]) -> Device:
        device = self.device(device_id)
        changes = self.device_changes(device, fields)
        store = self.devices._store  # one transaction: a device and its entities switch off together
        with store.transaction() as conn:
            if "disabled_by" in changes and changes["disabled_by"] != device.disabled_by:
                for entity in self.entities.for_device(device.id):
                    if changes["disabled_by"] is not None and entity.disabled_by is None:
                        self.entities.async_update(entity.entity_id, conn, disabled_by="device")
                    elif changes["disabled_by"] is None and entity.disabled_by == "device":
                        self.entities.async_update(entity.entity_id, conn, disabled_by=None)
            return self.devices.async_update(device.id, conn, **changes)

    # -- entities -----------------------------------------------------------------------
    def entity_changes(self, entity: Entity, fields: Mapping[str, Any]) -> dict[str, Any]:
        given = _fields(fields, {"name", "icon", "area_id", "disabled_by"})
        changes: dict[str, Any] = {}
        if "name" in given:
            changes["name_by_user"] = _optional_name(given["name"], "name")
        if "icon" in given:
            changes["icon"] = _icon(given["icon"])
        if "area_id" in given:
            changes["area_id"] = self._area_ref(given["area_id"])
        if "disabled_by" in given:
            changes["disabled_by"] = _disabled_by(given["disabled_by"])
        return changes

    def update_entity(self, entity_id: Any, fields: Mapping[str, Any]) -> Entity:
        entity = self.entity(entity_id)
        return self.entities.async_update(entity.entity_id, **self.entity_changes(entity, fields))
