"""Home Assistant's JSON shapes for states, events and compressed entity updates.

Shapes follow Home Assistant's WebSocket and REST API documentation
(developers.home-assistant.io/docs/api/websocket, /docs/api/rest) and the field
names of its ``State.as_dict`` / ``as_compressed_state``: ISO 8601 timestamps with
an offset in full states, Unix seconds (``lc``/``lu``) in compressed ones.

Serialising is the hot path of the fan-out, so each state's JSON is cached per
State object (states are immutable) and each event is serialised once, however
many clients receive it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..bus import Event
from ..context import Context
from ..states import State, state_text
from .input_checks import loads_json

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode

ORIGIN_LOCAL = "LOCAL"


class _IsoClock:
    """``datetime.isoformat`` for UTC timestamps, with the date-and-second part cached.

    Three timestamps go into every event; consecutive events fall in the same second,
    so only the microseconds need formatting.
    """

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def format(self, ts: float) -> str:
        second = int(ts)
        micro = round((ts - second) * 1e6)
        if ts < 0 or micro >= 1000000:
            return datetime.fromtimestamp(ts, UTC).isoformat()
        if second != self.second:
            self.prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self.second = second
        if micro == 0:
            return self.prefix + "+00:00"
        return f"{self.prefix}.{micro:06d}+00:00"


iso = _IsoClock().format  # ``2024-03-20T10:00:00.123456+00:00`` as Home Assistant writes it


def parse_time(text: str) -> float | None:
    """A timestamp from ISO 8601 (a trailing ``Z`` allowed; naive means UTC); None if unreadable."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def context_dict(context: Context | None) -> dict[str, Any]:
    if context is None:
        return {"id": None, "parent_id": None, "user_id": None}
    return {"id": context.id, "parent_id": context.parent_id, "user_id": context.token_id}


def state_dict(state: State) -> dict[str, Any]:
    return {
        "entity_id": state.entity_id,
        "state": state_text(state.value),
        "attributes": dict(state.attributes),
        "last_changed": iso(state.last_changed),
        "last_updated": iso(state.last_updated),
        "context": context_dict(state.context),
    }


def dumps(value: Any) -> str:
    return _dumps(value)


def json_loads(data: bytes | str) -> Any:
    """Client JSON: raises ``ValueError`` when malformed, :class:`~qilu_hub.api.input_checks.BadInput` (one) when
    nested too deeply or holding text with no UTF-8 form."""
    return loads_json(data)


def encode(text: str) -> bytes:
    """UTF-8 of JSON we produce, never failing: a lone surrogate in a driver's or an MQTT device's text
    becomes ``?`` instead of an exception in a writer. Valid text costs the same as ``str.encode``."""
    return text.encode("utf-8", "replace")


class StateJsonCache:
    """JSON of each entity's current State, computed once per State object."""

    __slots__ = ("_context", "_context_json", "_entries")

    def __init__(self) -> None:
        self._entries: dict[str, tuple[State, str]] = {}
        self._context: Context | None = None
        self._context_json = _dumps(context_dict(None))

    def context(self, context: Context | None) -> str:
        """JSON of a context; an event and its new state share one, so the last is remembered."""
        if context is not self._context:
            self._context_json = _dumps(context_dict(context))
            self._context = context
        return self._context_json

    def get(self, state: State | None) -> str:
        if state is None:
            return "null"
        entry = self._entries.get(state.entity_id)
        if entry is not None and entry[0] is state:
            return entry[1]
        # Assembled by hand (same text as dumps(state_dict(state))): no dict copies, shared context JSON.
        text = (
            '{"entity_id":' + _dumps(state.entity_id) + ',"state":' + _dumps(state_text(state.value))
            + ',"attributes":' + (_dumps(state.attributes) if state.attributes else "{}")
            + ',"last_changed":"' + iso(state.last_changed) + '","last_updated":"' + iso(state.last_updated)
            + '","context":' + self.context(state.context) + "}"
        )
        self._entries[state.entity_id] = (state, text)
        return text

    def forget(self, entity_id: str) -> None:
        self._entries.pop(entity_id, None)


def event_json(event: Event[Any], states: StateJsonCache) -> str:
    """The ``event`` object of an ``event`` message, as JSON text."""
    data = event.data
    if event.event_type == "state_changed":
        body = (
            '{"entity_id":' + _dumps(data["entity_id"]) + ',"old_state":' + states.get(data["old_state"])
            + ',"new_state":' + states.get(data["new_state"]) + "}"
        )
    else:
        body = _dumps(_plain(data))
    return (
        '{"event_type":' + _dumps(event.event_type) + ',"data":' + body + ',"origin":"LOCAL","time_fired":"'
        + iso(event.time_fired) + '","context":' + states.context(event.context) + "}"
    )


def _plain(value: Any) -> Any:
    """Event data made JSON-friendly: States become their dicts, sets lists."""
    if isinstance(value, State):
        return state_dict(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


# -- subscribe_entities: compressed states ----------------------------------------------

def _compressed_context(context: Context | None) -> Any:
    if context is None:
        return None
    if context.parent_id is None and context.token_id is None:
        return context.id
    return context_dict(context)


def compressed_state(state: State) -> dict[str, Any]:
    out: dict[str, Any] = {
        "s": state_text(state.value),
        "a": dict(state.attributes),
        "c": _compressed_context(state.context),
        "lc": state.last_changed,
    }
    if state.last_updated != state.last_changed:
        out["lu"] = state.last_updated
    return out


def state_diff(old: State, new: State) -> dict[str, Any]:
    """Home Assistant's ``{"+": additions, "-": {"a": [removed attribute names]}}`` for one entity."""
    additions: dict[str, Any] = {}
    diff: dict[str, Any] = {"+": additions}
    if old.value != new.value:
        additions["s"] = state_text(new.value)
    if old.last_changed != new.last_changed:
        additions["lc"] = new.last_changed
    elif old.last_updated != new.last_updated:
        additions["lu"] = new.last_updated
    old_ctx, new_ctx = old.context, new.context
    if old_ctx is not new_ctx and new_ctx is not None:
        additions["c"] = _compressed_context(new_ctx)
    old_attrs, new_attrs = old.attributes, new.attributes
    if old_attrs != new_attrs:
        changed = {key: value for key, value in new_attrs.items() if key not in old_attrs or old_attrs[key] != value}
        if changed:
            additions["a"] = changed
        removed = [key for key in old_attrs if key not in new_attrs]
        if removed:
            diff["-"] = {"a": removed}
    return diff


def entities_change_json(event: Event[Any]) -> str:
    """The ``event`` object of a subscribe_entities message for one state_changed event."""
    data = event.data
    entity_id = data["entity_id"]
    old, new = data["old_state"], data["new_state"]
    if new is None:
        return '{"r":[' + _dumps(entity_id) + "]}"
    if old is None:
        return '{"a":{' + _dumps(entity_id) + ":" + _dumps(compressed_state(new)) + "}}"
    return '{"c":{' + _dumps(entity_id) + ":" + _dumps(state_diff(old, new)) + "}}"
