"""Matter over REST, for admins: the companion's status, sharing a node with another ecosystem, removing a node.

``GET /api/matter`` gives the ``matter`` component's status (connected, the managed server, nodes);
``POST /api/matter/nodes/{node_id}/share`` opens a commissioning window (body ``{"timeout": seconds}``, 180 to
900, default 300) and answers the pairing codes another controller commissions it with (multi-admin);
``DELETE /api/matter/nodes/{node_id}`` removes the node from the fabric and its devices and entities from the
hub. Commissioning is the inbox's (``POST /api/discovery/{key}/adopt`` with ``{"setup_code": ...}``). The
component is duck-typed, so the API imports nothing of Matter; without it these answer 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import ha_format
from .keys import API_KEY, PRINCIPAL_KEY

__all__ = ["add_routes"]

WINDOW_MIN, WINDOW_MAX, WINDOW_DEFAULT = 180, 900, 300  # seconds; the Matter specification's bounds for a window


def _matter(request: web.Request) -> Any:
    return request.app[API_KEY].hub.components.get("matter")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=ha_format.dumps(body), status=status, content_type="application/json")


def _guard(request: web.Request) -> web.Response | None:
    if not request[PRINCIPAL_KEY].admin:
        return _json({"message": "Matter needs an admin token"}, 403)
    if _matter(request) is None:
        return _json({"message": "Matter is not configured (matter: in configuration.yaml)"}, 404)
    return None


def _node_id(request: web.Request) -> int:
    text = request.match_info["node_id"]
    if not text.isdigit() or len(text) > 20:
        raise ValueError("a node id is a number")
    return int(text)


async def matter_status(request: web.Request) -> web.Response:
    return _guard(request) or _json(_matter(request).status())


async def matter_share(request: web.Request) -> web.Response:
    if (refused := _guard(request)) is not None:
        return refused
    matter = _matter(request)
    try:
        node_id = _node_id(request)
        body = await request.json() if request.body_exists else {}
        timeout = body.get("timeout", WINDOW_DEFAULT) if isinstance(body, dict) else None
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not WINDOW_MIN <= timeout <= WINDOW_MAX:
            raise ValueError(f"timeout is whole seconds from {WINDOW_MIN} to {WINDOW_MAX}")
    except ValueError as err:
        return _json({"message": str(err)}, 400)
    if node_id not in matter.nodes:
        return _json({"message": f"no Matter node {node_id}"}, 404)
    try:
        codes = await matter.async_open_commissioning_window(node_id, timeout=timeout)
    except Exception as err:  # the node did not answer, or the server is gone
        return _json({"message": f"opening a commissioning window failed: {err}"}, 502)
    return _json(codes)


async def matter_remove(request: web.Request) -> web.Response:
    if (refused := _guard(request)) is not None:
        return refused
    matter = _matter(request)
    try:
        node_id = _node_id(request)
    except ValueError as err:
        return _json({"message": str(err)}, 400)
    if node_id not in matter.nodes:
        return _json({"message": f"no Matter node {node_id}"}, 404)
    try:
        await matter.async_remove_node(node_id)
    except Exception as err:
        return _json({"message": f"removing node {node_id} failed: {err}"}, 502)
    return _json({"ok": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/matter", matter_status)
    app.router.add_post("/api/matter/nodes/{node_id}/share", matter_share)
    app.router.add_delete("/api/matter/nodes/{node_id}", matter_remove)


def openapi_paths(common: dict[str, Any]) -> dict[str, Any]:
    """The Matter endpoints for ``/api/openapi.json``; ``common`` holds the shared 401/403/429 answers."""

    def answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    message = {"$ref": "#/components/schemas/Message"}
    node = {"name": "node_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
    missing = answer(message, "Matter is not configured, or no such node")
    return {
        "/api/matter": {"get": {
            "summary": "The Matter companion: connected, the managed server, nodes (admin)",
            "responses": {"200": answer({"type": "object"}, "Status"), "404": missing, **common}}},
        "/api/matter/nodes/{node_id}/share": {"post": {
            "summary": "Open a commissioning window so another controller can add this node (multi-admin; admin)",
            "parameters": [node],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"timeout": {"type": "integer", "minimum": WINDOW_MIN,
                                                             "maximum": WINDOW_MAX}}}}}},
            "responses": {"200": answer({"type": "object", "properties": {
                "manual_code": {"type": "string"}, "qr_code": {"type": "string"}, "timeout": {"type": "integer"}}},
                "The pairing codes, valid for timeout seconds"),
                "400": answer(message, "Bad node id or timeout"), "404": missing,
                "502": answer(message, "The node or matter-server did not answer"), **common}}},
        "/api/matter/nodes/{node_id}": {"delete": {
            "summary": "Remove the node from the fabric, and its devices and entities from the hub (admin)",
            "parameters": [node],
            "responses": {"200": answer({"type": "object"}, "Removed"), "400": answer(message, "Bad node id"),
                          "404": missing, "502": answer(message, "matter-server did not answer"), **common}}},
    }
