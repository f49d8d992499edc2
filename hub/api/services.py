"""Home Assistant services mapped onto the capability commands of the common model.

``light.turn_on`` with ``brightness`` on ``light.kitchen_ceiling`` becomes the
command ``turn_on`` with ``{"brightness": ...}`` for that entity; the command names
and arguments already follow Home Assistant's, so the mapping is mostly routing:
which entities a call targets (``entity_id``, ``area_id``, ``device_id``, in
``target`` or in the service data) and whether the caller's token may control them.
``homeassistant.turn_on/turn_off/toggle`` apply to any domain, as in Home Assistant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..capabilities import CAPABILITIES, CommandError, CommandSpec, ValueSpec, merged_commands
from ..context import Context
from .auth import Principal

if TYPE_CHECKING:
    from ..core import Hub

GENERIC_DOMAIN = "homeassistant"
GENERIC_SERVICES = ("turn_on", "turn_off", "toggle")
_TARGET_KEYS = ("entity_id", "area_id", "device_id")

# Our command error codes → Home Assistant's WebSocket error codes.
HA_ERROR_CODES = {
    "not_found": "not_found",
    "not_supported": "not_supported",
    "invalid_format": "invalid_format",
    "invalid_info": "invalid_info",
    "template_error": "template_error",
    "out_of_range": "invalid_format",
    "not_allowed": "not_allowed",
    "unauthorized": "unauthorized",
    "timeout": "timeout",
    "unavailable": "home_assistant_error",
    "driver_error": "home_assistant_error",
}


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def selector(spec: ValueSpec) -> dict[str, Any]:
    """Home Assistant's selector for a value (what its UIs draw for a service field)."""
    if spec.type == "bool":
        return {"boolean": {}}
    if spec.type in ("int", "float"):
        number: dict[str, Any] = {"step": 1 if spec.type == "int" else "any"}
        if spec.min is not None:
            number["min"] = spec.min
        if spec.max is not None:
            number["max"] = spec.max
        if spec.unit:
            number["unit_of_measurement"] = spec.unit
        bounded = spec.min is not None and spec.max is not None and spec.max - spec.min <= 1000
        number["mode"] = "slider" if bounded else "box"
        return {"number": number}
    if spec.type == "enum":
        return {"select": {"options": list(spec.options)}}
    if spec.type == "rgb":
        return {"color_rgb": {}}
    if spec.type == "hs":
        return {"object": {}}
    return {"text": {}}


def _service(command: CommandSpec, target: dict[str, Any]) -> dict[str, Any]:
    fields = {
        arg: {"name": _title(arg), "description": spec.description or _title(arg), "required": spec.required,
              "selector": selector(spec), **spec.json_schema()}
        for arg, spec in command.args.items()
    }
    return {"name": _title(command.name), "description": command.description or _title(command.name),
            "fields": fields, "target": target}


def _catalogue_commands() -> dict[str, dict[str, CommandSpec]]:
    """Per Home Assistant domain, every command its entities can take, arguments merged over the capabilities
    that make up the domain (a light is on_off plus its modifiers)."""
    members: dict[str, list[str]] = {}
    for cap in CAPABILITIES.values():
        members.setdefault(cap.domain, []).append(cap.name)
    members.setdefault("light", []).insert(0, "on_off")
    return {domain: merged_commands(names) for domain, names in members.items()}


CATALOGUE_COMMANDS = _catalogue_commands()


def services_of(hub: Hub, principal: Principal | None = None) -> dict[str, dict[str, Any]]:
    """``get_services`` (and ``GET /api/services``): for each domain the token has an entity in, every service
    of the domain with its fields and selectors, from the capability catalogue (so a field is listed even when
    no entity present takes it yet); ``homeassistant.turn_on/turn_off/toggle`` apply to any entity."""
    domains = {e.domain for e in hub.entities.all() if principal is None or principal.can_see(e.entity_id)}
    out: dict[str, dict[str, Any]] = {}
    for domain in sorted(domains):
        commands = dict(CATALOGUE_COMMANDS.get(domain, {}))
        for entity in hub.entities.all():  # an entity's own commands, should one ever fall outside the catalogue
            if entity.domain == domain:
                for name, spec in entity.commands.items():
                    commands.setdefault(name, spec)
        target = {"entity": [{"domain": [domain]}]}
        if commands:
            out[domain] = {name: _service(spec, target) for name, spec in sorted(commands.items())}
    if out:
        out[GENERIC_DOMAIN] = {name: _service(CommandSpec(name, {}, f"{_title(name)} any entity"), {"entity": [{}]})
                               for name in GENERIC_SERVICES}
    return out


def _as_list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise CommandError("invalid_format", f"{key} must be a string or a list of strings")


def resolve_targets(
    hub: Hub, data: Mapping[str, Any], target: Mapping[str, Any] | None
) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    """What ``target`` and the service data name: (entity ids named explicitly, broad targets), where each
    broad target is (key, value, every entity it reaches): ``("entity_id", "all", ...)``, an area or a device."""
    if target is not None and not isinstance(target, Mapping):
        raise CommandError("invalid_format", "target must be an object")
    wanted: dict[str, list[str]] = {key: [] for key in _TARGET_KEYS}
    for source in (target or {}, data):
        for key in _TARGET_KEYS:
            if key in source:
                wanted[key] += _as_list(source[key], key)
    explicit = list(dict.fromkeys(wanted["entity_id"]))
    broad: list[tuple[str, str, list[str]]] = []
    if "all" in explicit:
        explicit.remove("all")
        broad.append(("entity_id", "all", [e.entity_id for e in hub.entities.all()]))
    for area_id in dict.fromkeys(wanted["area_id"]):
        broad.append(("area_id", area_id,
                      [e.entity_id for e in hub.entities.all() if hub.entities.area_of(e) == area_id]))
    for device_id in dict.fromkeys(wanted["device_id"]):
        broad.append(("device_id", device_id, [e.entity_id for e in hub.entities.for_device(device_id)]))
    return explicit, broad


def _check_broad(principal: Principal, key: str, value: str, reached: list[str]) -> None:
    """A broad target is checked as if each entity it reaches had been named: all or nothing.

    A scoped token may use one only when it reaches entities and sees every one of them; an area or a
    device it cannot see entirely, and one that does not exist, get the same answer, so a scoped token
    cannot map the rest of the house by probing ids."""
    if principal.unrestricted:
        return
    if not reached or not all(principal.can_see(entity_id) for entity_id in reached):
        raise CommandError("unauthorized", f"this token may not control everything in {key} {value}")


async def call_service(
    hub: Hub,
    principal: Principal,
    domain: Any,
    service: Any,
    service_data: Any,
    target: Any = None,
) -> Context:
    """Run a Home Assistant service call; raises CommandError with one of our codes."""
    if not isinstance(domain, str) or not isinstance(service, str):
        raise CommandError("invalid_format", "domain and service must be strings")
    if service_data is None:
        service_data = {}
    if not isinstance(service_data, Mapping):
        raise CommandError("invalid_format", "service_data must be an object")
    known = services_of(hub)
    if service not in known.get(domain, {}):
        raise CommandError("not_found", f"Service {domain}.{service} not found.")
    explicit, broad = resolve_targets(hub, service_data, target)
    if not explicit and not broad:
        raise CommandError("invalid_format", f"{domain}.{service} needs a target: entity_id, area_id or device_id")
    args = {key: value for key, value in service_data.items() if key not in _TARGET_KEYS}
    # Existence first, then visibility, with one answer for both, so that an id out of a token's scope
    # looks exactly like one that does not exist.
    for entity_id in explicit:
        entity = hub.entities.get(entity_id)
        if entity is None or not principal.can_see(entity_id):
            raise CommandError("not_found", f"Entity {entity_id} not found.")
        if not principal.can_control(entity_id):
            raise CommandError("unauthorized", f"this token may not control {entity_id}")
        if domain != GENERIC_DOMAIN and entity.domain != domain:
            raise CommandError("invalid_format", f"{domain}.{service} does not apply to {entity_id}")
    # Entities reached through an area, a device or ``all`` are skipped when the service does not apply to them
    # (a power meter in the room has no turn_off), as in Home Assistant; each one it applies to must be one the
    # token may control, as if it had been named: a read-only or scoped token gets 403, not a silent no-op.
    entity_ids = list(explicit)
    for key, value, reached in broad:
        _check_broad(principal, key, value, reached)
        for entity_id in reached:
            entity = hub.entities.get(entity_id)
            if (entity is None or entity_id in entity_ids or service not in entity.commands
                    or (domain != GENERIC_DOMAIN and entity.domain != domain)):
                continue
            if not principal.can_control(entity_id):
                raise CommandError("unauthorized", f"this token may not control everything in {key} {value}")
            entity_ids.append(entity_id)
    context = Context("api", token_id=principal.token.id, may_control=principal.can_control)
    commands = hub.commands
    results = await asyncio.gather(
        *(commands.async_call(entity_id, service, args, context) for entity_id in entity_ids), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            if isinstance(result, CommandError):
                raise result
            raise CommandError("driver_error", f"{type(result).__name__}: {result}")
    return context
