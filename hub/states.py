"""The state machine: the current state of every entity, and a ``state_changed`` event per change."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypedDict

from .bus import EventBus, EventType
from .context import Context

_EMPTY: Mapping[str, Any] = {}

UNAVAILABLE = "unavailable"
UNKNOWN = "unknown"


class State:
    """An entity's state at one moment. Immutable by convention; one is created per write."""

    __slots__ = ("attributes", "context", "entity_id", "last_changed", "last_updated", "value")

    def __init__(
        self,
        entity_id: str,
        value: Any,
        attributes: Mapping[str, Any],
        last_changed: float,
        last_updated: float,
        context: Context | None,
    ) -> None:
        self.entity_id = entity_id
        self.value = value
        self.attributes = attributes
        self.last_changed = last_changed
        self.last_updated = last_updated
        self.context = context

    def as_dict(self) -> dict[str, Any]:
        context = self.context
        return {
            "entity_id": self.entity_id,
            "state": self.value,
            "attributes": dict(self.attributes),
            "last_changed": self.last_changed,
            "last_updated": self.last_updated,
            "context": context.as_dict() if context is not None else None,
        }

    def __repr__(self) -> str:
        return f"<State {self.entity_id}={self.value!r}>"


class StateChangedData(TypedDict):
    entity_id: str
    old_state: State | None
    new_state: State | None


EVENT_STATE_CHANGED: EventType[StateChangedData] = EventType("state_changed")


def state_text(value: Any) -> str:
    """A state value as Home Assistant shows it: always text (numbers too: "21.5"; None is "unknown")."""
    if isinstance(value, str):
        return value
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


# (entity_id, value, attributes) -> the attributes to store: how Home Assistant shows the entity, merged in.
AttributeHook = Callable[[str, Any, Mapping[str, Any]], Mapping[str, Any]]


class StateMachine:
    """Holds the latest State per entity id and fires ``state_changed`` on every change.

    ``decorate`` (set by the hub to :meth:`qilu_hub.presentation.Presentation.decorate`) completes the attributes
    of every state written, so each API serves the same attributes without deriving them again.
    """

    __slots__ = ("_bus", "_states", "decorate", "writes")

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._states: dict[str, State] = {}
        self.writes = 0
        self.decorate: AttributeHook | None = None

    def get(self, entity_id: str) -> State | None:
        return self._states.get(entity_id)

    def all(self) -> list[State]:
        return list(self._states.values())

    def entity_ids(self) -> list[str]:
        return list(self._states)

    def __iter__(self) -> Iterator[State]:
        return iter(list(self._states.values()))

    def __len__(self) -> int:
        return len(self._states)

    def async_set(
        self,
        entity_id: str,
        value: Any,
        attributes: Mapping[str, Any] | None = None,
        context: Context | None = None,
        force_update: bool = False,
    ) -> State:
        """Set an entity's state. No event when nothing changed (unless ``force_update``)."""
        old = self._states.get(entity_id)
        if attributes is None:
            attributes = old.attributes if old is not None else _EMPTY
        if self.decorate is not None:
            attributes = self.decorate(entity_id, value, attributes)
        now = time.time()
        if old is None:
            last_changed = now
        elif old.value == value:
            if not force_update and attributes == old.attributes:
                return old
            last_changed = old.last_changed
        else:
            last_changed = now
        new = State(entity_id, value, attributes, last_changed, now, context)
        self._states[entity_id] = new
        self.writes += 1
        self._bus.fire(EVENT_STATE_CHANGED, {"entity_id": entity_id, "old_state": old, "new_state": new}, context)
        return new

    def async_remove(self, entity_id: str, context: Context | None = None) -> bool:
        old = self._states.pop(entity_id, None)
        if old is None:
            return False
        self._bus.fire(EVENT_STATE_CHANGED, {"entity_id": entity_id, "old_state": old, "new_state": None}, context)
        return True
