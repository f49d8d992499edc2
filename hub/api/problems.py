"""The hub's current problems over REST, for admins: ``GET /api/problems`` lists what is wrong now and needs a
person (``hub.problems``: a refused scene file with its file:line, ...), oldest first. The answers name files in
the config directory, so a token that may not administer the hub gets 403 (its holder could not fix them anyway).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import ha_format
from .keys import api_of, principal_of

__all__ = ["PROBLEM_SCHEMA", "add_routes", "openapi_paths"]

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "domain", "severity", "message", "file", "line", "details", "since"],
    "properties": {
        "id": {"type": "string", "description": "Stable while the problem lasts", "example": "scenes:/config/a.yaml"},
        "domain": {"type": "string", "description": "The part of the hub that reports it", "example": "scenes"},
        "severity": {"type": "string", "enum": ["error", "warning"],
                     "description": "error: something configured does not work; warning: it waits for something"},
        "message": {"type": "string", "description": "The first thing to fix"},
        "file": {"type": ["string", "null"]},
        "line": {"type": ["integer", "null"], "minimum": 1},
        "details": {"type": "array", "items": {"type": "string"}, "description": "Every issue, file:line: message"},
        "since": {"type": "string", "format": "date-time", "description": "When it was first reported"},
    },
}


async def get_problems(request: web.Request) -> web.Response:
    if not principal_of(request).admin:
        return web.json_response({"message": "the problem list needs an admin token"}, status=403)
    body = [{**p.as_dict(), "since": ha_format.iso(p.since)} for p in api_of(request).hub.problems.all()]
    return web.Response(text=ha_format.dumps(body), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/problems", get_problems)


def openapi_paths(common: dict[str, Any]) -> dict[str, Any]:
    """``/api/problems`` for ``/api/openapi.json``; ``common`` holds the shared 401/403/429 answers."""
    return {"/api/problems": {"get": {
        "summary": "What is wrong now and needs a person, oldest first (a refused scene file at its file:line; admin)",
        "responses": {"200": {"description": "The current problems", "content": {"application/json": {"schema": {
            "type": "array", "items": {"$ref": "#/components/schemas/Problem"}}}}}, **common}}}}
