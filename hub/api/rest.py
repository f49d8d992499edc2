"""Home Assistant's REST API (developers.home-assistant.io/docs/api/rest), read and service calls.

Every handler here runs behind the auth middleware (see ``app.py``), which puts the
caller's :class:`~qilu_hub.api.auth.Principal` in ``request[PRINCIPAL_KEY]``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..bus import Event
from ..capabilities import CommandError
from ..states import EVENT_STATE_CHANGED
from . import ha_format
from .input_checks import BadInput, log_refused
from .keys import api_of, principal_of
from .services import call_service

if TYPE_CHECKING:
    pass

_STATUS = {
    "not_found": 404, "not_supported": 400, "invalid_format": 400, "out_of_range": 400, "unauthorized": 403,
    "not_allowed": 403, "timeout": 504, "unavailable": 503, "driver_error": 502,
}
DAY = 86400.0


def _json(text: str, status: int = 200) -> web.Response:
    # Encoded here, not by aiohttp: a state holding text with no UTF-8 form must not turn the answer into a 500.
    return web.Response(body=ha_format.encode(text), status=status, content_type="application/json",
                        charset="utf-8")


def _message(message: str, status: int) -> web.Response:
    return _json(ha_format.dumps({"message": message}), status)




async def api_root(request: web.Request) -> web.Response:
    return _json('{"message":"API running."}')


async def health(request: web.Request) -> web.Response:
    return _json('{"status":"ok"}')


async def get_config(request: web.Request) -> web.Response:
    return _json(ha_format.dumps(api_of(request).config_dict()))


async def get_states(request: web.Request) -> web.Response:
    api, principal = api_of(request), principal_of(request)
    cache = api.state_json
    items = [cache.get(s) for s in api.hub.states.all() if principal.can_see(s.entity_id)]
    return _json("[" + ",".join(items) + "]")


async def get_state(request: web.Request) -> web.Response:
    api, principal = api_of(request), principal_of(request)
    entity_id = request.match_info["entity_id"]
    state = api.hub.states.get(entity_id)
    if state is None or not principal.can_see(entity_id):
        return _message("Entity not found.", 404)
    return _json(api.state_json.get(state))


async def post_service(request: web.Request) -> web.Response:
    """Call a service; the answer lists the states that changed while it ran (as Home Assistant's does)."""
    api, principal = api_of(request), principal_of(request)
    body = await request.read()
    try:
        data: Any = ha_format.json_loads(body) if body.strip() else {}
    except BadInput as err:
        log_refused("REST", api.client_address(request), str(err))
        return _message(f"Data should be valid JSON: {err}.", 400)
    except ValueError:
        return _message("Data should be valid JSON.", 400)
    if not isinstance(data, dict):
        return _message("Data should be a JSON object.", 400)
    changed: dict[str, Any] = {}

    def collect(event: Event[Any]) -> None:
        new = event.data["new_state"]
        if new is not None and principal.can_see(new.entity_id):
            changed[new.entity_id] = new

    unlisten = api.hub.bus.listen(EVENT_STATE_CHANGED, collect)
    try:
        await call_service(api.hub, principal, request.match_info["domain"], request.match_info["service"], data)
    except CommandError as err:
        return _message(err.message, _STATUS.get(err.code, 400))
    finally:
        unlisten()
    return _json("[" + ",".join(api.state_json.get(s) for s in changed.values()) + "]")


async def get_history(request: web.Request) -> web.Response:
    """``/api/history/period/{start}``: a list per entity of its states in the period, oldest first."""
    api, principal = api_of(request), principal_of(request)
    start_text = request.match_info.get("start")
    if start_text:
        start = ha_format.parse_time(start_text)
        if start is None:
            return _message("Invalid datetime", 400)
    else:
        start = time.time() - DAY
    end: float | None = start + DAY
    if "end_time" in request.query:
        end = ha_format.parse_time(request.query["end_time"])
        if end is None:
            return _message("Invalid end_time", 400)
    wanted: list[str] | None = None
    if request.query.get("filter_entity_id"):
        wanted = [e.strip() for e in request.query["filter_entity_id"].split(",") if e.strip()]
    recorder = api.hub.recorder
    if recorder is None:
        return _json("[]")
    rows = await recorder.async_history(start, end, wanted)
    minimal = "minimal_response" in request.query
    no_attributes = "no_attributes" in request.query
    per_entity: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        entity_id = row["entity_id"]
        if principal.can_see(entity_id):
            per_entity.setdefault(entity_id, []).append(row)

    def full(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "entity_id": row["entity_id"],
            "state": row["state"],
            "attributes": {} if no_attributes else row["attributes"],
            "last_changed": ha_format.iso(row["last_changed"]),
            "last_updated": ha_format.iso(row["last_updated"]),
        }

    out = []
    for entity_rows in per_entity.values():
        if minimal:  # Home Assistant's shape: first and last in full, the ones between as state + time
            last = len(entity_rows) - 1
            out.append([full(row) if i in (0, last) else
                        {"state": row["state"], "last_changed": ha_format.iso(row["last_changed"])}
                        for i, row in enumerate(entity_rows)])
        else:
            out.append([full(row) for row in entity_rows])
    return _json(ha_format.dumps(out))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/", api_root)
    app.router.add_get("/api/config", get_config)
    app.router.add_get("/api/states", get_states)
    app.router.add_get("/api/states/{entity_id}", get_state)
    app.router.add_post("/api/services/{domain}/{service}", post_service)
    app.router.add_get("/api/history/period", get_history)
    app.router.add_get("/api/history/period/{start}", get_history)
