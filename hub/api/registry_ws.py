"""Home Assistant's registry commands on ``/api/websocket``, in Home Assistant's shapes (checked against HA_VERSION).

``config/area_registry/list|create|update|delete``, ``config/device_registry/list|update``,
``config/entity_registry/list|get|update`` and ``config/floor_registry/list``. Edits go through
:class:`~qilu_hub.registry_edit.RegistryEditor` (all input checked before anything changes, stored at once);
the registries' ``*_registry_updated`` events reach ``subscribe_events`` subscribers as Home Assistant sends
them (``action``, the id, ``changes`` with the old values of an update).

Scoped tokens (``hub/tokens.py``; policy in docs/security.md):

* listings hold only what the token may see: its entities, the devices they belong to, its areas and those
  holding its entities (the rules of the stream's poses); the events likewise;
* a device or entity outside the scope answers ``not_found``, exactly like one that does not exist;
* renaming, moving, switching off a device or entity needs a token that may **control** it (every entity of a
  device), and a scoped token may move it only into one of its own areas (never out of its own sight);
* renaming an area needs admin, or a token scoped to that area; creating and deleting areas needs admin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..capabilities import CommandError
from ..model import Area, Device, Entity, slugify
from ..registry import EVENT_AREA_REGISTRY_UPDATED, EVENT_DEVICE_REGISTRY_UPDATED
from ..registry_edit import RegistryEditor
from . import ha_format
from .auth import Principal
from .stream_poses import area_visible, device_visible

if TYPE_CHECKING:
    from ..core import Hub
    from .websocket_ha import HaConnection, HaHandler

PLATFORM = "qilu_hub"
_COMMAND_KEYS = ("id", "type")


# -- Home Assistant's shapes ----------------------------------------------------------------
def area_entry(area: Area) -> dict[str, Any]:
    return {"aliases": [], "area_id": area.id, "floor_id": slugify(area.floor) if area.floor else None,
            "icon": area.icon, "labels": [], "name": area.name, "picture": None}


def floor_entries(areas: list[Area]) -> list[dict[str, Any]]:
    """Floors are the distinct ``floor`` names of the areas (this hub keeps no separate floor registry)."""
    floors: dict[str, str] = {}
    for area in areas:
        if area.floor:
            floors.setdefault(slugify(area.floor), area.floor)
    return [{"aliases": [], "floor_id": floor_id, "icon": None, "level": None, "name": name}
            for floor_id, name in sorted(floors.items())]


def device_entry(device: Device) -> dict[str, Any]:
    return {
        "area_id": device.area_id, "configuration_url": None, "config_entries": [], "connections":
        [[kind, value] for kind, value in device.connections], "disabled_by": device.disabled_by,
        "entry_type": None, "hw_version": device.hw_version, "id": device.id,
        "identifiers": [[ns, value] for ns, value in device.identifiers], "labels": [],
        "manufacturer": device.manufacturer, "model": device.model, "name_by_user": device.name_by_user,
        "name": device.name, "serial_number": None, "sw_version": device.sw_version,
        "via_device_id": device.via_device_id,
    }


def entity_entry(entity: Entity) -> dict[str, Any]:
    """The entry of ``config/entity_registry/list`` (HA's partial form)."""
    return {
        "area_id": entity.area_id, "categories": {}, "config_entry_id": None, "device_id": entity.device_id,
        "disabled_by": entity.disabled_by, "entity_category": entity.entity_category,
        "entity_id": entity.entity_id, "has_entity_name": entity.device_id is not None, "hidden_by": None,
        "icon": entity.icon, "id": entity.unique_id, "labels": [], "name": entity.name_by_user,
        "original_name": entity.name, "platform": PLATFORM, "translation_key": None,
        "unique_id": entity.unique_id,
    }


def entity_entry_extended(entity: Entity) -> dict[str, Any]:
    """The entry of ``config/entity_registry/get`` and ``update`` (HA's extended form)."""
    return {**entity_entry(entity), "aliases": [], "capabilities": None, "device_class": None,
            "original_device_class": entity.device_class, "original_icon": None, "options": {}}


# -- what a token may see (the same rules as the stream's poses: stream_poses.py) ----------------
def visible_devices(hub: Hub, principal: Principal) -> list[Device]:
    return [d for d in hub.devices.all() if device_visible(hub, principal, d.id)]


def visible_areas(hub: Hub, principal: Principal) -> list[Area]:
    return [a for a in hub.areas.all() if area_visible(hub, principal, a.id)]


def _may_control_device(hub: Hub, principal: Principal, device: Device) -> bool:
    if principal.admin:
        return True
    if principal.scopes.read_only:
        return False
    if principal.unrestricted:
        return True
    entities = hub.entities.for_device(device.id)
    return bool(entities) and all(principal.can_control(e.entity_id) for e in entities)


def _check_destination(principal: Principal, changes: Mapping[str, Any]) -> None:
    """A scoped token may move things only into its own areas: never out of its sight, never elsewhere."""
    if "area_id" not in changes or principal.admin or principal.unrestricted:
        return
    areas = principal.scopes.areas
    if areas is None or changes["area_id"] not in areas:
        raise CommandError("unauthorized", "this token may move things only into its own areas")


# -- commands -------------------------------------------------------------------------------
def _send_result(conn: HaConnection, msg_id: int, result: Any) -> None:
    conn.send(ha_format.dumps({"id": msg_id, "type": "result", "success": True, "result": result}))


def _fields(msg: Mapping[str, Any], *skip: str) -> dict[str, Any]:
    return {k: v for k, v in msg.items() if k not in _COMMAND_KEYS and k not in skip}


def _editor(conn: HaConnection) -> RegistryEditor:
    hub = conn.api.hub
    return RegistryEditor(hub.areas, hub.devices, hub.entities)


def _need_admin(principal: Principal, what: str) -> None:
    if not principal.admin:
        raise CommandError("unauthorized", f"{what} needs an admin token")


def area_list(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    _send_result(conn, msg_id, [area_entry(a) for a in visible_areas(conn.api.hub, conn.principal)])


def area_create(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    _need_admin(conn.principal, "creating an area")
    _send_result(conn, msg_id, area_entry(_editor(conn).create_area(_fields(msg))))


def area_update(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    principal, editor = conn.principal, _editor(conn)
    area_id = msg.get("area_id")
    area = editor.area(area_id)
    if not principal.admin:
        if area not in visible_areas(conn.api.hub, principal):
            raise CommandError("not_found", f"Area {area_id!r} not found")
        areas = principal.scopes.areas
        if principal.scopes.read_only or areas is None or area.id not in areas:
            raise CommandError("unauthorized", "changing an area needs an admin token or one scoped to that area")
    _send_result(conn, msg_id, area_entry(editor.update_area(area.id, _fields(msg, "area_id"))))


def area_delete(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    _need_admin(conn.principal, "deleting an area")
    _editor(conn).delete_area(msg.get("area_id"))
    _send_result(conn, msg_id, "success")


def floor_list(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    hub = conn.api.hub
    _send_result(conn, msg_id, floor_entries(visible_areas(hub, conn.principal)))


def device_list(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    _send_result(conn, msg_id, [device_entry(d) for d in visible_devices(conn.api.hub, conn.principal)])


def device_update(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    hub, principal, editor = conn.api.hub, conn.principal, _editor(conn)
    device_id = msg.get("device_id")
    device = editor.device(device_id)
    if not device_visible(hub, principal, device.id):
        raise CommandError("not_found", f"Device {device_id!r} not found")
    fields = _fields(msg, "device_id")
    changes = editor.device_changes(device, fields)  # bad input first: the same answer for every token
    if not _may_control_device(hub, principal, device):
        raise CommandError("unauthorized", "this token may not change this device")
    _check_destination(principal, changes)
    _send_result(conn, msg_id, device_entry(editor.update_device(device.id, fields)))


def entity_list(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    can_see = conn.principal.can_see
    _send_result(conn, msg_id, [entity_entry(e) for e in conn.api.hub.entities.all() if can_see(e.entity_id)])


def _visible_entity(conn: HaConnection, editor: RegistryEditor, entity_id: Any) -> Entity:
    entity = editor.entity(entity_id)
    if not conn.principal.can_see(entity.entity_id):
        raise CommandError("not_found", "Entity not found")
    return entity


def entity_get(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    entity = _visible_entity(conn, _editor(conn), msg.get("entity_id"))
    _send_result(conn, msg_id, entity_entry_extended(entity))


def entity_update(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    principal, editor = conn.principal, _editor(conn)
    entity = _visible_entity(conn, editor, msg.get("entity_id"))
    fields = _fields(msg, "entity_id")
    changes = editor.entity_changes(entity, fields)
    if not principal.admin and not principal.can_control(entity.entity_id):
        raise CommandError("unauthorized", f"this token may not change {entity.entity_id}")
    _check_destination(principal, changes)
    updated = editor.update_entity(entity.entity_id, fields)
    _send_result(conn, msg_id, {"entity_entry": entity_entry_extended(updated)})


COMMANDS: Mapping[str, Callable[[HaConnection, int, dict[str, Any]], None]] = {
    "config/area_registry/list": area_list,
    "config/area_registry/create": area_create,
    "config/area_registry/update": area_update,
    "config/area_registry/delete": area_delete,
    "config/floor_registry/list": floor_list,
    "config/device_registry/list": device_list,
    "config/device_registry/update": device_update,
    "config/entity_registry/list": entity_list,
    "config/entity_registry/get": entity_get,
    "config/entity_registry/update": entity_update,
}


def add_ws_commands(commands: dict[str, HaHandler]) -> None:
    """The registry commands, into one server's command registry (replacing the read-only listings)."""
    commands.update(COMMANDS)


# -- events to scoped subscribers -----------------------------------------------------------
def _area_event_visible(hub: Hub, principal: Principal, data: Mapping[str, Any]) -> bool:
    area_id = data.get("area_id")
    return isinstance(area_id, str) and area_visible(hub, principal, area_id)


def _device_event_visible(hub: Hub, principal: Principal, data: Mapping[str, Any]) -> bool:
    device_id = data.get("device_id")
    return isinstance(device_id, str) and hub.devices.get(device_id) is not None and device_visible(
        hub, principal, device_id)


EventVisibility = Callable[["Hub", Principal, Mapping[str, Any]], bool]
# Whether a scoped token hears an event of these types (events naming an ``entity_id`` need no entry here).
EVENT_VISIBILITY: Mapping[str, EventVisibility] = {
    str(EVENT_AREA_REGISTRY_UPDATED): _area_event_visible,
    str(EVENT_DEVICE_REGISTRY_UPDATED): _device_event_visible,
}
