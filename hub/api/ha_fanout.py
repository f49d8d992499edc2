"""Home Assistant API fan-out: bus listeners shared by every connection, and the channels they write through.

Subscribers are grouped by scope (:class:`ScopeGroup`: whether an event is visible is decided once per scope),
and within a scope by what they receive byte for byte (:class:`Channel`: the same subscription id, the same
framing, the same entity filter). Each event is serialised once per wire shape; a channel appends that body
to its window once, and at the flusher's next pass frames the window once and writes the same bytes to every
member that is *in step* with it. Per change a connection in step costs nothing; per window it costs one
``transport.write`` of shared bytes.

A connection is in step with at most one channel (the one it *rides*) and only while it owes nothing else:
no command answer, no event of another subscription, no full socket, no coalesced catch-up. The moment it
does, it leaves the channel's shared path (the window's messages so far are copied into its own queue first,
so its order is kept) and the channel delivers to it one message at a time, as to any connection with more
than one thing to say (:meth:`Channel.deliver`); a connection whose own queue has been written and whose
channel's window is empty rejoins it. Everything that bounds a connection (its bytes behind a full socket,
Home Assistant's 4,096 messages, ``subscribe_entities`` coalescing) therefore applies to it unchanged on its
own queue, and a slow client never holds a shared write back: it simply is not in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..bus import MATCH_ALL, Event
from ..states import EVENT_STATE_CHANGED
from . import ha_format
from .auth import Principal
from .frames import ha_batch
from .limits import MAX_PENDING_MESSAGES

if TYPE_CHECKING:
    from .app import ApiServer
    from .websocket_ha import HaConnection

# Messages one window may gather before its members leave it: past this a burst is each connection's own to
# bound (cut off past Home Assistant's 4,096, or coalesced for subscribe_entities), as it was before sharing.
MAX_WINDOW_MESSAGES = MAX_PENDING_MESSAGES // 2


def scope_key(principal: Principal) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """What decides which entities a token sees: connections with the same key see the same events."""
    scopes = principal.scopes
    return (scopes.areas, scopes.entities)


def event_prefix(msg_id: int) -> bytes:
    return b'{"id":' + str(msg_id).encode() + b',"type":"event","event":'


class Member:
    """One subscription of one connection, in one channel."""

    __slots__ = ("channel", "conn", "prefix", "shared")

    def __init__(self, conn: HaConnection, channel: Channel) -> None:
        self.conn = conn
        self.channel = channel
        self.prefix = channel.prefix
        self.shared = False  # in step: receives the channel's window as shared bytes

    def deliver(self, entity_id: Any, body: bytes) -> None:
        """One message onto the connection's own queue (the member is not in step)."""
        self.conn.send_parts(self.prefix, body)


class EntitiesSubscription(Member):
    """One ``subscribe_entities`` subscription. While its connection lags it keeps only which entities
    changed, and once the socket drains sends their current states as one ``a`` (add/replace) message and the
    removed ones as one ``r`` message: the client ends with the same states, without the backlog."""

    __slots__ = ("held",)

    def __init__(self, conn: HaConnection, channel: Channel) -> None:
        super().__init__(conn, channel)
        self.held: dict[str, None] | None = None

    def deliver(self, entity_id: Any, body: bytes) -> None:
        conn = self.conn
        held = self.held
        if held is None and conn.lagging():
            held = self.held = {}
            conn.hold(self)
        if held is not None:
            held[entity_id] = None
            return
        conn.send_parts(self.prefix, body)

    def catch_up(self) -> None:
        held, self.held = self.held, None
        if not held:
            return
        states = self.conn.api.hub.states
        added: dict[str, Any] = {}
        removed: list[str] = []
        for entity_id in held:
            state = states.get(entity_id)
            if state is None:
                removed.append(entity_id)
            else:
                added[entity_id] = ha_format.compressed_state(state)
        if added:
            self.conn.send_latest(self.prefix, ha_format.encode(ha_format.dumps({"a": added})) + b"}")
        if removed:
            self.conn.send_latest(self.prefix, ha_format.encode(ha_format.dumps({"r": removed})) + b"}")


class Channel:
    """Subscriptions that receive the same bytes: one scope, one subscription id, one framing, one filter.

    ``members`` are all of them; ``private`` those not in step, delivered to one by one (copy on write: a
    delivery may move a member while the list is being walked)."""

    __slots__ = ("api", "coalesce", "hot", "members", "prefix", "private", "riders", "scheduled", "wanted",
                 "window", "window_bytes")

    def __init__(self, api: ApiServer, prefix: bytes, coalesce: bool, wanted: frozenset[str] | None,
                 hot: bool) -> None:
        self.api = api
        self.prefix = prefix
        self.coalesce = coalesce
        self.wanted = wanted  # subscribe_entities' entity_ids (None: all)
        self.hot = hot  # carries every state change: the one worth riding
        self.members: list[Member] = []
        self.private: list[Member] = []
        self.riders = 0  # members in step
        self.window: list[bytes] = []  # bodies since the last flush, for the members in step
        self.window_bytes = 0  # their length together (what each member in step is owed, less the prefixes)
        self.scheduled = False

    def deliver(self, entity_id: Any, body: bytes) -> None:
        """One event for every member: appended once for those in step, queued for each of the others."""
        private = self.private  # as it stands: members that leave step below already hold this event
        if self.riders:
            window = self.window
            window.append(body)
            self.window_bytes += len(body)
            if not self.scheduled:
                self.scheduled = True
                self.api.flusher.mark_channel(self)
            elif len(window) > MAX_WINDOW_MESSAGES:
                self.scatter()
        for member in private:
            member.deliver(entity_id, body)

    def add(self, member: Member) -> None:
        self.members = [*self.members, member]
        self.private = [*self.private, member]  # in step once its connection's queue (the answer) is written

    def remove(self, member: Member) -> None:
        if member.shared:
            member.conn.leave_step()
        self.members = [m for m in self.members if m is not member]
        self.private = [m for m in self.private if m is not member]

    def unshare(self, member: Member) -> None:
        member.shared = False
        self.riders -= 1
        self.private = [*self.private, member]
        if not self.riders:
            self.window = []
            self.window_bytes = 0

    def share(self, member: Member) -> None:
        member.shared = True
        self.riders += 1
        self.private = [m for m in self.private if m is not member]

    def scatter(self) -> None:
        """A burst too long to share: every member takes the window into its own queue and its own limits."""
        for member in self.members:
            if member.shared:
                member.conn.leave_step()

    def flush(self) -> None:
        """Frame the window once and write it to every member in step (the flusher calls this before it
        flushes connections' own queues, so that a connection rejoins only after its window went out)."""
        self.scheduled = False
        window, self.window = self.window, []
        self.window_bytes = 0
        if not window or not self.riders:
            return
        self.api.ha_fanout.framings += 1
        prefix = self.prefix
        data = ha_batch([(prefix, body) for body in window], self.coalesce)
        for member in self.members:
            if member.shared:
                member.conn.write_shared(data)


class ScopeGroup:
    """Channels whose tokens see the same entities: the visibility of an event is decided once for all."""

    __slots__ = ("channels", "key", "principal", "unrestricted")

    def __init__(self, principal: Principal) -> None:
        self.key = scope_key(principal)
        self.principal = principal  # any member's: its verdicts are those of every member
        self.unrestricted = principal.unrestricted
        self.channels: list[Channel] = []

    def sees(self, entity_id: Any) -> bool:
        return self.unrestricted or (isinstance(entity_id, str) and self.principal.can_see(entity_id))


def _join(api: ApiServer, groups: list[ScopeGroup], conn: HaConnection, prefix: bytes,
          wanted: frozenset[str] | None, hot: bool, kind: type[Member]) -> tuple[list[ScopeGroup], Member]:
    """``groups`` with a new member for ``conn`` (copy on write: listeners iterate without copying)."""
    key = scope_key(conn.principal)
    group = next((g for g in groups if g.key == key), None)
    if group is None:
        group = ScopeGroup(conn.principal)
        groups = [*groups, group]
    coalesce = conn.coalesce
    channel = next((c for c in group.channels
                    if c.prefix == prefix and c.coalesce == coalesce and c.wanted == wanted), None)
    if channel is None:
        channel = Channel(api, prefix, coalesce, wanted, hot)
        group.channels = [*group.channels, channel]
    member = kind(conn, channel)
    channel.add(member)
    conn.ride(member)
    return groups, member


def _leave(groups: list[ScopeGroup], member: Member) -> list[ScopeGroup]:
    channel = member.channel
    channel.remove(member)
    member.conn.unride(member)
    if channel.members:
        return groups
    out = []
    for group in groups:
        if any(c is channel for c in group.channels):
            group.channels = [c for c in group.channels if c is not channel]
            if not group.channels:
                continue
        out.append(group)
    return out


class HaFanout:
    """Bus listeners shared by all Home Assistant protocol connections.

    Each event is serialised and UTF-8 encoded once per wire shape (an ``event`` body, a ``subscribe_entities``
    change), with the envelope's closing brace; a client receives its subscription's ``{"id":N,"type":"event",
    "event":`` + that body, the same text as if built for it alone.
    """

    __slots__ = ("_api", "_entities", "_entities_unlisten", "_events", "_last_body", "_last_change",
                 "_last_change_body", "_last_event", "_unlisten", "encodes", "framings")

    def __init__(self, api: ApiServer) -> None:
        self._api = api
        self._events: dict[str, list[ScopeGroup]] = {}
        self._unlisten: dict[str, Callable[[], None]] = {}
        self._entities: list[ScopeGroup] = []
        self._entities_unlisten: Callable[[], None] | None = None
        self._last_event: Event[Any] | None = None
        self._last_body = b""
        self._last_change: Event[Any] | None = None
        self._last_change_body = b""
        self.encodes = 0  # bodies serialised (for tests and benchmarks: once per event and shape)
        self.framings = 0  # windows framed for the connections in step with a channel (once for all of them)

    # -- subscribe_events ---------------------------------------------------------------
    def add_events(self, event_type: str, conn: HaConnection, msg_id: int) -> Callable[[], None]:
        hot = event_type in (EVENT_STATE_CHANGED, MATCH_ALL)
        self._events[event_type], member = _join(self._api, self._events.get(event_type, []), conn,
                                                 event_prefix(msg_id), None, hot, Member)
        if event_type not in self._unlisten:
            self._unlisten[event_type] = self._api.hub.bus.listen(event_type, self._make_listener(event_type))

        def remove() -> None:
            remaining = _leave(self._events.get(event_type, []), member)
            if remaining:
                self._events[event_type] = remaining
            else:
                self._events.pop(event_type, None)
                unlisten = self._unlisten.pop(event_type, None)
                if unlisten is not None:
                    unlisten()

        return remove

    def _event_body(self, event: Event[Any]) -> bytes:
        if event is not self._last_event:
            self._last_body = ha_format.encode(ha_format.event_json(event, self._api.state_json)) + b"}"
            self._last_event = event
            self.encodes += 1
        return self._last_body

    def _make_listener(self, event_type: str) -> Callable[[Event[Any]], None]:
        events = self._events

        def on_event(event: Event[Any]) -> None:
            groups = events.get(event_type)
            if not groups:
                return
            body: bytes | None = None
            data = event.data
            entity_id = data.get("entity_id") if isinstance(data, dict) else None
            visible = self._api.event_visibility.get(event.event_type)
            for group in groups:
                if group.unrestricted:
                    pass
                elif visible is not None:  # a registry event: the registry module knows who may hear it
                    if not visible(self._api.hub, group.principal, data):
                        continue
                elif not group.sees(entity_id):
                    continue  # scoped tokens see only events about entities in their scope
                if body is None:
                    body = self._event_body(event)
                for channel in group.channels:
                    channel.deliver(entity_id, body)

        return on_event

    # -- subscribe_entities -------------------------------------------------------------
    def add_entities(self, conn: HaConnection, msg_id: int, entity_ids: frozenset[str] | None) -> Callable[[], None]:
        self._entities, member = _join(self._api, self._entities, conn, event_prefix(msg_id), entity_ids, True,
                                       EntitiesSubscription)
        if self._entities_unlisten is None:
            self._entities_unlisten = self._api.hub.bus.listen(EVENT_STATE_CHANGED, self._on_entity_change)

        def remove() -> None:
            assert isinstance(member, EntitiesSubscription)
            member.held = None  # unsubscribed while lagging: no catch-up under its id
            self._entities = _leave(self._entities, member)
            if not self._entities and self._entities_unlisten is not None:
                self._entities_unlisten()
                self._entities_unlisten = None

        return remove

    def _on_entity_change(self, event: Event[Any]) -> None:
        entity_id = event.data["entity_id"]
        body: bytes | None = None
        for group in self._entities:
            if not group.sees(entity_id):
                continue
            for channel in group.channels:
                if channel.wanted is not None and entity_id not in channel.wanted:
                    continue
                if body is None:
                    if event is not self._last_change:
                        self._last_change_body = ha_format.encode(ha_format.entities_change_json(event)) + b"}"
                        self._last_change = event
                        self.encodes += 1
                    body = self._last_change_body
                channel.deliver(entity_id, body)
