"""msgpack stream frames through the real decoder and message handler of a running hub.

A bug is: an exception other than the decoder's refusal, an ``unknown_error`` reply, or a state
change the token's scopes forbid.
"""

from __future__ import annotations

import msgpack

from . import _apihub
from .ha_ws import _snapshot

INSTRUMENT = ("qilu_hub.api", "qilu_hub.commands", "qilu_hub.tokens")
SEEDS = [
    b"\x00" + msgpack.packb({"type": "call", "id": 1, "entity_id": "light.living_room_ceiling_light",
                             "command": "turn_on", "args": {"brightness": 10}}),
    b"\x01" + msgpack.packb({"type": "subscribe", "id": "s", "areas": ["kitchen"], "capabilities": ["power"]}),
    b"\x02" + msgpack.packb({"type": "ping", "id": 7}),
]
_NAMES = ("admin", "read_only", "kitchen")


def setup() -> None:
    _apihub.start()


def one(data: bytes) -> None:
    from qilu_hub.api.stream import StreamConnection, unpack

    if not data:
        return
    env = _apihub.start()
    name = _NAMES[data[0] % 3]
    try:
        msg = unpack(data[1:])
    except Exception:  # the socket handler answers invalid_format for any decoder refusal
        return
    conn = StreamConnection(env["api"], _apihub.SinkSocket(), env["principals"][name])  # type: ignore[arg-type]
    before = _snapshot(env, name)
    try:
        _apihub.handle(env["loop"], conn, msg)
        replies = list(conn._control)
    finally:
        conn.stop()
    for reply in replies:
        assert b"unknown_error" not in reply, reply
    assert _snapshot(env, name) == before, f"{name} token changed state it may not control: {msg!r}"
