"""Availability: the one writer of ``unavailable``, with one rule for every source.

The rule (what Home Assistant users expect):

* An appliance that becomes unavailable (its connection is lost or fails to start, its last
  sighting is gone, its MQTT broker or availability topic says offline, a passive sensor falls
  silent) has every entity's state set to ``unavailable``. **Attributes are kept**: a dashboard
  still shows what the entity is (its unit, its last brightness), only the value says it is gone.
* The last good value and attributes are remembered here (in memory). When the appliance is
  available again and its driver has not written a state by then, the remembered one is
  restored; a state the driver writes first wins and the remembered one is dropped.
* An entity that never had a state gets ``unavailable`` with no attributes, and ``unknown`` when the
  appliance is back and nothing has written a state by then (available, value not known yet).

Every source (driver connections, discovery sightings, entity publishers, MQTT import) calls
:meth:`Availability.mark_unavailable` / :meth:`Availability.mark_available` on the hub's one
:class:`Availability` (:func:`availability`), never ``states.async_set(..., UNAVAILABLE, ...)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from qilu_hub.states import UNAVAILABLE, UNKNOWN

if TYPE_CHECKING:
    from qilu_hub.context import Context
    from qilu_hub.core import Hub
    from qilu_hub.states import StateMachine


class Availability:
    """Marks entities unavailable and back, keeping attributes and restoring the last good state."""

    __slots__ = ("_saved", "_states")

    def __init__(self, states: StateMachine) -> None:
        self._states = states
        self._saved: dict[str, tuple[Any, dict[str, Any]]] = {}  # entity_id -> last good (value, attributes)

    def mark_unavailable(self, entity_ids: Iterable[str], context: Context) -> None:
        """Set each entity ``unavailable``, keeping its attributes and remembering its last good state."""
        for entity_id in entity_ids:
            current = self._states.get(entity_id)
            if current is None:
                self._states.async_set(entity_id, UNAVAILABLE, {}, context)
                continue
            if current.value == UNAVAILABLE:
                continue  # already gone: the remembered state is the one from before
            attributes = dict(current.attributes)
            self._saved[entity_id] = (current.value, attributes)
            self._states.async_set(entity_id, UNAVAILABLE, attributes, context)

    def mark_available(self, entity_ids: Iterable[str], context: Context) -> None:
        """The appliance is back: restore the remembered state of each entity the driver has not written yet."""
        for entity_id in entity_ids:
            saved = self._saved.pop(entity_id, None)
            current = self._states.get(entity_id)
            if current is None or current.value != UNAVAILABLE:
                continue
            if saved is not None:
                self._states.async_set(entity_id, saved[0], saved[1], context)
            else:  # never had a value: reachable now, value not known yet
                self._states.async_set(entity_id, UNKNOWN, dict(current.attributes), context)

    def remembered(self, entity_id: str) -> tuple[Any, dict[str, Any]] | None:
        """The last good (value, attributes) of an unavailable entity, if one is remembered."""
        return self._saved.get(entity_id)

    def forget(self, entity_id: str) -> None:
        """Drop what is remembered about an entity that is removed."""
        self._saved.pop(entity_id, None)


# One per hub, so every source of one hub shares it (and a hub that is gone takes it along).
_BY_HUB: weakref.WeakKeyDictionary[Hub, Availability] = weakref.WeakKeyDictionary()


def availability(hub: Hub) -> Availability:
    """The hub's one availability writer."""
    found = _BY_HUB.get(hub)
    if found is None:
        found = _BY_HUB[hub] = Availability(hub.states)
    return found


def device_entity_ids(hub: Hub, device_id: str) -> list[str]:
    """The entity ids of a device (what an appliance's availability covers)."""
    return [entity.entity_id for entity in hub.entities.for_device(device_id)]


__all__ = ["Availability", "availability", "device_entity_ids"]
