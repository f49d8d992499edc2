"""``/api/websocket``: Home Assistant's WebSocket API.

Follows developers.home-assistant.io/docs/api/websocket: ``auth_required`` →
``auth`` → ``auth_ok`` / ``auth_invalid``; then commands ``{"id": n, "type": ...}``
with increasing ids, answered by ``result`` messages, and subscriptions delivering
``event`` messages under the subscribing command's id.

Fan-out: one bus listener per event type serves every subscribed connection. Each
event is serialised once (its JSON is memoised on the event object's identity) and
wrapped per connection with only the subscription id. Each connection has one
writer task and a list of pending frames; with ``coalesce_messages`` the pending
messages go out as one JSON array per write. A client that lets more than
``MAX_PENDING_MESSAGES`` pile up is disconnected (as Home Assistant does) rather
than grow the hub's memory.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from ..bus import MATCH_ALL, Event
from ..capabilities import CommandError
from ..states import EVENT_STATE_CHANGED
from . import ha_format
from .auth import Principal
from .frames import frame
from .keys import API_KEY
from .limits import MAX_CALLS_IN_FLIGHT, MAX_PENDING_MESSAGES, close_or_abort
from .services import HA_ERROR_CODES, call_service, services_of
from .ws_session import EndableSession, Framing, authenticate, serve

if TYPE_CHECKING:
    from .app import ApiServer

_LOGGER = logging.getLogger(__name__)

HA_VERSION = "2024.3.3"  # the Home Assistant release whose protocol this follows
# Bytes a connection may have queued in its transport before its writer waits for the socket:
# enough to keep loopback and LAN links busy between the writer's turns, bounded per client.
WRITE_BUFFER_HIGH = 1024 * 1024
COALESCE_MAX = 64


def _result(msg_id: Any, result: Any = None) -> str:
    return '{"id":' + ha_format.dumps(msg_id) + ',"type":"result","success":true,"result":' + ha_format.dumps(
        result) + "}"


def _error(msg_id: Any, code: str, message: str) -> str:
    return ha_format.dumps(
        {"id": msg_id, "type": "result", "success": False, "error": {"code": code, "message": message}}
    )


class HaConnection(EndableSession):
    """One authenticated client: its subscriptions and its outgoing queue."""

    __slots__ = ("_calls", "_pending", "_waiter", "api", "closing", "coalesce", "last_id", "principal", "subs",
                 "transport", "ws")

    def __init__(self, api: ApiServer, ws: web.WebSocketResponse, principal: Principal) -> None:
        self.api = api
        self.ws = ws
        self.principal = principal
        self.coalesce = False
        self.last_id = 0
        self.subs: dict[int, Callable[[], None]] = {}
        self.closing = False
        self._pending: list[str] = []
        self._waiter: asyncio.Future[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self.transport: asyncio.Transport | None = None

    # -- outgoing -----------------------------------------------------------------------
    def send(self, text: str) -> None:
        if self.closing:
            return
        pending = self._pending
        pending.append(text)
        if len(pending) > MAX_PENDING_MESSAGES:
            self._overflow()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _overflow(self) -> None:
        self.closing = True
        self._pending.clear()
        _LOGGER.warning("Home Assistant API client could not keep up; disconnecting it")
        asyncio.get_running_loop().create_task(
            close_or_abort(self.ws, self.transport, b"Client unable to keep up with pending messages")
        )

    def pending_count(self) -> int:
        return len(self._pending)

    async def write_loop(self, transport: asyncio.Transport | None) -> None:
        """Send queued messages until the connection closes. A failure here is a bug: it is logged and the
        connection closed, never left open with nobody writing to it."""
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
        # Text is encoded with errors="replace": a state holding a lone surrogate (a driver's or an MQTT
        # device's text) goes out with "?" in its place rather than failing the whole connection.
        ws = self.ws
        loop = asyncio.get_running_loop()
        while not self.closing:
            if not self._pending:
                self._waiter = loop.create_future()
                await self._waiter
                self._waiter = None
                continue
            batch, self._pending = self._pending, []
            if len(batch) == 1 or transport is None:
                for text in batch:
                    await ws.send_frame(text.encode("utf-8", "replace"), WSMsgType.TEXT)
                continue
            if transport.is_closing():
                return
            if self.coalesce:
                # Arrays of at most COALESCE_MAX messages: small enough for the client to start parsing
                # while the next ones are on the way, large enough to save most per-frame costs.
                transport.write(b"".join([
                    frame(("[" + ",".join(batch[i:i + COALESCE_MAX]) + "]").encode("utf-8", "replace"))
                    for i in range(0, len(batch), COALESCE_MAX)
                ]))
            else:  # many frames, one write (see frames.py)
                transport.write(b"".join([frame(text.encode("utf-8", "replace")) for text in batch]))
            # Respect the socket's back-pressure; meanwhile new messages gather into the next batch.
            while (transport.get_write_buffer_size() > WRITE_BUFFER_HIGH and not transport.is_closing()
                   and not self.closing):
                await asyncio.sleep(0.001)

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


class HaFanout:
    """Bus listeners shared by all Home Assistant protocol connections."""

    __slots__ = ("_api", "_entities", "_entities_unlisten", "_events", "_last_change", "_last_change_json",
                 "_last_event", "_last_json", "_unlisten")

    def __init__(self, api: ApiServer) -> None:
        self._api = api
        self._events: dict[str, list[tuple[HaConnection, str]]] = {}
        self._unlisten: dict[str, Callable[[], None]] = {}
        self._entities: list[tuple[HaConnection, str, frozenset[str] | None]] = []
        self._entities_unlisten: Callable[[], None] | None = None
        self._last_event: Event[Any] | None = None
        self._last_json = ""
        self._last_change: Event[Any] | None = None
        self._last_change_json = ""

    # -- subscribe_events ---------------------------------------------------------------
    def add_events(self, event_type: str, conn: HaConnection, msg_id: int) -> Callable[[], None]:
        entry = (conn, '{"id":' + str(msg_id) + ',"type":"event","event":')
        subs = self._events.get(event_type, [])
        self._events[event_type] = [*subs, entry]  # copy on write: the listener iterates without copying
        if event_type not in self._unlisten:
            self._unlisten[event_type] = self._api.hub.bus.listen(event_type, self._make_listener(event_type))

        def remove() -> None:
            remaining = [item for item in self._events.get(event_type, ()) if item is not entry]
            if remaining:
                self._events[event_type] = remaining
            else:
                self._events.pop(event_type, None)
                unlisten = self._unlisten.pop(event_type, None)
                if unlisten is not None:
                    unlisten()

        return remove

    def _event_json(self, event: Event[Any]) -> str:
        if event is not self._last_event:
            self._last_json = ha_format.event_json(event, self._api.state_json)
            self._last_event = event
        return self._last_json

    def _make_listener(self, event_type: str) -> Callable[[Event[Any]], None]:
        events = self._events

        def on_event(event: Event[Any]) -> None:
            subs = events.get(event_type)
            if not subs:
                return
            text = self._event_json(event)
            data = event.data
            entity_id = data.get("entity_id") if isinstance(data, dict) else None
            visible = self._api.event_visibility.get(event.event_type)
            for conn, prefix in subs:
                principal = conn.principal
                if principal.unrestricted:
                    pass
                elif visible is not None:  # a registry event: the registry module knows who may hear it
                    if not visible(self._api.hub, principal, data):
                        continue
                elif not isinstance(entity_id, str) or not principal.can_see(entity_id):
                    continue  # scoped tokens see only events about entities in their scope
                conn.send(prefix + text + "}")

        return on_event

    # -- subscribe_entities -------------------------------------------------------------
    def add_entities(self, conn: HaConnection, msg_id: int, entity_ids: frozenset[str] | None) -> Callable[[], None]:
        entry = (conn, '{"id":' + str(msg_id) + ',"type":"event","event":', entity_ids)
        self._entities = [*self._entities, entry]
        if self._entities_unlisten is None:
            self._entities_unlisten = self._api.hub.bus.listen(EVENT_STATE_CHANGED, self._on_entity_change)

        def remove() -> None:
            self._entities = [item for item in self._entities if item is not entry]
            if not self._entities and self._entities_unlisten is not None:
                self._entities_unlisten()
                self._entities_unlisten = None

        return remove

    def _on_entity_change(self, event: Event[Any]) -> None:
        entity_id = event.data["entity_id"]
        text: str | None = None
        for conn, prefix, wanted in self._entities:
            if wanted is not None and entity_id not in wanted:
                continue
            if not conn.principal.can_see(entity_id):
                continue
            if text is None:
                if event is not self._last_change:
                    self._last_change_json = ha_format.entities_change_json(event)
                    self._last_change = event
                text = self._last_change_json
            conn.send(prefix + text + "}")


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
    transport = request.transport if isinstance(request.transport, asyncio.Transport) else None
    conn.transport = transport
    writer = asyncio.get_running_loop().create_task(conn.write_loop(transport))
    try:
        await serve(ws, conn, FRAMING, writer, address)
    finally:
        conn.stop()
        api.ha_connections.discard(conn)
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
