"""What the scene validator needs to know about the hub: which entities exist and which commands each accepts,
and (where the catalog can tell) which device ids and area ids placements may refer to."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol


class Catalog(Protocol):
    def entity_exists(self, entity_id: str) -> bool: ...

    def entity_commands(self, entity_id: str) -> Collection[str] | None:
        """Accepted command names, or None when this catalog cannot tell (then commands are not checked)."""
        ...


class FixedEntityCatalog:
    """A fixed catalog (tests, offline checks, or the XR client's view built from the stream snapshot)."""

    def __init__(self, entities: Mapping[str, Collection[str] | None] | Iterable[str]) -> None:
        if isinstance(entities, Mapping):
            self._entities: dict[str, Collection[str] | None] = dict(entities)
        else:
            self._entities = dict.fromkeys(entities)

    def entity_exists(self, entity_id: str) -> bool:
        return entity_id in self._entities

    def entity_commands(self, entity_id: str) -> Collection[str] | None:
        return self._entities.get(entity_id)


def _spec_name(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return str(spec.get("name") or spec.get("command"))
    return str(getattr(spec, "name", None) or getattr(spec, "command", spec))


class HubCatalog:
    """Adapter over the live hub: the entity registry, and the command router's own validation (so a scene
    is refused for exactly what a call would be refused for, arguments included)."""

    def __init__(self, hub: Any) -> None:
        self._hub = hub

    def entity_exists(self, entity_id: str) -> bool:
        return self._hub.entities.get(entity_id) is not None

    def reference_problem(self, kind: str, ref: str) -> str | None:
        """Why ``relative_to: kind`` with ``ref`` names nothing in the registry, or None when it names something
        (anchors are the headset's own: not checked)."""
        if kind == "device":
            if self._hub.devices.get(ref) is not None:
                return None
            named = [d.id for d in self._hub.devices.all() if ref in (d.name, d.name_by_user)]
            hint = f" (the device named {ref!r} has id {named[0]})" if named else " (`qilu-hub devices` lists ids)"
            return f"unknown device id {ref!r}{hint}"
        if kind == "area":
            if self._hub.areas.get(ref) is not None:
                return None
            named = [a.id for a in self._hub.areas.all() if a.name == ref]
            known = ", ".join(sorted(a.id for a in self._hub.areas.all())) or "none"
            hint = f" (the area named {ref!r} has id {named[0]!r})" if named else f" (known: {known})"
            return f"unknown area {ref!r}{hint}"
        return None

    def entity_commands(self, entity_id: str) -> Collection[str] | None:
        entity = self._hub.entities.get(entity_id)
        if entity is None:
            return None
        specs = getattr(entity, "commands", None)
        if specs is None:  # older registries: ask the capability catalogue
            specs = self._hub.capabilities.command_specs(entity)
        if isinstance(specs, Mapping):
            return set(map(str, specs.keys()))
        return {_spec_name(s) for s in specs}

    def check_call(self, entity_id: str, command: str, args: Mapping[str, Any]) -> str | None:
        """None if the hub would accept this call, else its reason."""
        validate = getattr(self._hub.commands, "validate", None)
        if validate is None:
            return None
        try:
            validate(entity_id, command, dict(args))
        except Exception as err:  # CommandError carries the hub's message
            return str(getattr(err, "message", err))
        return None
