"""The XR API: immersive scenes resolved for a client, the spatial pose registry, and the WebXR client's files.

REST: ``GET /api/xr/scenes`` (list), ``GET /api/xr/scenes/{id}`` (resolved, with states; ETag), ``GET
/api/xr/poses``, ``PUT``/``PATCH``/``DELETE /api/xr/poses/devices/{id}`` and ``/areas/{id}`` (persisted in the
registry, so the msgpack stream's ``poses`` and the OpenXR bridge see them). Live: ``qilu/xr/subscribe_scene`` on the
Home Assistant WebSocket (events) and ``xr/subscribe_scene`` on the msgpack stream (``scene`` messages): the
resolved scene right away and again whenever its file or a pose it depends on changes. ``/xr/`` serves the WebXR
client (``xr_web/``). See docs/xr.md."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..bus import Event
from ..capabilities import CommandError
from ..const import EVENT_XR_SCENES_UPDATED
from ..model import Pose, slugify
from ..registry import EVENT_AREA_REGISTRY_UPDATED, EVENT_DEVICE_REGISTRY_UPDATED
from . import ha_format, stream, websocket_ha
from .auth import Principal
from .keys import api_of, principal_of
from .stream_poses import AREA, DEVICE, area_visible, current_poses, device_visible, pose_entry, poses_message

if TYPE_CHECKING:
    from ..scenes.watch import ImmersiveScenes
    from .app import ApiServer

XR_WEB = Path(__file__).with_name("xr_web")
MAX_SCENE_SUBSCRIPTIONS = 16  # per connection
POSE_KEYS = ("x", "y", "z", "qx", "qy", "qz", "qw")
POSITION_LIMIT = 1000.0  # metres from the home origin: a home, not a city; catches unit mistakes (mm)


class XrApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def immersive_scenes(api: ApiServer) -> ImmersiveScenes | None:
    manager = api.hub.components.get("scenes")
    return getattr(manager, "immersive", None)


def _poses_lookup(api: ApiServer) -> Callable[[str, str], dict[str, Any] | None]:
    hub = api.hub

    def lookup(kind: str, ref: str) -> dict[str, Any] | None:
        item = hub.devices.get(ref) if kind == "device" else hub.areas.get(ref)
        pose = getattr(item, "pose", None)
        return pose.to_dict() if pose is not None else None

    return lookup


def resolved(api: ApiServer, principal: Principal, scene_id: str, with_states: bool = True) -> dict[str, Any]:
    store = immersive_scenes(api)
    found = store.get(scene_id) if store is not None else None
    if found is None:
        raise XrApiError(404, "not_found", f"no immersive scene {scene_id!r}")
    scene, path = found
    # imported here: a hub without immersive scenes never loads the scene package (its YAML loader, ~2.3 MiB)
    from ..scenes.resolve import resolve_scene

    body = resolve_scene(scene, path.name, _poses_lookup(api), principal.can_see, principal.can_control)
    if not body["panels"]:
        # Nothing this token may see: the same answer as for a scene that does not exist (as the list leaves it
        # out, and as entities out of scope answer), so a scoped token cannot probe which scene ids exist.
        raise XrApiError(404, "not_found", f"no immersive scene {scene_id!r}")
    entities = api.hub.entities
    devices: dict[str, str] = {}
    for panel in body["panels"]:
        for control in panel["controls"]:
            entity = entities.get(control["entity_id"])
            control["device_id"] = entity.device_id if entity is not None else None
            device = api.hub.devices.get(entity.device_id) if entity is not None and entity.device_id else None
            if device is not None:
                devices[device.id] = device.name_by_user or device.name
    body["devices"] = devices  # names of the devices behind the controls, for "place this device here"
    if with_states:
        states = api.hub.states
        body["states"] = {e: stream.state_entry(s) for e in body["entities"] if (s := states.get(e)) is not None}
    return body


def scene_list(api: ApiServer, principal: Principal) -> list[dict[str, Any]]:
    store = immersive_scenes(api)
    out = []
    for name in sorted(store.scenes if store is not None else ()):
        try:
            body = resolved(api, principal, name, with_states=False)
        except XrApiError:  # none of its panels is visible to this token
            continue
        out.append({"id": name, "description": body["description"], "panels": len(body["panels"]),
                    "version": body["version"], "source": body["source"]})
    return out


# -- poses ------------------------------------------------------------------------------
def parse_pose(body: Any, partial: Pose | None = None) -> Pose:
    """A pose from JSON: x, y, z in metres (home frame), qx..qw a rotation (normalised here). With `partial`
    (PATCH), missing keys keep that pose's values."""
    if not isinstance(body, dict):
        raise XrApiError(400, "invalid_format", "the body must be a JSON object with x, y, z (and qx, qy, qz, qw)")
    unknown = set(body) - set(POSE_KEYS) - {"frame"}
    if unknown:
        raise XrApiError(400, "invalid_format", f"unknown pose keys: {', '.join(sorted(unknown))}")
    if body.get("frame", "home") != "home":
        raise XrApiError(400, "invalid_format", "poses are in the home frame (frame: home)")
    base = partial.to_dict() if partial is not None else {"qx": 0.0, "qy": 0.0, "qz": 0.0, "qw": 1.0}
    values: dict[str, float] = {}
    for key in POSE_KEYS:
        value = body.get(key, base.get(key))
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise XrApiError(400, "invalid_format", f"{key} must be a finite number")
        values[key] = float(value)
    if any(abs(values[k]) > POSITION_LIMIT for k in ("x", "y", "z")):
        raise XrApiError(400, "out_of_range", f"positions are metres within {POSITION_LIMIT:g} of the home origin")
    norm = math.sqrt(sum(values[k] ** 2 for k in ("qx", "qy", "qz", "qw")))
    if norm < 1e-6:
        raise XrApiError(400, "invalid_format", "qx, qy, qz, qw must be a rotation (not all zero)")
    v = values
    return Pose(v["x"], v["y"], v["z"], v["qx"] / norm, v["qy"] / norm, v["qz"] / norm, v["qw"] / norm)


def _may_place(api: ApiServer, principal: Principal, kind: str, key: str) -> bool:
    scopes = principal.scopes
    if scopes.read_only:
        return False
    if scopes.may_administer:
        return True
    if kind == DEVICE:
        return any(principal.can_control(e.entity_id) for e in api.hub.entities.for_device(key))
    return principal.unrestricted or (scopes.areas is not None and key in scopes.areas)


def _configured_area_pose(api: ApiServer, area_id: str) -> bool:
    return any(slugify(str(a.get("name", ""))) == area_id and a.get("pose")
               for a in api.hub.config.get("areas") or [])


def set_pose(api: ApiServer, principal: Principal, kind: str, key: str, body: Any, method: str) -> dict[str, Any]:
    hub = api.hub
    item = hub.devices.get(key) if kind == DEVICE else hub.areas.get(key)
    visible = item is not None and (device_visible(hub, principal, key) if kind == DEVICE
                                    else area_visible(hub, principal, key))
    if item is None or not visible:  # one answer for "missing" and "out of scope": no probing of ids
        raise XrApiError(404, "not_found", f"no {kind[:-1]} {key!r}")
    if not _may_place(api, principal, kind, key):
        raise XrApiError(403, "unauthorized", f"this token may not place {kind[:-1]} {key!r}")
    if kind == AREA and _configured_area_pose(api, key):
        raise XrApiError(409, "conflict", f"area {key!r} has its pose in configuration.yaml (areas:), which is "
                                          "applied at every start; change it there")
    if method == "DELETE":
        pose = None
    else:
        pose = parse_pose(body, item.pose if method == "PATCH" else None)
    if kind == DEVICE:
        hub.devices.async_update(key, pose=pose)
    else:
        hub.areas.async_update(key, pose=pose)
    return {"kind": kind, "id": key, "pose": pose_entry(pose)}


# -- REST -----------------------------------------------------------------------------------


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=ha_format.encode(ha_format.dumps(value)), status=status,
                        content_type="application/json", charset="utf-8", headers=headers)


def _error(err: XrApiError) -> web.Response:
    return _json({"message": err.message, "code": err.code}, err.status)


async def get_scenes(request: web.Request) -> web.Response:
    return _json({"scenes": scene_list(api_of(request), principal_of(request))})


async def get_scene(request: web.Request) -> web.Response:
    try:
        body = resolved(api_of(request), principal_of(request), request.match_info["scene_id"])
    except XrApiError as err:
        return _error(err)
    # The ETag covers the scene, not its states (those change all the time; clients follow them on a stream).
    etag = f'"{body["version"]}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return _json(body, headers={"ETag": etag})


async def get_poses(request: web.Request) -> web.Response:
    msg = poses_message(None, current_poses(api_of(request).hub, principal_of(request)))
    return _json({DEVICE: msg[DEVICE], AREA: msg[AREA]})


async def put_pose(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    body: Any = None
    if request.method != "DELETE":
        try:
            body = await request.json()
        except ValueError:
            return _error(XrApiError(400, "invalid_format", "the body is not JSON"))
    try:
        result = set_pose(api_of(request), principal_of(request), kind, request.match_info["key"], body, request.method)
    except XrApiError as err:
        return _error(err)
    return _json(result)


_XR_TYPES = {".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
             ".json": "application/json", ".ts": "text/plain", ".md": "text/plain"}


async def xr_file(request: web.Request) -> web.Response:
    """A file of the WebXR client, gzip-compressed when the browser accepts it (headsets are often on Wi-Fi; the
    page's JavaScript shrinks to about a third)."""
    root = XR_WEB.resolve()
    path = (root / (request.match_info.get("path") or "index.html")).resolve()
    if not path.is_relative_to(root) or path.suffix not in _XR_TYPES or not path.is_file():
        raise web.HTTPNotFound()
    response = web.Response(body=path.read_bytes(), content_type=_XR_TYPES[path.suffix], charset="utf-8")
    response.enable_compression()
    return response


async def xr_redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/xr/")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/xr/scenes", get_scenes)
    app.router.add_get("/api/xr/scenes/{scene_id}", get_scene)
    app.router.add_get("/api/xr/poses", get_poses)
    for method in ("PUT", "PATCH", "DELETE"):
        app.router.add_route(method, "/api/xr/poses/{kind:devices|areas}/{key}", put_pose)
    app.router.add_get("/xr", xr_redirect)
    app.router.add_get("/xr/{path:.*}", xr_file)


# -- live scene pushes ------------------------------------------------------------------------
class SceneSubscription:
    __slots__ = ("conn", "kind", "last", "scene_id", "sub_id")

    def __init__(self, conn: Any, kind: str, sub_id: Any, scene_id: str) -> None:
        self.conn, self.kind, self.sub_id, self.scene_id = conn, kind, sub_id, scene_id
        self.last: str | None = None  # version last sent; a registry change that leaves the scene alone sends nothing


class ScenePush:
    """Pushes a resolved scene to its subscribers when its file or a pose changes (one bus listener per event for
    all connections of one API server, only while someone subscribes)."""

    def __init__(self, api: ApiServer) -> None:
        self._api = api
        self.subs: list[SceneSubscription] = []
        self._unlisten: list[Callable[[], None]] = []

    def add(self, sub: SceneSubscription, initial: bool = True) -> Callable[[], None]:
        self.subs = [s for s in self.subs if not s.conn.closing]
        if sum(1 for s in self.subs if s.conn is sub.conn) >= MAX_SCENE_SUBSCRIPTIONS:
            raise CommandError("not_allowed", f"at most {MAX_SCENE_SUBSCRIPTIONS} scene subscriptions per connection")
        self.subs.append(sub)
        if not self._unlisten:
            bus = self._api.hub.bus
            self._unlisten = [bus.listen(t, self._on_change) for t in
                              (EVENT_XR_SCENES_UPDATED, EVENT_DEVICE_REGISTRY_UPDATED, EVENT_AREA_REGISTRY_UPDATED)]
        if initial:
            self.send(sub)
        return lambda: self.remove(sub)

    def remove(self, sub: SceneSubscription) -> None:
        self.subs = [s for s in self.subs if s is not sub and not s.conn.closing]
        if not self.subs:
            for unlisten in self._unlisten:
                unlisten()
            self._unlisten = []

    def _on_change(self, event: Event[Any]) -> None:
        for sub in list(self.subs):
            if sub.conn.closing:
                self.remove(sub)
            else:
                self.send(sub)

    def send(self, sub: SceneSubscription) -> None:
        try:
            body: dict[str, Any] | None = resolved(self._api, sub.conn.principal, sub.scene_id)
        except XrApiError:
            body = None
        version = body["version"] if body is not None else ""
        if version == sub.last:
            return
        sub.last = version
        payload: dict[str, Any] = {"scene": body} if body is not None else {"removed": sub.scene_id}
        if sub.kind == "ha":
            sub.conn.send(ha_format.dumps({"id": sub.sub_id, "type": "event", "event": payload}))
        else:
            sub.conn.send(stream.pack_any_text({"type": "scene", "id": sub.sub_id, **payload}))


def _scene_id(msg: dict[str, Any]) -> str:
    scene_id = msg.get("scene_id")
    if not isinstance(scene_id, str) or not scene_id:
        raise CommandError("invalid_format", "scene_id must be a string")
    return scene_id


def _ws_subscribe(conn: websocket_ha.HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    scene_id = _scene_id(msg)
    conn.send(websocket_ha._result(msg_id))
    conn.subs[msg_id] = conn.api.xr_push.add(SceneSubscription(conn, "ha", msg_id, scene_id))


def _ws_list(conn: websocket_ha.HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    conn.send(websocket_ha._result(msg_id, scene_list(conn.api, conn.principal)))


def _ws_set_pose(conn: websocket_ha.HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    try:
        result = set_pose(conn.api, conn.principal, _kind(msg), str(msg.get("key")), msg.get("pose"), "PUT")
    except XrApiError as err:
        conn.send(websocket_ha._error(msg_id, err.code, err.message))
        return
    conn.send(websocket_ha._result(msg_id, result))


def _kind(msg: dict[str, Any]) -> str:
    kind = msg.get("kind")
    if kind not in (DEVICE, AREA):
        raise XrApiError(400, "invalid_format", "kind must be devices or areas")
    return str(kind)


def _stream_subscribe(conn: stream.StreamConnection, msg_id: Any, msg: dict[str, Any]) -> dict[str, Any]:
    """The answer holds the scene as it is now; ``scene`` messages with this id follow when it changes."""
    if msg_id is None:
        raise CommandError("invalid_format", "xr/subscribe_scene needs an id")
    sub = SceneSubscription(conn, "stream", msg_id, _scene_id(msg))
    try:
        body = resolved(conn.api, conn.principal, sub.scene_id)
    except XrApiError as err:
        raise CommandError(err.code, err.message) from None
    sub.last = body["version"]
    conn.api.xr_push.add(sub, initial=False)
    return {"scene": body}


def _stream_unsubscribe(conn: stream.StreamConnection, msg_id: Any, msg: dict[str, Any]) -> bool:
    push: ScenePush = conn.api.xr_push
    target = msg.get("subscription")
    for sub in push.subs:
        if sub.conn is conn and sub.sub_id == target:
            push.remove(sub)
            return True
    raise CommandError("not_found", "no such scene subscription")


def _stream_set_pose(conn: stream.StreamConnection, msg_id: Any, msg: dict[str, Any]) -> dict[str, Any]:
    try:
        return set_pose(conn.api, conn.principal, _kind(msg), str(msg.get("key")), msg.get("pose"), "PUT")
    except XrApiError as err:
        raise CommandError(err.code if err.code != "conflict" else "not_allowed", err.message) from None


def _stream_list(conn: stream.StreamConnection, msg_id: Any, msg: dict[str, Any]) -> list[dict[str, Any]]:
    return scene_list(conn.api, conn.principal)


def add_ws_commands(commands: dict[str, websocket_ha.HaHandler]) -> None:
    commands["qilu/xr/scenes"] = _ws_list
    commands["qilu/xr/subscribe_scene"] = _ws_subscribe
    commands["qilu/xr/set_pose"] = _ws_set_pose


def add_stream_commands(commands: dict[str, stream.StreamHandler]) -> None:
    commands["xr/scenes"] = _stream_list
    commands["xr/subscribe_scene"] = _stream_subscribe
    commands["xr/unsubscribe_scene"] = _stream_unsubscribe
    commands["xr/set_pose"] = _stream_set_pose


# -- OpenAPI ------------------------------------------------------------------------------------
POSE_SCHEMA = {
    "type": "object", "required": ["x", "y", "z"], "additionalProperties": False,
    "description": "metres and a rotation (normalised by the hub) in the home frame",
    "properties": {**{k: {"type": "number"} for k in POSE_KEYS}, "frame": {"const": "home"}},
}


def openapi_paths(common: dict[str, Any]) -> dict[str, Any]:
    def ok(schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": "OK", "content": {"application/json": {"schema": schema}}}

    message = {"$ref": "#/components/schemas/Message"}
    err = {"description": "Error", "content": {"application/json": {"schema": message}}}
    scene_id = [{"name": "scene_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    pose_params = [{"name": "kind", "in": "path", "required": True, "schema": {"enum": [DEVICE, AREA]}},
                   {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}]
    answer = ok({"type": "object", "properties": {"kind": {"type": "string"}, "id": {"type": "string"},
                                                  "pose": {"oneOf": [POSE_SCHEMA, {"type": "null"}]}}})
    responses = {"200": answer, "400": err, "404": err, "409": err, **common}
    return {
        "/api/xr/scenes": {"get": {"summary": "Immersive scenes the token may see (docs/xr.md)",
                                   "responses": {"200": ok({"type": "object"}), **common}}},
        "/api/xr/scenes/{scene_id}": {"get": {
            "summary": "A scene resolved for a client: panels, layout, bindings, placements, states (ETag)",
            "parameters": scene_id,
            "responses": {"200": ok({"type": "object"}), "304": {"description": "Unchanged"},
                          "404": {**err, "description": "No such scene, or none of its controls is visible to the "
                                                        "token (the same answer, so scene ids cannot be probed)"},
                          **common}}},
        "/api/xr/poses": {"get": {"summary": "Device and area poses the token may see",
                                  "responses": {"200": ok({"type": "object"}), **common}}},
        "/api/xr/poses/{kind}/{key}": {
            "put": {"summary": "Set a device's or area's pose", "parameters": pose_params,
                    "requestBody": {"content": {"application/json": {"schema": POSE_SCHEMA}}}, "responses": responses},
            "patch": {"summary": "Change some of a pose's values", "parameters": pose_params,
                      "requestBody": {"content": {"application/json": {"schema": {**POSE_SCHEMA, "required": []}}}},
                      "responses": responses},
            "delete": {"summary": "Forget a pose", "parameters": pose_params, "responses": responses},
        },
    }
