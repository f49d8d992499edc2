"""Home Assistant WebSocket messages (JSON) through the real message handler of a running hub.

A bug is: a reply with ``unknown_error`` (the handler caught an exception), an exception, or a
state change that the token's scopes forbid (read-only changes nothing; an area token changes
nothing outside its areas).
"""

from __future__ import annotations

import json

from . import _apihub

INSTRUMENT = ("qilu_hub.api", "qilu_hub.commands", "qilu_hub.tokens")
SEEDS = [
    b"\x00" + json.dumps({"id": 1, "type": "call_service", "domain": "light", "service": "turn_on",
                          "service_data": {"brightness": 120},
                          "target": {"entity_id": "light.living_room_ceiling_light"}}).encode(),
    b"\x01" + json.dumps({"id": 2, "type": "subscribe_entities"}).encode(),
    b"\x02" + json.dumps({"id": 3, "type": "get_states"}).encode(),
    b"\x00" + json.dumps({"id": 4, "type": "subscribe_events", "event_type": "state_changed"}).encode(),
]
_NAMES = ("admin", "read_only", "kitchen")


def setup() -> None:
    _apihub.start()


def _snapshot(env: dict, name: str) -> dict:
    api = env["api"]
    out = {}
    for s in env["hub"].states.all():
        if name == "read_only" or (name == "kitchen" and api.areas.area_of(s.entity_id) != "kitchen"):
            out[s.entity_id] = (s.value, dict(s.attributes))
    return out


def one(data: bytes) -> None:
    from qilu_hub.api.websocket_ha import FRAMING, HaConnection

    if not data:
        return
    env = _apihub.start()
    name = _NAMES[data[0] % 3]
    try:
        msg = FRAMING.decode(data[1:].decode("utf-8"))  # the socket's own decoder (aiohttp checks UTF-8 first)
    except ValueError:  # RecursionError too deep for its stack is a bug now: the decoder must refuse it
        return  # the socket handler answers invalid_format before the message handler sees it
    conn = HaConnection(env["api"], _apihub.SinkSocket(), env["principals"][name])  # type: ignore[arg-type]
    before = _snapshot(env, name)
    try:
        _apihub.handle(env["loop"], conn, msg)
        replies = conn.pending_texts()
    finally:
        conn.stop()
    for reply in replies:
        assert '"unknown_error"' not in reply, reply
    assert _snapshot(env, name) == before, f"{name} token changed state it may not control: {msg!r}"
