"""Household scene labels over REST, the Home Assistant WebSocket and the msgpack stream.

The label store is the component named ``recognition_labels`` (``qilu_hub.recognition.labels.LabelStore``),
found duck-typed (:class:`LabelSource`) so that the API imports nothing of the recognizer until a
label command arrives. Every protocol goes through :func:`labels_command`, so validation, scopes and
errors are the same everywhere.

Scopes: labels say when the household sleeps or is away, so reading them needs a token that may see
``sensor.household_scene`` (an area- or entity-limited token may not, unless that entity is listed);
changing them needs such a token that is not read-only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aiohttp import web

from ..capabilities import CommandError
from . import ha_format, stream, websocket_ha
from .auth import Principal
from .input_checks import BadInput, log_refused
from .keys import API_KEY, PRINCIPAL_KEY

if TYPE_CHECKING:
    from .app import ApiServer

SCENE_ENTITY = "sensor.household_scene"
COMPONENT = "recognition_labels"
RECOGNIZER = "scene_recognition"
DEFAULT_MIN_MINUTES = 0  # folding costs class accuracy: short activities (a drink) vanish
WS_PREFIX = "qilu/recognition/labels/"
STREAM_PREFIX = "labels/"
ACTIONS = ("list", "add", "update", "stop", "delete")
DEFAULT_LIMIT = 200
_STATUS = {"invalid_format": 400, "unauthorized": 403, "not_found": 404, "conflict": 409, "full": 409,
           "unavailable": 503}


class LabelApiError(Exception):
    """A label request refused; ``code`` picks the HTTP status and the WebSocket error code."""

    def __init__(self, code: str, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.field, self.extra = code, message, field, extra

    @property
    def status(self) -> int:
        return _STATUS.get(self.code, 400)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        out.update(self.extra)
        return out


@runtime_checkable
class LabelSource(Protocol):
    """What the ``recognition_labels`` component offers the API."""

    def scenes(self) -> list[str]: ...

    def labels(self, limit: int | None = None, since: float | None = None) -> list[Any]: ...

    def open_label(self) -> Any: ...

    def add(self, scene: Any, start: Any = None, end: Any = None, note: Any = "", created_by: str = "") -> Any: ...

    def update(self, label_id: Any, changes: Mapping[str, Any]) -> Any: ...

    def stop(self, end: Any = None) -> Any: ...

    def delete(self, label_id: Any) -> Any: ...


@runtime_checkable
class ReviewSource(Protocol):
    """What the ``scene_recognition`` component offers for label suggestions (a day review)."""

    async def async_review(self, start: float, end: float, min_seconds: float = 0.0) -> dict[str, Any]: ...


def _store(api: ApiServer) -> LabelSource:
    component = api.hub.components.get(COMPONENT)
    if not isinstance(component, LabelSource):
        raise LabelApiError("not_found", "household labels are not enabled on this hub")
    return component


def _int(value: Any, field: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise LabelApiError("invalid_format", f"{field} must be an integer", field) from None
    if not low <= number <= high:
        raise LabelApiError("invalid_format", f"{field} must be between {low} and {high}", field)
    return number


def labels_command(api: ApiServer, principal: Principal, action: str, msg: Mapping[str, Any]) -> Any:
    """Run one label action for ``principal``; raises :class:`LabelApiError`."""
    if not principal.can_see(SCENE_ENTITY):
        raise LabelApiError("unauthorized", "this token may not see the household's scene labels")
    store = _store(api)
    if action == "list":
        limit = _int(msg.get("limit", DEFAULT_LIMIT), "limit", 1, 100_000)
        since = msg.get("since")
        if since is not None and (isinstance(since, bool) or not isinstance(since, int | float)):
            raise LabelApiError("invalid_format", "since must be epoch seconds", "since")
        items = store.labels(limit, since)
        current = store.open_label()
        return {"labels": [lb.to_dict() for lb in items], "open": current.to_dict() if current else None,
                "scenes": store.scenes(), "can_edit": not principal.scopes.read_only}
    if action not in ACTIONS:
        raise LabelApiError("invalid_format", f"unknown action {action!r}")
    if principal.scopes.read_only:
        raise LabelApiError("unauthorized", "a read-only token may not change labels")
    from qilu_hub.recognition.labels import LabelError
    from qilu_hub.storage import StorageError

    unknown = set(msg) - {"scene", "start", "end", "note", "id", "type"}  # id, type: the WebSocket envelope
    if action == "add" and unknown:
        raise LabelApiError("invalid_format", f"unknown field(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])
    try:
        if action == "add":
            return store.add(msg.get("scene"), msg.get("start"), msg.get("end"), msg.get("note", ""),
                             principal.token.name).to_dict()
        if action == "update":  # id and type are the WebSocket envelope, label_id names the label
            changes = {k: v for k, v in msg.items() if k not in ("label_id", "id", "type")}
            return store.update(msg.get("label_id"), changes).to_dict()
        if action == "stop":
            return store.stop(msg.get("end")).to_dict()
        return store.delete(msg.get("label_id")).to_dict()
    except LabelError as err:
        extra = {"conflicts": list(err.conflicts)} if err.conflicts else {}
        raise LabelApiError(err.code, err.message, err.field, **extra) from None
    except StorageError as err:  # the disk refused: nothing changed, say so
        raise LabelApiError("unavailable", str(err)) from None


async def suggest_command(api: ApiServer, principal: Principal, msg: Mapping[str, Any]) -> dict[str, Any]:
    """Label suggestions for a finished stretch: the day review's segments, each marked ``labelled`` when a
    household label already overlaps it. Reads history as labels do, so the same scope applies."""
    if not principal.can_see(SCENE_ENTITY):
        raise LabelApiError("unauthorized", "this token may not see the household's scene labels")
    reviewer = api.hub.components.get(RECOGNIZER)
    if not isinstance(reviewer, ReviewSource):
        raise LabelApiError("not_found", "scene recognition is not enabled on this hub")
    from qilu_hub.recognition.component import ReviewError
    from qilu_hub.recognition.labels import LabelError, parse_time

    unknown = set(msg) - {"start", "end", "min_minutes", "id", "type"}
    if unknown:
        raise LabelApiError("invalid_format", f"unknown field(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])
    for field in ("start", "end"):
        if msg.get(field) is None:
            raise LabelApiError("invalid_format", f"{field} is required", field)
    try:
        start, end = parse_time(msg["start"], "start"), parse_time(msg["end"], "end")
    except LabelError as err:
        raise LabelApiError(err.code, err.message, err.field) from None
    minutes = _int(msg.get("min_minutes", DEFAULT_MIN_MINUTES), "min_minutes", 0, 240)
    try:
        result = await reviewer.async_review(start, end, minutes * 60.0)
    except ReviewError as err:
        raise LabelApiError(err.code, err.message, err.field) from None
    store = api.hub.components.get(COMPONENT)
    labels = store.labels(None, start) if isinstance(store, LabelSource) else []
    for seg in result["segments"]:
        seg["labelled"] = any(lb.start < seg["end"] and seg["start"] < lb.effective_end(seg["end"]) for lb in labels)
    return result


# -- REST -----------------------------------------------------------------------------------
def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=ha_format.encode(ha_format.dumps(body)), status=status, content_type="application/json",
                        charset="utf-8")


async def _rest(request: web.Request, action: str, msg: Mapping[str, Any], status: int = 200) -> web.Response:
    principal: Principal = request[PRINCIPAL_KEY]
    try:
        return _reply(labels_command(request.app[API_KEY], principal, action, msg), status)
    except LabelApiError as err:
        return _reply(err.to_dict(), err.status)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = ha_format.json_loads(raw) if raw.strip() else {}
    except BadInput as err:
        log_refused("REST", request.app[API_KEY].client_address(request), str(err))
        raise LabelApiError("invalid_format", f"body must be JSON: {err}") from None
    except ValueError:
        raise LabelApiError("invalid_format", "body must be JSON") from None
    if not isinstance(data, dict):
        raise LabelApiError("invalid_format", "body must be a JSON object")
    return data


async def list_labels(request: web.Request) -> web.Response:
    query: dict[str, Any] = dict(request.query)
    if "since" in query:
        try:
            query["since"] = float(query["since"])
        except ValueError:
            return _reply(LabelApiError("invalid_format", "since must be epoch seconds", "since").to_dict(), 400)
    return await _rest(request, "list", query)


async def _rest_with_body(request: web.Request, action: str, status: int = 200, **path: str) -> web.Response:
    """An action whose fields come in a JSON body (plus ``path`` fields from the URL, which the body may not set)."""
    try:
        body = await _body(request)
    except LabelApiError as err:
        return _reply(err.to_dict(), err.status)
    clash = sorted(set(body) & set(path))
    if clash:
        return _reply(LabelApiError("invalid_format", f"unknown field(s): {', '.join(clash)}", clash[0]).to_dict(), 400)
    return await _rest(request, action, {**body, **path}, status)


async def add_label(request: web.Request) -> web.Response:
    return await _rest_with_body(request, "add", 201)


async def stop_label(request: web.Request) -> web.Response:
    return await _rest_with_body(request, "stop")


async def update_label(request: web.Request) -> web.Response:
    return await _rest_with_body(request, "update", label_id=request.match_info["label_id"])


async def delete_label(request: web.Request) -> web.Response:
    return await _rest(request, "delete", {"label_id": request.match_info["label_id"]})


# -- WebSockets -----------------------------------------------------------------------------
def _ws_answer(conn: websocket_ha.HaConnection, msg_id: int, result: Any = None,
               error: LabelApiError | None = None) -> None:
    if error is not None:
        conn.send(ha_format.dumps({"id": msg_id, "type": "result", "success": False, "error": error.to_dict()}))
    else:
        conn.send(ha_format.dumps({"id": msg_id, "type": "result", "success": True, "result": result}))


def _stream_error(err: LabelApiError) -> CommandError:
    return CommandError(err.code, f"{err.field}: {err.message}" if err.field else err.message)


def _ws_handler(action: str) -> Any:
    def handle(conn: websocket_ha.HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
        try:
            result = labels_command(conn.api, conn.principal, action, msg)
        except LabelApiError as err:
            _ws_answer(conn, msg_id, error=err)
            return
        _ws_answer(conn, msg_id, result)

    return handle


def _stream_handler(action: str) -> Any:
    def handle(conn: stream.StreamConnection, msg_id: Any, msg: dict[str, Any]) -> Any:
        try:
            return labels_command(conn.api, conn.principal, action, msg)
        except LabelApiError as err:
            raise _stream_error(err) from None

    return handle


async def suggest_labels(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL_KEY]
    query: dict[str, Any] = dict(request.query)
    for field in ("start", "end"):  # epoch seconds arrive as text; ISO times stay strings
        with contextlib.suppress(KeyError, ValueError):
            query[field] = float(query[field])
    try:
        return _reply(await suggest_command(request.app[API_KEY], principal, query))
    except LabelApiError as err:
        return _reply(err.to_dict(), err.status)


async def _ws_suggest(conn: websocket_ha.HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    # A coroutine: the connection awaits it as a call in flight, so other messages are served meanwhile.
    try:
        result = await suggest_command(conn.api, conn.principal, msg)
    except LabelApiError as err:
        _ws_answer(conn, msg_id, error=err)
        return
    _ws_answer(conn, msg_id, result)


async def _stream_suggest(conn: stream.StreamConnection, msg_id: Any, msg: dict[str, Any]) -> dict[str, Any]:
    try:
        return await suggest_command(conn.api, conn.principal, msg)
    except LabelApiError as err:
        raise _stream_error(err) from None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/recognition/labels", list_labels)
    app.router.add_get("/api/recognition/labels/suggestions", suggest_labels)
    app.router.add_post("/api/recognition/labels", add_label)
    app.router.add_post("/api/recognition/labels/stop", stop_label)
    app.router.add_patch("/api/recognition/labels/{label_id}", update_label)
    app.router.add_delete("/api/recognition/labels/{label_id}", delete_label)


def add_ws_commands(commands: dict[str, websocket_ha.HaHandler]) -> None:
    """The label commands on the Home Assistant WebSocket (``qilu/labels/...``), into one server's registry."""
    for action in ACTIONS:
        commands[WS_PREFIX + action] = _ws_handler(action)
    commands[WS_PREFIX + "suggest"] = _ws_suggest


def add_stream_commands(commands: dict[str, stream.StreamHandler]) -> None:
    """The label commands on the msgpack stream (``labels/...``), into one server's registry."""
    for action in ACTIONS:
        commands[STREAM_PREFIX + action] = _stream_handler(action)
    commands[STREAM_PREFIX + "suggest"] = _stream_suggest


# -- OpenAPI --------------------------------------------------------------------------------
_TIME = {"oneOf": [{"type": "number", "description": "epoch seconds"},
                   {"type": "string", "format": "date-time", "description": "ISO 8601 with a UTC offset"}]}
LABEL_SCHEMA = {
    "type": "object",
    "required": ["id", "scene", "start", "end", "note", "created_by", "created"],
    "properties": {
        "id": {"type": "string"},
        "scene": {"type": "string", "example": "cooking"},
        "start": {"type": "number", "description": "epoch seconds"},
        "end": {"type": ["number", "null"], "description": "epoch seconds; null while the label is open"},
        "note": {"type": "string"},
        "created_by": {"type": "string", "description": "name of the token that added it"},
        "created": {"type": "number"},
    },
}
LABEL_ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"enum": ["invalid_format", "unauthorized", "not_found", "conflict", "full",
                                     "unavailable"]},
                   "message": {"type": "string"},
                   "field": {"type": "string", "description": "the request field at fault"},
                   "conflicts": {"type": "array", "items": {"type": "string"},
                                 "description": "ids of the labels a new one overlaps"}},
}


def openapi_paths(common: dict[str, Any]) -> dict[str, Any]:
    """The label endpoints for ``/api/openapi.json``; ``common`` holds the shared 401/403/429 answers."""
    label = {"$ref": "#/components/schemas/Label"}

    def answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    def error(description: str) -> dict[str, Any]:
        return answer({"$ref": "#/components/schemas/LabelError"}, description)

    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": schema}}}

    scope = " Needs a token that may see sensor.household_scene and is not read-only."
    # Every label route answers 404 (code not_found) on a hub without household labels; the dashboard hides
    # its label panel on it.
    disabled = "Household labels are not enabled on this hub"
    label_id = {"name": "label_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/api/recognition/labels": {
            "get": {
                "summary": "Household scene labels, newest first, the open one, and the scenes that may be labelled",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 200}},
                    {"name": "since", "in": "query", "schema": {"type": "number"},
                     "description": "only labels ending at or after this epoch time"}],
                "responses": {"200": answer({"type": "object", "required": ["labels", "open", "scenes", "can_edit"],
                                             "properties": {"labels": {"type": "array", "items": label},
                                                            "open": {"oneOf": [label, {"type": "null"}]},
                                                            "scenes": {"type": "array",
                                                                       "items": {"type": "string"}},
                                                            "can_edit": {"type": "boolean"}}}, "OK"),
                              "400": error("Bad query"), "404": error(disabled), **common}},
            "post": {
                "summary": "Add a label: start defaults to now; leave end out for an open label (until stopped). "
                           "Starting an open label ends the open one." + scope,
                "requestBody": body({"type": "object", "required": ["scene"], "additionalProperties": False,
                                     "properties": {"scene": {"type": "string"}, "start": _TIME, "end": _TIME,
                                                    "note": {"type": "string", "maxLength": 200}}}),
                "responses": {"201": answer(label, "The new label"), "400": error("Bad field (named in `field`)"),
                              "404": error(disabled),
                              "409": error("Overlaps other labels (`conflicts`) or the store is full"),
                              "503": error("Not saved"), **common}},
        },
        "/api/recognition/labels/suggestions": {"get": {
            "summary": "Label suggestions for a finished stretch (at most 7 days): the day review's segments. With a "
                       "day-review model (recognition.review_model) each minute is judged with what happened "
                       "after it too (`lookahead`: true); else the live model is run over the history. Needs a "
                       "token that may see sensor.household_scene.",
            "parameters": [
                {"name": "start", "in": "query", "required": True, "schema": _TIME},
                {"name": "end", "in": "query", "required": True, "schema": _TIME},
                {"name": "min_minutes", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 240,
                                                                  "default": DEFAULT_MIN_MINUTES},
                 "description": "segments shorter than this are folded into a neighbour"}],
            "responses": {"200": answer({"type": "object",
                                         "required": ["start", "end", "model", "lookahead", "events", "segments"],
                                         "properties": {
                                             "start": {"type": "number"}, "end": {"type": "number"},
                                             "model": {"type": "string"}, "lookahead": {"type": "boolean"},
                                             "events": {"type": "integer",
                                                        "description": "recorded changes the review read"},
                                             "segments": {"type": "array", "items": {
                                                 "type": "object",
                                                 "required": ["scene", "start", "end", "confidence", "labelled"],
                                                 "properties": {
                                                     "scene": {"type": "string"}, "start": {"type": "number"},
                                                     "end": {"type": "number"}, "confidence": {"type": "number"},
                                                     "labelled": {"type": "boolean",
                                                                  "description": "a household label overlaps it"}}}}}},
                                        "Segments covering the stretch in time order"),
                          "400": error("Bad query"), "404": error("Scene recognition is not enabled"),
                          "503": error("No usable model, or no recorder"), **common}}},
        "/api/recognition/labels/stop": {"post": {
            "summary": "End the open label (at `end`, default now)." + scope,
            "requestBody": body({"type": "object", "properties": {"end": _TIME}}),
            "responses": {"200": answer(label, "The ended label"), "400": error("Bad end"),
                          "404": error("No label is open; or " + disabled.lower()), **common}}},
        "/api/recognition/labels/{label_id}": {
            "patch": {
                "summary": "Correct a label: any of scene, start, end (null opens it again), note. The result is "
                           "checked like a new label, against every other label." + scope,
                "parameters": [label_id],
                "requestBody": body({"type": "object", "minProperties": 1, "additionalProperties": False,
                                     "properties": {"scene": {"type": "string"}, "start": _TIME,
                                                    "end": {"oneOf": [_TIME, {"type": "null"}]},
                                                    "note": {"type": "string", "maxLength": 200}}}),
                "responses": {"200": answer(label, "The corrected label"),
                              "400": error("Bad field (named in `field`)"),
                              "404": error("No such label; or " + disabled.lower()),
                              "409": error("Would overlap other labels (`conflicts`)"),
                              "503": error("Not saved"), **common}},
            "delete": {
                "summary": "Delete a label." + scope,
                "parameters": [label_id],
                "responses": {"200": answer(label, "The deleted label"),
                              "404": error("No such label; or " + disabled.lower()),
                              **common}},
        },
    }
