"""``/api/websocket``: Home Assistant's WebSocket API.

Follows developers.home-assistant.io/docs/api/websocket: ``auth_required`` →
``auth`` → ``auth_ok`` / ``auth_invalid``; then commands ``{"id": n, "type": ...}``
with increasing ids, answered by ``result`` messages, and subscriptions delivering
``event`` messages under the subscribing command's id.

Fan-out (:mod:`.ha_fanout`): one bus listener per event type serves every subscribed
connection, grouped by scope and by what they receive byte for byte. Each event is
serialised and encoded once per shape, and framed once per window for every connection
in step; a connection that owes something else queues its subscription's id prefix and
that shared body, and the API's flusher writes each connection's queue once per loop
turn (with ``coalesce_messages`` as JSON arrays). A client whose queue passes
``MAX_PENDING_BYTES`` is disconnected (as Home Assistant does past 4,096 pending
messages) rather than grow the hub's memory; one that only lags behind a full socket
gets ``subscribe_entities`` updates coalesced instead.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from ..bus import MATCH_ALL
from ..capabilities import CommandError
from . import ha_format
from .auth import Principal
from .frames import ha_batch
from .ha_fanout import EntitiesSubscription, Member
from .keys import API_KEY
from .limits import (
    LAG_BYTES,
    MAX_CALLS_IN_FLIGHT,
    MAX_PENDING_BYTES,
    MAX_PENDING_CONTROL,
    MAX_PENDING_MESSAGES,
    MIN_PENDING_BYTES,
    TOTAL_PENDING_BYTES,
    close_or_abort,
)
from .outbox import wait_writable, writing_paused
from .services import HA_ERROR_CODES, call_service, services_of
from .ws_session import EndableSession, Framing, authenticate, serve

if TYPE_CHECKING:
    from .app import ApiServer

_LOGGER = logging.getLogger(__name__)

HA_VERSION = "2024.3.3"  # the Home Assistant release whose protocol this follows


def pending_share(connections: int) -> int:
    """Bytes each Home Assistant client may have queued: ``MAX_PENDING_BYTES``, less when many are connected,
    so that all queues together stay within ``TOTAL_PENDING_BYTES`` (never below ``MIN_PENDING_BYTES``)."""
    return max(MIN_PENDING_BYTES, min(MAX_PENDING_BYTES, TOTAL_PENDING_BYTES // max(connections, 1)))


def _result(msg_id: Any, result: Any = None) -> str:
    return '{"id":' + ha_format.dumps(msg_id) + ',"type":"result","success":true,"result":' + ha_format.dumps(
        result) + "}"


def _error(msg_id: Any, code: str, message: str) -> str:
    return ha_format.dumps(
        {"id": msg_id, "type": "result", "success": False, "error": {"code": code, "message": message}}
    )


class HaConnection(EndableSession):
    """One authenticated client: its subscriptions and its outgoing queue.

    The queue holds encoded messages as (prefix, body) pairs: an event's body is one bytes object shared by
    every connection that receives it, the prefix its subscription's ``{"id":N,...,"event":`` (encoded once at
    subscribe time). While it owes nothing but one subscription's events it takes them from that subscription's
    shared channel instead, and its queue stays empty (see :mod:`.ha_fanout`). A client behind a full socket is
    cut off once its queued events pass its byte share (:func:`pending_share`), as Home Assistant cuts off a
    client with too many pending messages; within one loop turn, past Home Assistant's 4,096 messages; command
    answers are capped in number. A lagging ``subscribe_entities`` subscription is never cut off: it holds the
    latest state of each changed entity instead (:class:`~.ha_fanout.EntitiesSubscription`).
    """

    __slots__ = ("_answers", "_blocked", "_calls", "_lagging", "_pending", "_pending_bytes", "_scheduled", "_waiter",
                 "api", "closing", "coalesce", "last_id", "principal", "protocol", "riding", "subs", "transport",
                 "ws")

    def __init__(self, api: ApiServer, ws: web.WebSocketResponse, principal: Principal) -> None:
        self.api = api
        self.ws = ws
        self.principal = principal
        self.coalesce = False
        self.last_id = 0
        self.subs: dict[int, Callable[[], None]] = {}
        self.closing = False
        self._pending: list[tuple[bytes, bytes]] = []
        self._pending_bytes = 0  # events queued (answers are counted apart, in _answers)
        self._answers = 0
        self._scheduled = False  # marked in the flusher's current window
        self._blocked = False  # the socket is full: the writer task waits for it to drain
        self._lagging: list[EntitiesSubscription] = []  # subscriptions holding coalesced updates
        self._waiter: asyncio.Future[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self.transport: asyncio.Transport | None = None
        self.protocol: object = None  # aiohttp's request handler: told when the socket's buffer is full
        self.riding: Member | None = None  # the subscription whose channel it takes shared bytes from, in step

    # -- the shared channel -------------------------------------------------------------
    def ride(self, member: Member) -> None:
        """A new subscription: ride its channel if there is none yet, or if it carries every state change and
        the one ridden does not (a dashboard's subscribe_entities, not its rare registry events)."""
        if self.transport is None or member.channel.coalesce != self.coalesce:
            return
        current = self.riding
        if current is None or (member.channel.hot and not current.channel.hot):
            self.leave_step()
            self.riding = member  # in step once its queue (the subscription's answer) has been written

    def unride(self, member: Member) -> None:
        if self.riding is member:
            self.riding = None

    def leave_step(self) -> None:
        """Take the shared window's messages so far into this connection's own queue, and from now on receive
        its channel's messages there: something else is about to be queued behind them."""
        member = self.riding
        if member is None or not member.shared:
            return
        channel = member.channel
        if channel.window and not self.closing:
            prefix = member.prefix
            pending = self._pending
            for body in channel.window:
                pending.append((prefix, body))
                self._pending_bytes += len(prefix) + len(body)
            self._schedule()
        channel.unshare(member)

    def _rejoin(self) -> None:
        """Back in step once everything owed went out and its channel's window is empty (written first)."""
        member = self.riding
        if (member is not None and not member.shared and not self._pending and not self._blocked
                and not self._lagging and not self.closing and not member.channel.window):
            member.channel.share(member)

    def write_shared(self, data: bytes) -> None:
        """The channel's window, framed once for every member in step."""
        transport = self.transport
        if self.closing or transport is None or transport.is_closing():
            return
        transport.write(data)
        if writing_paused(self.protocol):
            self._blocked = True  # its channel's messages now gather in its own queue (and coalesce)
            self.leave_step()
            self._wake()

    # -- outgoing -----------------------------------------------------------------------
    def send(self, text: str) -> None:
        """Queue one command answer, encoded here. Answers are capped in number (``MAX_PENDING_CONTROL``), not
        bytes: one may be large (all states), and the client's rate limit bounds how many it asks for."""
        if self.closing:
            return
        self.leave_step()
        self._answers += 1
        if self._answers > MAX_PENDING_CONTROL:
            self._overflow()
            return
        self._pending.append((b"", ha_format.encode(text)))
        self._schedule()

    def send_parts(self, prefix: bytes, body: bytes) -> None:
        """Queue one event message, ``prefix + body`` (the body's bytes shared with other connections)."""
        if self.closing:
            return
        self.leave_step()
        self._pending.append((prefix, body))
        self._pending_bytes += len(prefix) + len(body)
        # Behind a full socket the backlog is the client's: its bytes are bounded. Within one loop turn it is
        # the hub's own burst (the bodies are shared; a message costs the queue a tuple) and goes out at the
        # turn's end, bounded in number as Home Assistant bounds it.
        blocked_over = self._blocked and self._pending_bytes > self.api.pending_share
        if blocked_over or len(self._pending) > MAX_PENDING_MESSAGES:
            self._overflow()
            return
        self._schedule()

    def send_latest(self, prefix: bytes, body: bytes) -> None:
        """Queue a catch-up message (latest states after lagging): bounded by the entities, so never cut off."""
        if self.closing:
            return
        self.leave_step()
        self._pending.append((prefix, body))
        self._pending_bytes += len(prefix) + len(body)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled and not self._blocked:
            self._scheduled = True
            self.api.flusher.mark(self)

    def lagging(self) -> bool:
        """Blocked behind a full socket with a queue worth coalescing: entity updates are held as latest-only."""
        if self._blocked:
            return self._pending_bytes > min(LAG_BYTES, self.api.pending_share // 4)
        return len(self._pending) > MAX_PENDING_MESSAGES // 2  # a burst: coalesce rather than be cut off

    def hold(self, sub: EntitiesSubscription) -> None:
        self._lagging.append(sub)
        self._schedule()  # its catch-up goes out at the next flush with room

    def _overflow(self) -> None:
        self.closing = True
        self._pending.clear()
        self._pending_bytes = 0
        _LOGGER.warning("Home Assistant API client could not keep up; disconnecting it")
        asyncio.get_running_loop().create_task(
            close_or_abort(self.ws, self.transport, b"Client unable to keep up with pending messages")
        )
        self._wake()

    def _queued(self) -> list[tuple[bytes, bytes]]:
        """What the client is owed: its own queue, or (in step) its channel's window."""
        member = self.riding
        if member is not None and member.shared:
            return [(member.prefix, body) for body in member.channel.window]
        return self._pending

    def pending_count(self) -> int:
        member = self.riding
        if member is not None and member.shared:
            return len(member.channel.window)
        return len(self._pending)

    def pending_bytes(self) -> int:
        member = self.riding
        if member is not None and member.shared:
            channel = member.channel
            return channel.window_bytes + len(channel.window) * len(member.prefix)
        return self._pending_bytes

    def pending_texts(self) -> list[str]:
        """The queued messages as text (for tests and fuzzing)."""
        return [(prefix + body).decode() for prefix, body in self._queued()]

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def flush(self) -> None:
        """Write everything queued in one system call (called by the flusher, once per loop turn)."""
        self._scheduled = False
        transport = self.transport
        if self.closing or self._blocked:
            return
        if self._lagging:  # held subscribe_entities updates: the latest states, now that there is room
            for sub in self._lagging:
                sub.catch_up()
            self._lagging.clear()
        if not self._pending:
            self._rejoin()
            return
        if transport is None:  # no raw transport (not a plain socket): the writer task sends through aiohttp
            self._wake()
            return
        if transport.is_closing():
            return
        batch, self._pending, self._pending_bytes, self._answers = self._pending, [], 0, 0
        transport.write(ha_batch(batch, self.coalesce))
        if writing_paused(self.protocol):
            self._blocked = True  # new messages gather (and entity updates coalesce) until it drains
            self._wake()
        else:
            self._rejoin()

    async def write_loop(self, transport: asyncio.Transport | None) -> None:
        """Wait out a full socket (and, without a raw transport, send); the flusher does the rest. A failure
        here is a bug: it is logged and the connection closed, never left open with nobody writing to it."""
        try:
            await self._write(transport)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            _LOGGER.exception("Home Assistant API writer failed; closing the connection")
            self.closing = True
            self._pending.clear()
            await close_or_abort(self.ws, transport, b"Internal error")

    async def _write(self, transport: asyncio.Transport | None) -> None:
        ws = self.ws
        loop = asyncio.get_running_loop()
        while not self.closing:
            if transport is None and self._pending:
                batch, self._pending, self._pending_bytes, self._answers = self._pending, [], 0, 0
                for prefix, body in batch:
                    await ws.send_frame(prefix + body, WSMsgType.TEXT)
                continue
            if self._blocked:
                if transport is not None:
                    await wait_writable(self.protocol, transport)
                self._blocked = False
                self.flush()  # held entity updates first go out as their latest states
                continue
            self._waiter = loop.create_future()
            await self._waiter
            self._waiter = None

    def stop(self) -> None:
        self.closing = True
        for unsubscribe in self.subs.values():
            unsubscribe()
        self.subs.clear()
        for task in self._calls:
            task.cancel()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- incoming -----------------------------------------------------------------------
    def handle(self, msg: Any) -> None:
        if self.closing:  # being ended: frames already read are not acted on
            return
        if not isinstance(msg, dict):
            self.send(_error(None, "invalid_format", "Message incorrectly formatted: expected an object"))
            return
        msg_id = msg.get("id")
        if not isinstance(msg_id, int) or isinstance(msg_id, bool):
            self.send(_error(msg_id if isinstance(msg_id, int | str) else None, "invalid_format",
                             "Message incorrectly formatted: id must be an integer"))
            return
        if msg_id <= self.last_id:
            self.send(_error(msg_id, "id_reuse", "Identifier values have to increase."))
            return
        self.last_id = msg_id
        msg_type = msg.get("type")
        handler = self.api.ws_commands.get(msg_type) if isinstance(msg_type, str) else None
        if handler is None:
            self.send(_error(msg_id, "unknown_command", f"Unknown command {msg_type!r}."))
            return
        try:
            later = handler(self, msg_id, msg)
            if inspect.isawaitable(later):  # a slow custom command (a day review) answers when done
                self._spawn(self._guarded(msg_id, str(msg_type), later), "calls")
        except CommandError as err:
            self.send(_error(msg_id, HA_ERROR_CODES.get(err.code, "unknown_error"), err.message))
        except Exception:
            _LOGGER.exception("Error handling %s", msg_type)
            self.send(_error(msg_id, "unknown_error", "Unknown error"))

    # -- commands -----------------------------------------------------------------------
    def cmd_ping(self, msg_id: int, msg: dict[str, Any]) -> None:
        self.send('{"id":' + str(msg_id) + ',"type":"pong"}')

    def cmd_supported_features(self, msg_id: int, msg: dict[str, Any]) -> None:
        features = msg.get("features", {})
        if not isinstance(features, dict):
            raise CommandError("invalid_format", "features must be an object")
        self.send(_result(msg_id))
        # Set after the result so that the result itself is never part of an array.
        self.coalesce = bool(features.get("coalesce_messages"))
        if self.riding is not None and self.riding.channel.coalesce != self.coalesce:
            self.leave_step()  # its channel frames the other way: its subscriptions' messages are its own now
            self.riding = None

    def cmd_get_states(self, msg_id: int, msg: dict[str, Any]) -> None:
        cache = self.api.state_json
        can_see = self.principal.can_see
        items = [cache.get(s) for s in self.api.hub.states.all() if can_see(s.entity_id)]
        self.send('{"id":' + str(msg_id) + ',"type":"result","success":true,"result":[' + ",".join(items) + "]}")

    def cmd_get_config(self, msg_id: int, msg: dict[str, Any]) -> None:
        self.send(_result(msg_id, self.api.config_dict()))

    def cmd_get_services(self, msg_id: int, msg: dict[str, Any]) -> None:
        self.send(_result(msg_id, services_of(self.api.hub, self.principal)))

    def cmd_subscribe_events(self, msg_id: int, msg: dict[str, Any]) -> None:
        event_type = msg.get("event_type", MATCH_ALL)
        if not isinstance(event_type, str) or not event_type:
            raise CommandError("invalid_format", "event_type must be a string")
        self.subs[msg_id] = self.api.ha_fanout.add_events(event_type, self, msg_id)
        self.send(_result(msg_id))

    def cmd_unsubscribe_events(self, msg_id: int, msg: dict[str, Any]) -> None:
        sub_id = msg.get("subscription")
        unsubscribe = self.subs.pop(sub_id, None) if isinstance(sub_id, int) else None
        if unsubscribe is None:
            raise CommandError("not_found", "Subscription not found.")
        unsubscribe()
        self.send(_result(msg_id))

    def cmd_subscribe_entities(self, msg_id: int, msg: dict[str, Any]) -> None:
        wanted = msg.get("entity_ids")
        if wanted is not None and (not isinstance(wanted, list) or not all(isinstance(e, str) for e in wanted)):
            raise CommandError("invalid_format", "entity_ids must be a list of strings")
        entity_ids = frozenset(wanted) if wanted is not None else None
        self.subs[msg_id] = self.api.ha_fanout.add_entities(self, msg_id, entity_ids)
        self.send(_result(msg_id))
        can_see = self.principal.can_see
        added = {
            s.entity_id: ha_format.compressed_state(s)
            for s in self.api.hub.states.all()
            if (entity_ids is None or s.entity_id in entity_ids) and can_see(s.entity_id)
        }
        self.send('{"id":' + str(msg_id) + ',"type":"event","event":' + ha_format.dumps({"a": added}) + "}")

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run work that answers later: at most MAX_CALLS_IN_FLIGHT per connection, cancelled when it closes."""
        if len(self._calls) >= MAX_CALLS_IN_FLIGHT:
            work.close()  # refused: it will never be awaited
            raise CommandError("not_allowed", f"too many {what} in flight on this connection")
        task = asyncio.get_running_loop().create_task(work)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _guarded(self, msg_id: int, msg_type: str, work: Awaitable[Any]) -> None:
        """Await a custom command's work; its errors answer like those of a command that answers at once."""
        try:
            await work
        except CommandError as err:
            self.send(_error(msg_id, HA_ERROR_CODES.get(err.code, "unknown_error"), err.message))
        except Exception:
            _LOGGER.exception("Error handling %s", msg_type)
            self.send(_error(msg_id, "unknown_error", "Unknown error"))

    def cmd_call_service(self, msg_id: int, msg: dict[str, Any]) -> None:
        self._spawn(self._call_service(msg_id, msg), "service calls")

    async def _call_service(self, msg_id: int, msg: dict[str, Any]) -> None:
        try:
            context = await call_service(self.api.hub, self.principal, msg.get("domain"), msg.get("service"),
                                         msg.get("service_data"), msg.get("target"))
        except CommandError as err:
            self.send(_error(msg_id, HA_ERROR_CODES.get(err.code, "home_assistant_error"), err.message))
            return
        self.send(_result(msg_id, {"context": ha_format.context_dict(context), "response": None}))


HaHandler = Callable[[HaConnection, int, dict[str, Any]], Any]
"""A command: answers with ``conn.send`` at once, or returns an awaitable that answers when done (counted with
the connection's calls in flight, cancelled when it closes)."""

# Home Assistant's own commands; read-only, each ApiServer copies them into its own registry (``ws_commands``)
# and other modules add theirs (``qilu/...``) there, so two hubs in one process never share handlers.
BUILTIN_COMMANDS: Mapping[str, HaHandler] = MappingProxyType({
    "ping": HaConnection.cmd_ping,
    "supported_features": HaConnection.cmd_supported_features,
    "get_states": HaConnection.cmd_get_states,
    "get_config": HaConnection.cmd_get_config,
    "get_services": HaConnection.cmd_get_services,
    "subscribe_events": HaConnection.cmd_subscribe_events,
    "unsubscribe_events": HaConnection.cmd_unsubscribe_events,
    "subscribe_entities": HaConnection.cmd_subscribe_entities,
    "call_service": HaConnection.cmd_call_service,
})


def command_registry() -> dict[str, HaHandler]:
    """A fresh registry for one API server: the built-in commands, to which features add their own."""
    return dict(BUILTIN_COMMANDS)


async def handle_websocket(request: web.Request) -> web.WebSocketResponse:
    """The aiohttp handler of ``/api/websocket``."""
    api: ApiServer = request.app[API_KEY]
    ws = web.WebSocketResponse(max_msg_size=api.max_message_bytes, heartbeat=55, compress=False)
    await ws.prepare(request)
    address = api.client_address(request)
    await ws.send_str(ha_format.dumps({"type": "auth_required", "ha_version": HA_VERSION}))
    principal = await authenticate(api, ws, address, FRAMING)
    if principal is None:
        return ws
    await ws.send_str(ha_format.dumps({"type": "auth_ok", "ha_version": HA_VERSION}))
    conn = HaConnection(api, ws, principal)
    api.ha_connections.add(conn)
    api.pending_share = pending_share(len(api.ha_connections))
    transport = request.transport if isinstance(request.transport, asyncio.Transport) else None
    conn.transport = transport
    conn.protocol = request.protocol
    writer = asyncio.get_running_loop().create_task(conn.write_loop(transport))
    try:
        await serve(ws, conn, FRAMING, writer, address)
    finally:
        conn.stop()
        api.ha_connections.discard(conn)
        api.pending_share = pending_share(len(api.ha_connections))
    return ws


async def _send(ws: web.WebSocketResponse, payload: Mapping[str, Any]) -> None:
    await ws.send_frame(ha_format.encode(ha_format.dumps(payload)), WSMsgType.TEXT)


# Wording as Home Assistant's own server answers, so its clients show familiar messages.
FRAMING = Framing(
    frame_type=WSMsgType.TEXT, decode=ha_format.json_loads, send=_send, error=_error,
    texts={
        "auth_timeout": "Did not receive auth message within {seconds:g} seconds",
        "auth_format": "Auth message incorrectly formatted",
        "auth_blocked": "Too many failed login attempts; try again later",
        "auth_invalid": "Invalid access token or password",
        "bad_frame": "Message is not valid JSON",
        "wrong_frame": "Binary frames are not part of this protocol",
        "protocol": "Home Assistant WebSocket",
    },
)
