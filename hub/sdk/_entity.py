"""Declarative entity descriptions: one dataclass instance per sensor or control, not a subclass each.

A driver lists what an appliance offers as data. :class:`EntityPublisher` registers
the entities on the appliance's device and turns the driver's raw data (a dict as
the appliance reports it) into states, using each description's path or function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import Entity
    from ._context import DeviceContext

ValueSource = str | Callable[[Any], Any]

_MISSING = object()


def resolve(data: Any, source: ValueSource) -> Any:
    """Read ``source`` from ``data``: a "/"-separated path of keys and list indices, or a function.

    "/" separates because appliance keys contain "." and ":" (Shelly's ``switch:0``).
    A missing step yields ``None`` rather than an error: appliances omit what they lack.
    """
    if callable(source):
        return source(data)
    node = data
    for step in source.split("/"):
        if isinstance(node, Mapping):
            node = node.get(step, _MISSING)
        elif isinstance(node, list | tuple) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return None
        if node is _MISSING:
            return None
    return node


@dataclass(frozen=True, slots=True)
class EntityDescription:
    """What one entity is and where its state comes from in the driver's data."""

    key: str  # unique within the appliance: "relay", "switch:0/apower"
    name: str
    capabilities: tuple[str, ...]
    value: ValueSource
    attributes: Mapping[str, ValueSource] = field(default_factory=dict)
    device_class: str | None = None
    unit: str | None = None
    entity_category: str | None = None  # "diagnostic", "config" or None
    # Entity created only when this returns True for the first data (a 2PM in cover mode has no relays).
    exists: Callable[[Any], bool] | None = None


class EntityPublisher:
    """Registers described entities on a device and writes their states from raw data."""

    __slots__ = ("_context", "descriptions", "entities", "unique_prefix")

    def __init__(self, context: DeviceContext, unique_prefix: str, descriptions: Iterable[EntityDescription]) -> None:
        self._context = context
        self.unique_prefix = unique_prefix
        self.descriptions = tuple(descriptions)
        self.entities: dict[str, Entity] = {}  # description key -> entity

    @property
    def device_id(self) -> str:
        return self._context.device_id

    def register(self, data: Any = None) -> dict[str, Entity]:
        """Create (or find again) the entities whose ``exists`` accepts ``data``."""
        for desc in self.descriptions:
            if desc.key in self.entities or (desc.exists is not None and not desc.exists(data)):
                continue
            self.entities[desc.key] = self._context.entity(
                f"{self.unique_prefix}:{desc.key}", desc.capabilities, desc.name, device_class=desc.device_class,
                unit=desc.unit, entity_category=desc.entity_category,
            )
        return self.entities

    def add(self, desc: EntityDescription) -> Entity:
        """Add a description found at run time (passive BLE sensors reveal their measurements one by one)."""
        if desc.key not in {d.key for d in self.descriptions}:
            self.descriptions = (*self.descriptions, desc)
        self.register()
        return self.entities[desc.key]

    def publish(self, data: Any) -> None:
        """Write every registered entity's state from ``data``; entities whose value is missing are left alone."""
        set_state = self._context.set_state
        for desc in self.descriptions:
            entity = self.entities.get(desc.key)
            if entity is None:
                continue
            value = resolve(data, desc.value)
            if value is None:
                continue
            attrs = {}
            for name, source in desc.attributes.items():
                attr = resolve(data, source)
                if attr is not None:
                    attrs[name] = attr
            set_state(entity.entity_id, value, attrs)

    def set_unavailable(self) -> None:
        """The appliance fell silent: every entity ``unavailable`` by the hub's one rule (attributes kept, the
        last good state restored if it comes back before this publisher writes again)."""
        self._context.set_unavailable([entity.entity_id for entity in self.entities.values()])

    def key_of(self, entity_id: str) -> str | None:
        for key, entity in self.entities.items():
            if entity.entity_id == entity_id:
                return key
        return None
