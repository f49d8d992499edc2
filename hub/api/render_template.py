"""``render_template`` on the Home Assistant WebSocket: a template rendered now and again whenever what it read
changes, as Home Assistant does it.

The client sends ``{"type": "render_template", "template": "...", "variables": {...}}`` (also ``entity_ids``
to watch, ``report_errors``; ``timeout`` and ``strict`` are accepted, the sandbox's step budget standing in
for the timeout). The answer is a ``result`` (``null``), then an ``event`` ``{"result": ..., "listeners":
{"all", "domains", "entities", "time"}}``, and another event each time a state or registry change it depends
on gives a different result; ``unsubscribe_events`` with the command's id ends it. The template sees only
what the token may see (``hub/templates.py`` does the rendering, bounded, in jinja2's sandbox).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..bus import Event
from ..capabilities import CommandError
from ..registry import EVENT_AREA_REGISTRY_UPDATED, EVENT_DEVICE_REGISTRY_UPDATED, EVENT_ENTITY_REGISTRY_UPDATED
from ..states import EVENT_STATE_CHANGED
from . import ha_format

if TYPE_CHECKING:
    from ..templates import Compiled
    from .websocket_ha import HaConnection, HaHandler

MAX_TEMPLATES_PER_CONNECTION = 64
# Templates that read whole domains or every state re-render at most this often (as HA limits them), so one
# client's "all lights" template does not render on every state change of a busy house.
BROAD_RATE_LIMIT = 1.0
_REGISTRY_EVENTS = (EVENT_AREA_REGISTRY_UPDATED, EVENT_DEVICE_REGISTRY_UPDATED, EVENT_ENTITY_REGISTRY_UPDATED)


class TemplateSubscription:
    """One ``render_template`` subscription of one connection."""

    __slots__ = ("_handle", "_last_render", "_unlisten", "compiled", "conn", "extra_entities", "info", "last",
                 "msg_id", "report_errors", "stopped", "variables")

    def __init__(self, conn: HaConnection, msg_id: int, compiled: Compiled, variables: dict[str, Any],
                 extra_entities: list[str], report_errors: bool) -> None:
        self.conn = conn
        self.msg_id = msg_id
        self.compiled = compiled
        self.variables = variables
        self.extra_entities = extra_entities
        self.report_errors = report_errors
        from ..templates import RenderInfo  # jinja2 (~2 MiB) loads with the first template, not with the API

        self.info = RenderInfo()
        self.last: Any = _NOTHING
        self.stopped = False
        self._handle: asyncio.Handle | None = None
        self._last_render = 0.0
        self._unlisten: list[Callable[[], None]] = []

    def render(self) -> Any:
        from ..templates import HubView, render_hub

        view = HubView(self.conn.api.hub, self.conn.principal.can_see)
        try:
            return render_hub(self.compiled, view, self.variables)
        finally:
            self.info = view.info
            self.info.entities.update(self.extra_entities)
            self._last_render = time.monotonic()

    def start(self, result: Any) -> None:
        bus = self.conn.api.hub.bus
        self._unlisten.append(bus.listen(EVENT_STATE_CHANGED, self._on_state))
        for event_type in _REGISTRY_EVENTS:
            self._unlisten.append(bus.listen(event_type, self._on_registry))
        self._send(result)

    def stop(self) -> None:
        self.stopped = True
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _send(self, result: Any) -> None:
        self.last = result
        self.conn.send('{"id":' + str(self.msg_id) + ',"type":"event","event":' + ha_format.dumps(
            {"result": result, "listeners": self.info.listeners()}) + "}")

    def _on_state(self, event: Event[Any]) -> None:
        if self.info.wants(event.data["entity_id"]):
            self._schedule()

    def _on_registry(self, event: Event[Any]) -> None:
        if self.info.registries:
            self._schedule()

    def _schedule(self) -> None:
        if self._handle is not None or self.stopped:
            return  # one re-render for a burst of changes
        loop = asyncio.get_running_loop()
        delay = 0.0
        if self.info.all_states or self.info.domains:
            delay = max(0.0, self._last_render + BROAD_RATE_LIMIT - time.monotonic())
        self._handle = loop.call_later(delay, self._rerender) if delay else loop.call_soon(self._rerender)

    def _rerender(self) -> None:
        from ..templates import TemplateError

        self._handle = None
        if self.stopped:
            return
        try:
            result = self.render()
        except TemplateError as err:
            if self.report_errors:
                self.conn.send('{"id":' + str(self.msg_id) + ',"type":"event","event":' + ha_format.dumps(
                    {"error": str(err), "level": "ERROR"}) + "}")
            return
        if result != self.last:
            self._send(result)


_NOTHING: Any = object()


def _bool(msg: dict[str, Any], key: str) -> bool:
    value = msg.get(key, False)
    if not isinstance(value, bool):
        raise CommandError("invalid_format", f"{key} must be true or false")
    return value


def ws_render_template(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    from ..templates import TemplateError, compile_hub_template

    variables = msg.get("variables") or {}
    if not isinstance(variables, dict) or not all(isinstance(k, str) for k in variables):
        raise CommandError("invalid_format", "variables must be an object")
    extra = msg.get("entity_ids") or []
    if isinstance(extra, str):
        extra = [extra]
    if not isinstance(extra, list) or not all(isinstance(e, str) for e in extra):
        raise CommandError("invalid_format", "entity_ids must be a list of strings")
    timeout = msg.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        raise CommandError("invalid_format", "timeout must be a number")
    _bool(msg, "strict")
    report_errors = _bool(msg, "report_errors")
    if sum(isinstance(unsub, _Stopper) for unsub in conn.subs.values()) >= MAX_TEMPLATES_PER_CONNECTION:
        raise CommandError("not_allowed", f"at most {MAX_TEMPLATES_PER_CONNECTION} templates per connection")
    try:
        compiled = compile_hub_template(msg.get("template"), variables)
    except TemplateError as err:
        raise CommandError("template_error", str(err)) from None
    subscription = TemplateSubscription(conn, msg_id, compiled, variables, extra[:1000], report_errors)
    try:
        result = subscription.render()
    except TemplateError as err:
        raise CommandError("template_error", str(err)) from None
    conn.subs[msg_id] = _Stopper(subscription)
    conn.send(ha_format.dumps({"id": msg_id, "type": "result", "success": True, "result": None}))
    subscription.start(result)


class _Stopper:
    """What ``unsubscribe_events`` and the connection's end call; recognisable, to count templates."""

    __slots__ = ("subscription",)

    def __init__(self, subscription: TemplateSubscription) -> None:
        self.subscription = subscription

    def __call__(self) -> None:
        self.subscription.stop()


def add_ws_commands(commands: dict[str, HaHandler]) -> None:
    commands["render_template"] = ws_render_template
