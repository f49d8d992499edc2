"""``/api/stream``: the native binary stream for XR and game-engine clients (see docs/stream.md).

Each WebSocket binary frame holds one msgpack map. A subscription receives a
``snapshot`` and then ``delta`` messages. Changes are coalesced per subscription in
a dict keyed by entity id: a client that reads slowly receives the latest state of
each entity it missed, never a growing backlog. The writer awaits the socket
(TCP back-pressure), and while it waits new changes overwrite older ones.

Each state is msgpack-encoded once (cached per State object) and deltas are
assembled from those bytes (a one-change delta's tail is cached whole), so the
per-subscriber cost is concatenation; the API's flusher writes every connection's
queued messages once per loop turn.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from ..bus import Event
from ..capabilities import CommandError
from ..context import Context
from ..registry import EVENT_AREA_REGISTRY_UPDATED, EVENT_DEVICE_REGISTRY_UPDATED
from ..states import EVENT_STATE_CHANGED, State
from .auth import Principal
from .frames import OP_BINARY, header
from .input_checks import MAX_NESTING, BadInput, check_nesting
from .keys import API_KEY
from .limits import MAX_CALLS_IN_FLIGHT, MAX_PENDING_CONTROL, close_or_abort
from .outbox import wait_writable, writing_paused
from .stream_poses import AREA, DEVICE, PoseKey, area_visible, current_poses, device_visible, pose_entry, poses_message
from .ws_session import EndableSession, Framing, authenticate, serve

if TYPE_CHECKING:
    from .app import ApiServer

_LOGGER = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS = 16
MAX_FILTER_ITEMS = 10000


def _fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


# msgpack loads with the first thing packed or unpacked (a stream client, an XR scene push), not with the API:
# a hub whose clients all speak Home Assistant's JSON never maps it (~0.6 MiB). The first call of `pack` makes
# the packers and rebinds `pack` to the packer's own method, so later calls cost nothing extra.
_packer: Any = None
# For the rare text with no UTF-8 form (a lone surrogate from a driver or an MQTT device): "?" in its place.
# Not the default: a Packer with unicode_errors set takes a slower path for every string.
_lenient_packer: Any = None


def _load_msgpack(value: Any) -> bytes:
    global _packer, _lenient_packer, pack
    import msgpack

    _packer = msgpack.Packer(default=_fallback)
    _lenient_packer = msgpack.Packer(default=_fallback, unicode_errors="replace")
    pack = _packer.pack
    return pack(value)


pack: Callable[[Any], bytes] = _load_msgpack  # for what the hub itself names: keys, ids, entity ids


def pack_any_text(value: Any) -> bytes:
    """For values holding text from drivers or devices (states, command results): never fails on it."""
    try:
        return pack(value)
    except UnicodeEncodeError:
        return _lenient_packer.pack(value)


def unpack(data: bytes) -> Any:
    import msgpack  # loaded once (sys.modules) by the stream's first message

    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True, ext_hook=_reject_ext)
    except msgpack.StackError:  # msgpack's own limit (1024 levels), far above ours
        raise BadInput(f"nested deeper than {MAX_NESTING} levels") from None
    except UnicodeDecodeError:
        raise BadInput("text is not valid UTF-8") from None
    check_nesting(value)
    return value


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError("msgpack extension types are not accepted")


def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x80 | n,))
    if n < 0x10000:
        return b"\xde" + n.to_bytes(2, "big")
    return b"\xdf" + n.to_bytes(4, "big")


_REMOVED_NONE = b"\xa7removed\x90"  # msgpack of "removed" then [] (a 7-byte fixstr, an empty fixarray)


def state_entry(state: State) -> dict[str, Any]:
    return {"v": state.value, "a": dict(state.attributes), "lc": state.last_changed, "lu": state.last_updated}


class StateBytesCache:
    """msgpack bytes of ``{"v","a","lc","lu"}`` per entity, computed once per State object, with the entity id
    in front (a delta's or snapshot's map entry) and, for the common delta of one change, the delta's whole
    tail: each connection then adds only its subscription's prefix."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, list[Any]] = {}  # entity id -> [State, entry bytes, one-change tail or None]

    def _entry(self, state: State) -> list[Any]:
        entry = self._entries.get(state.entity_id)
        if entry is None or entry[0] is not state:
            entry = [state, pack(state.entity_id) + pack_any_text(state_entry(state)), None]
            self._entries[state.entity_id] = entry
        return entry

    def get(self, state: State) -> bytes:
        """``pack(entity_id) + pack(state entry)``: one map entry of ``states``."""
        data: bytes = self._entry(state)[1]
        return data

    def single(self, state: State) -> bytes:
        """The tail of a delta holding this one state and no removals (after its ``states`` key)."""
        entry = self._entry(state)
        if entry[2] is None:
            entry[2] = b"\x81" + entry[1] + _REMOVED_NONE
        data: bytes = entry[2]
        return data

    def forget(self, entity_id: str) -> None:
        self._entries.pop(entity_id, None)


def _delta(prefix: bytes, pending: dict[str, State | None], cache: StateBytesCache) -> bytes:
    """A ``delta`` message: ``prefix`` (type, id and the ``states`` key) and the pending changes."""
    if len(pending) == 1:
        [state] = pending.values()
        if state is not None:  # one change: the shared tail, encoded once for every subscriber
            return b"\x84" + prefix + cache.single(state)
    parts = [b"\x84", prefix, b""]
    removed: list[str] = []
    for entity_id, state in pending.items():
        if state is None:
            removed.append(entity_id)
        else:
            parts.append(cache.get(state))
    parts[2] = _map_header(len(parts) - 3)
    parts.append(pack("removed"))
    parts.append(pack(removed))
    return b"".join(parts)


def _error(msg_id: Any, code: str, message: str) -> bytes:
    return pack({"type": "result", "id": msg_id, "success": False, "error": {"code": code, "message": message}})


def _str_list(msg: Mapping[str, Any], key: str) -> frozenset[str] | None:
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_FILTER_ITEMS or not all(isinstance(v, str) for v in value):
        raise CommandError("invalid_format", f"{key} must be a list of strings")
    return frozenset(value)


class StreamSubscription:
    __slots__ = ("_match", "areas", "capabilities", "entities", "id", "pending", "pending_poses", "poses", "prefix",
                 "sent_poses")

    def __init__(self, sub_id: Any, entities: frozenset[str] | None, areas: frozenset[str] | None,
                 capabilities: frozenset[str] | None, poses: bool = False) -> None:
        self.id = sub_id
        self.entities = entities
        self.areas = areas
        self.capabilities = capabilities
        self.pending: dict[str, State | None] = {}
        self.poses = poses
        # poses as last queued to the client, so registry updates that leave a pose alone send nothing
        self.sent_poses: dict[PoseKey, dict[str, Any] | None] = {}
        self.pending_poses: dict[PoseKey, dict[str, Any] | None] = {}
        self._match: dict[str, bool] = {}
        self.prefix = pack("type") + pack("delta") + pack("id") + pack(sub_id) + pack("states")

    def matches(self, api: ApiServer, principal: Principal, entity_id: str) -> bool:
        verdict = self._match.get(entity_id)
        if verdict is None:
            verdict = principal.can_see(entity_id) and self._filters_match(api, entity_id)
            if len(self._match) < 100000:
                self._match[entity_id] = verdict
        return verdict

    def _filters_match(self, api: ApiServer, entity_id: str) -> bool:
        if self.entities is not None and entity_id not in self.entities:
            return False
        if self.areas is not None and api.areas.area_of(entity_id) not in self.areas:
            return False
        if self.capabilities is not None:
            entity = api.hub.entities.get(entity_id)
            if entity is None or self.capabilities.isdisjoint(entity.capabilities):
                return False
        return True

    def invalidate(self) -> None:
        self._match.clear()


class StreamConnection(EndableSession):
    """One authenticated stream client: subscriptions, control replies and one writer."""

    __slots__ = ("_blocked", "_calls", "_control", "_dirty", "_scheduled", "_waiter", "api", "closing", "principal",
                 "protocol", "riding", "subs", "transport", "ws")

    def __init__(self, api: ApiServer, ws: web.WebSocketResponse, principal: Principal) -> None:
        self.api = api
        self.ws = ws
        self.principal = principal
        self.subs: dict[Any, StreamSubscription] = {}
        self.closing = False
        self._control: deque[bytes] = deque()
        self._dirty: set[Any] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self.transport: asyncio.BaseTransport | None = None
        self.protocol: object = None  # aiohttp's request handler: told when the socket's buffer is full
        self._scheduled = False  # marked in the flusher's current window
        self._blocked = False  # the socket is full: changes coalesce until it drains
        self.riding: StreamMember | None = None  # its one subscription's shared channel (see StreamChannel)

    # -- the shared channel -------------------------------------------------------------
    def leave_step(self) -> None:
        """Take the channel's pending changes into its own subscription's, and from now on receive changes one
        by one: something else is about to be queued (a reply, a second subscription, a full socket)."""
        member = self.riding
        if member is None or not member.shared:
            return
        channel = member.channel
        if channel.pending and not self.closing:
            member.sub.pending.update(channel.pending)
            self._dirty.add(member.sub.id)
            self._schedule()
        channel.unshare(member)
        self.api.stream_fanout.went_private(self)

    def _rejoin(self) -> None:
        """Back in step once everything owed went out, with one subscription, and an empty channel window."""
        member = self.riding
        if (member is not None and not member.shared and not self._blocked and not self.closing
                and not self._control and not self._dirty and len(self.subs) == 1 and not member.channel.pending
                and self.subs.get(member.sub.id) is member.sub):
            member.channel.share(member)
            self.api.stream_fanout.went_in_step(self)

    def owed(self, sub_id: Any) -> dict[str, State | None]:
        """The changes a subscription is owed: its own, or (in step) its channel's (for tests)."""
        member = self.riding
        if member is not None and member.shared and member.sub.id == sub_id:
            return member.channel.pending
        return self.subs[sub_id].pending

    def write_shared(self, data: bytes) -> None:
        """The channel's delta, framed once for every member in step."""
        transport = self.transport
        if self.closing or not isinstance(transport, asyncio.Transport) or transport.is_closing():
            return
        transport.write(data)
        if writing_paused(self.protocol):
            self._blocked = True  # changes coalesce in its own subscription in the meantime
            self.leave_step()
            self._wake()

    def _schedule(self) -> None:
        if not self._scheduled and not self._blocked:
            self._scheduled = True
            self.api.flusher.mark(self)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def send(self, data: bytes) -> None:
        if self.closing:
            return
        if len(self._control) >= MAX_PENDING_CONTROL:
            # It keeps asking but never reads the answers: cut it off rather than buffer forever.
            self.closing = True
            self._control.clear()
            _LOGGER.warning("stream client could not keep up; disconnecting it")
            asyncio.get_running_loop().create_task(
                close_or_abort(self.ws, self.transport, b"Client unable to keep up with pending messages"))
            self._wake()
            return
        self.leave_step()
        self._control.append(data)
        self._schedule()

    def on_change(self, entity_id: str, new_state: State | None) -> None:
        api, principal = self.api, self.principal
        for sub in self.subs.values():
            if sub.matches(api, principal, entity_id):
                sub.pending[entity_id] = new_state
                self._dirty.add(sub.id)
        if self._dirty:
            self._schedule()

    def invalidate(self) -> None:
        for sub in self.subs.values():
            sub.invalidate()

    def on_pose_change(self, kind: str, key: str) -> None:
        """A device or area changed in the registry: queue its pose to subscriptions that asked for poses."""
        hub = self.api.hub
        if kind == DEVICE:
            device = hub.devices.get(key)
            visible = device is not None and device_visible(hub, self.principal, key)
            entry = pose_entry(device.pose) if device is not None and visible else None
        else:
            area = hub.areas.get(key)
            visible = area is not None and area_visible(hub, self.principal, key)
            entry = pose_entry(area.pose) if area is not None and visible else None
        pk = (kind, key)
        for sub in self.subs.values():
            if not sub.poses:
                continue
            if pk in sub.sent_poses and sub.sent_poses[pk] == entry and visible:
                continue
            if pk not in sub.sent_poses and not visible:
                continue
            if visible:
                sub.sent_poses[pk] = entry
            else:  # gone, or no longer visible to this token: say so once
                sub.sent_poses.pop(pk, None)
            sub.pending_poses[pk] = entry
            self._dirty.add(sub.id)
        if self._dirty:
            self._schedule()

    def _messages(self) -> list[bytes]:
        """Everything queued, as msgpack messages: control replies first, then each dirty subscription's poses
        and delta (its changes since the last one, latest state per entity)."""
        out = list(self._control)
        self._control.clear()
        if not self._dirty:
            return out
        cache = self.api.state_bytes
        dirty, self._dirty = self._dirty, set()
        for sub_id in dirty:
            sub = self.subs.get(sub_id)
            if sub is None:
                continue
            if sub.pending_poses:
                poses, sub.pending_poses = sub.pending_poses, {}
                out.append(pack(poses_message(sub.id, poses)))
            if not sub.pending:
                continue
            pending, sub.pending = sub.pending, {}
            out.append(_delta(sub.prefix, pending, cache))
        return out

    def flush(self) -> None:
        """Write everything queued in one system call (called by the flusher, once per loop turn)."""
        self._scheduled = False
        transport = self.transport
        if self.closing or self._blocked:
            return
        if not (self._control or self._dirty):
            self._rejoin()
            return
        if not isinstance(transport, asyncio.Transport):  # not a plain socket: the writer task sends
            self._wake()
            return
        if transport.is_closing():
            return
        parts: list[bytes] = []
        for message in self._messages():
            parts += (header(len(message), OP_BINARY), message)
        transport.write(b"".join(parts))
        if writing_paused(self.protocol):
            self._blocked = True  # changes coalesce per entity in the meantime
            self._wake()
        else:
            self._rejoin()

    async def write_loop(self) -> None:
        """Wait out a full socket (and, without a plain transport, send); the flusher does the rest."""
        ws = self.ws
        loop = asyncio.get_running_loop()
        while not self.closing:
            transport = self.transport
            if not isinstance(transport, asyncio.Transport) and (self._control or self._dirty):
                for message in self._messages():
                    await ws.send_bytes(message)
                continue
            if self._blocked and transport is not None:
                await wait_writable(self.protocol, transport)
                self._blocked = False
                self.flush()
                continue
            self._waiter = loop.create_future()
            await self._waiter
            self._waiter = None

    def stop(self) -> None:
        self.closing = True
        self.leave_step()
        self.subs.clear()
        for task in self._calls:
            task.cancel()
        self._wake()

    # -- incoming -----------------------------------------------------------------------
    def handle(self, msg: Any) -> None:
        if self.closing:  # being ended: frames already read are not acted on
            return
        if not isinstance(msg, dict):
            self.send(_error(None, "invalid_format", "each message must be a msgpack map"))
            return
        msg_id = msg.get("id")
        if msg_id is not None and (isinstance(msg_id, bool) or not isinstance(msg_id, int | str)):
            self.send(_error(None, "invalid_format", "id must be an integer or a string"))
            return
        kind = msg.get("type")
        try:
            if kind == "ping":
                self.send(pack({"type": "pong", "id": msg_id}))
            elif kind == "subscribe":
                self._subscribe(msg_id, msg)
            elif kind == "unsubscribe":
                target = msg.get("subscription", msg_id)
                sub = self.subs.get(target) if isinstance(target, int | str) else None
                if sub is None:
                    raise CommandError("not_found", "no such subscription")
                self.leave_step()  # its pending changes are dropped with it, as a private subscription's are
                del self.subs[target]
                self._dirty.discard(sub.id)
                if self.riding is not None and self.riding.sub is sub:
                    self.api.stream_fanout.leave(self.riding)
                    self.riding = None
                self.send(pack({"type": "result", "id": msg_id, "success": True}))
            elif kind == "call":
                self._call(msg_id, msg)
            elif isinstance(kind, str) and kind in self.api.stream_commands:
                result = self.api.stream_commands[kind](self, msg_id, msg)
                if inspect.isawaitable(result):  # a slow command (a day review): answer when done
                    self._answer_later(msg_id, kind, result)
                else:
                    self.send(pack_any_text({"type": "result", "id": msg_id, "success": True, "result": result}))
            else:
                raise CommandError("unknown_command", f"unknown message type {kind!r}")
        except CommandError as err:
            self.send(_error(msg_id, err.code, err.message))
        except Exception:  # a bug must cost this message, not the connection or the hub
            _LOGGER.exception("Error handling stream message %r", kind)
            self.send(_error(msg_id, "unknown_error", "internal error"))

    def _subscribe(self, msg_id: Any, msg: dict[str, Any]) -> None:
        if msg_id is None:
            raise CommandError("invalid_format", "subscribe needs an id")
        if msg_id in self.subs:
            raise CommandError("id_reuse", f"subscription {msg_id!r} already exists")
        if len(self.subs) >= MAX_SUBSCRIPTIONS:
            raise CommandError("not_allowed", f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        want_poses = msg.get("poses", False)
        if not isinstance(want_poses, bool):
            raise CommandError("invalid_format", "poses must be true or false")
        sub = StreamSubscription(msg_id, _str_list(msg, "entities"), _str_list(msg, "areas"),
                                 _str_list(msg, "capabilities"), want_poses)
        api, principal = self.api, self.principal
        cache = api.state_bytes
        states = [s for s in api.hub.states.all() if sub.matches(api, principal, s.entity_id)]
        parts = [cache.get(s) for s in states]
        self.send(b"\x83" + pack("type") + pack("snapshot") + pack("id") + pack(msg_id) + pack("states")
                  + _map_header(len(parts)) + b"".join(parts))
        if want_poses:  # queued right behind the snapshot, before any delta or pose change
            sub.sent_poses = current_poses(api.hub, principal)
            self.send(pack(poses_message(msg_id, sub.sent_poses)))
        self.subs[msg_id] = sub  # registered with the snapshot queued: every later change arrives as a delta
        if self.riding is None and not want_poses and isinstance(self.transport, asyncio.Transport):
            self.riding = api.stream_fanout.join(self, sub)  # in step once the snapshot has gone out
    def _call(self, msg_id: Any, msg: dict[str, Any]) -> None:
        entity_id, command, args = msg.get("entity_id"), msg.get("command"), msg.get("args")
        if not isinstance(entity_id, str) or not isinstance(command, str):
            raise CommandError("invalid_format", "call needs entity_id and command (strings)")
        if args is not None and not isinstance(args, dict):
            raise CommandError("invalid_format", "args must be a map")
        # Existence first: an invented id must cost no scope lookup (nor memory); and one answer for
        # "does not exist" and "out of scope", so a scoped token cannot probe which ids exist.
        if self.api.hub.entities.get(entity_id) is None or not self.principal.can_see(entity_id):
            raise CommandError("not_found", f"entity {entity_id!r} does not exist")
        if not self.principal.can_control(entity_id):
            raise CommandError("unauthorized", f"this token may not control {entity_id}")
        self._spawn(self._run_call(msg_id, entity_id, command, args))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run work that answers later: at most MAX_CALLS_IN_FLIGHT per connection."""
        if len(self._calls) >= MAX_CALLS_IN_FLIGHT:
            work.close()  # refused: it will never be awaited
            raise CommandError("not_allowed", "too many calls in flight on this connection")
        task = asyncio.get_running_loop().create_task(work)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    def _answer_later(self, msg_id: Any, kind: str, pending: Awaitable[Any]) -> None:
        async def answer() -> None:
            try:
                result = await pending
            except CommandError as err:
                self.send(_error(msg_id, err.code, err.message))
                return
            except Exception:  # a bug must cost this message, not the connection or the hub
                _LOGGER.exception("Error handling stream message %r", kind)
                self.send(_error(msg_id, "unknown_error", "internal error"))
                return
            self.send(pack_any_text({"type": "result", "id": msg_id, "success": True, "result": result}))

        try:
            self._spawn(answer())
        except CommandError:
            if inspect.iscoroutine(pending):
                pending.close()  # refused: it will never be awaited
            raise

    async def _run_call(self, msg_id: Any, entity_id: str, command: str, args: dict[str, Any] | None) -> None:
        context = Context("stream", token_id=self.principal.token.id, may_control=self.principal.can_control)
        try:
            await self.api.hub.commands.async_call(entity_id, command, args, context)
        except CommandError as err:
            self.send(_error(msg_id, err.code, err.message))
            return
        self.send(pack({"type": "result", "id": msg_id, "success": True}))


# Request/answer commands added by other modules (``labels/...``): handler(conn, id, msg) -> result, or an
# awaitable of it (answered when done, counted with calls in flight), raising CommandError for an error answer.
# Each ApiServer holds its own registry (``stream_commands``), so two hubs in one process never share handlers.
StreamHandler = Callable[[StreamConnection, Any, dict[str, Any]], Any]


class StreamMember:
    """One connection's subscription in a :class:`StreamChannel`."""

    __slots__ = ("channel", "conn", "shared", "sub")

    def __init__(self, conn: StreamConnection, sub: StreamSubscription, channel: StreamChannel) -> None:
        self.conn = conn
        self.sub = sub
        self.channel = channel
        self.shared = False  # in step: receives the channel's deltas as shared bytes


class StreamChannel:
    """Subscriptions that receive the same deltas: one scope, one subscription id, the same filters, no poses.

    While a connection's only subscription is in step with its channel (nothing else owed, socket not full),
    a change costs it nothing: the channel keeps the window's latest state per entity once, builds the delta
    once per flush and writes the same bytes to every member in step. A member that leaves step takes the
    window's changes into its own subscription first, so what it receives is unchanged."""

    __slots__ = ("api", "key", "matcher", "members", "pending", "riders", "scheduled")

    def __init__(self, api: ApiServer, key: tuple[Any, ...], principal: Principal, sub: StreamSubscription) -> None:
        self.api = api
        self.key = key
        # The filters and visibility of every member (their tokens have the same scope): decided once here.
        self.matcher = (StreamSubscription(sub.id, sub.entities, sub.areas, sub.capabilities), principal)
        self.members: list[StreamMember] = []
        self.riders = 0
        self.pending: dict[str, State | None] = {}
        self.scheduled = False

    def on_change(self, entity_id: str, new_state: State | None) -> None:
        matcher, principal = self.matcher
        if matcher.matches(self.api, principal, entity_id):
            self.pending[entity_id] = new_state
            if not self.scheduled:
                self.scheduled = True
                self.api.flusher.mark_channel(self)

    def share(self, member: StreamMember) -> None:
        member.shared = True
        self.riders += 1

    def unshare(self, member: StreamMember) -> None:
        member.shared = False
        self.riders -= 1
        if not self.riders:
            self.pending = {}

    def flush(self) -> None:
        """One delta for every member in step (before connections flush their own queues: see Flusher)."""
        self.scheduled = False
        pending, self.pending = self.pending, {}
        if not pending or not self.riders:
            return
        self.api.stream_fanout.framings += 1
        message = _delta(self.matcher[0].prefix, pending, self.api.state_bytes)
        data = header(len(message), OP_BINARY) + message
        for member in self.members:
            if member.shared:
                member.conn.write_shared(data)


class StreamFanout:
    """One state_changed listener for all stream connections: each change goes once to every channel with
    members in step, and to each connection that is not in step."""

    __slots__ = ("_api", "_private", "_unlisten", "channels", "connections", "framings")

    def __init__(self, api: ApiServer) -> None:
        self._api = api
        self.connections: list[StreamConnection] = []
        self._private: list[StreamConnection] = []  # not in step with a channel: changes go to them one by one
        self.channels: list[StreamChannel] = []
        self._unlisten: list[Callable[[], None]] = []
        self.framings = 0  # deltas built for the connections in step with a channel (once for all of them)

    def add(self, conn: StreamConnection) -> None:
        self.connections = [*self.connections, conn]
        self._private = [*self._private, conn]
        if not self._unlisten:
            bus = self._api.hub.bus
            self._unlisten = [
                bus.listen(EVENT_STATE_CHANGED, self._on_event),
                bus.listen(EVENT_DEVICE_REGISTRY_UPDATED, self._on_device),
                bus.listen(EVENT_AREA_REGISTRY_UPDATED, self._on_area),
            ]

    def remove(self, conn: StreamConnection) -> None:
        if conn.riding is not None:
            self.leave(conn.riding)
            conn.riding = None
        self.connections = [c for c in self.connections if c is not conn]
        self._private = [c for c in self._private if c is not conn]
        if not self.connections:
            for unlisten in self._unlisten:
                unlisten()
            self._unlisten = []

    # -- channels -----------------------------------------------------------------------
    def join(self, conn: StreamConnection, sub: StreamSubscription) -> StreamMember:
        principal = conn.principal
        scopes = principal.scopes
        key = (scopes.areas, scopes.entities, sub.id, sub.entities, sub.areas, sub.capabilities)
        channel = next((c for c in self.channels if c.key == key), None)
        if channel is None:
            channel = StreamChannel(self._api, key, principal, sub)
            self.channels = [*self.channels, channel]
        member = StreamMember(conn, sub, channel)
        channel.members = [*channel.members, member]
        return member

    def leave(self, member: StreamMember) -> None:
        if member.shared:
            member.conn.leave_step()
        channel = member.channel
        channel.members = [m for m in channel.members if m is not member]
        if not channel.members:
            self.channels = [c for c in self.channels if c is not channel]

    def went_private(self, conn: StreamConnection) -> None:
        self._private = [*self._private, conn]

    def went_in_step(self, conn: StreamConnection) -> None:
        self._private = [c for c in self._private if c is not conn]

    def invalidate(self) -> None:
        """The registries changed: which entities an area or capability filter matches may have too."""
        for conn in self.connections:
            conn.invalidate()
        for channel in self.channels:
            channel.matcher[0].invalidate()

    def _on_device(self, event: Event[Any]) -> None:
        self._pose_changed(DEVICE, event.data.get("device_id"))
        # A device that moved (or went) can change which areas a scoped token sees; areas are few.
        if any(not conn.principal.unrestricted for conn in self.connections):
            for area in self._api.hub.areas.all():
                self._pose_changed(AREA, area.id)

    def _on_area(self, event: Event[Any]) -> None:
        self._pose_changed(AREA, event.data.get("area_id"))

    def _pose_changed(self, kind: str, key: Any) -> None:
        if not isinstance(key, str):
            return
        for conn in self.connections:
            if any(sub.poses for sub in conn.subs.values()):
                conn.on_pose_change(kind, key)

    def _on_event(self, event: Event[Any]) -> None:
        data = event.data
        entity_id, new_state = data["entity_id"], data["new_state"]
        for channel in self.channels:
            if channel.riders:
                channel.on_change(entity_id, new_state)
        for conn in self._private:
            if conn.subs:
                conn.on_change(entity_id, new_state)


async def handle_stream(request: web.Request) -> web.WebSocketResponse:
    api: ApiServer = request.app[API_KEY]
    ws = web.WebSocketResponse(max_msg_size=api.max_message_bytes, heartbeat=55, compress=False)
    await ws.prepare(request)
    principal = await authenticate(api, ws, api.client_address(request), FRAMING)
    if principal is None:
        return ws
    await ws.send_bytes(pack({"type": "auth_ok"}))
    conn = StreamConnection(api, ws, principal)
    conn.transport = request.transport
    conn.protocol = request.protocol
    api.stream_fanout.add(conn)
    writer = asyncio.get_running_loop().create_task(conn.write_loop())
    try:
        await serve(ws, conn, FRAMING, writer, api.client_address(request))
    finally:
        conn.stop()
        api.stream_fanout.remove(conn)
    return ws


async def _send(ws: web.WebSocketResponse, payload: Mapping[str, Any]) -> None:
    await ws.send_bytes(pack(payload))


FRAMING = Framing(
    frame_type=WSMsgType.BINARY, decode=unpack, send=_send, error=_error,
    texts={
        "auth_timeout": "no auth message within {seconds:g} seconds",
        "auth_format": "first message must be {type: auth, access_token: ...} in msgpack",
        "auth_blocked": "too many failed login attempts; try again later",
        "auth_invalid": "invalid access token",
        "bad_frame": "not valid msgpack",
        "wrong_frame": "send binary frames holding msgpack",
        "protocol": "stream",
    },
)
