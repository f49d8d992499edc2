"""Home Assistant commands that clients send on connecting: who am I, which panels, which services (REST too).

``auth/current_user`` describes the token as HA describes a user (a token is the only kind of user here:
``is_admin`` is the token's admin scope), ``get_panels`` offers the hub's own dashboard as HA's ``iframe``
panel, and ``GET /api/services`` is HA's REST listing of the same services ``get_services`` returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import ha_format
from .keys import API_KEY, PRINCIPAL_KEY
from .services import services_of

if TYPE_CHECKING:
    from .app import ApiServer
    from .auth import Principal
    from .websocket_ha import HaConnection, HaHandler


def current_user(principal: Principal) -> dict[str, Any]:
    token = principal.token
    return {"id": token.id, "name": token.name, "is_owner": principal.admin, "is_admin": principal.admin,
            "credentials": [], "mfa_modules": []}


def panels() -> dict[str, Any]:
    return {"qilu_hub": {"component_name": "iframe", "icon": "mdi:home-assistant", "title": "qilu-hub",
                         "config": {"url": "/"}, "url_path": "qilu_hub", "require_admin": False,
                         "config_panel_domain": None}}


def _send_result(conn: HaConnection, msg_id: int, result: Any) -> None:
    conn.send(ha_format.dumps({"id": msg_id, "type": "result", "success": True, "result": result}))


def ws_current_user(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    _send_result(conn, msg_id, current_user(conn.principal))


def ws_get_panels(conn: HaConnection, msg_id: int, msg: dict[str, Any]) -> None:
    _send_result(conn, msg_id, panels())


def add_ws_commands(commands: dict[str, HaHandler]) -> None:
    commands["auth/current_user"] = ws_current_user
    commands["get_panels"] = ws_get_panels


async def get_services(request: web.Request) -> web.Response:
    """``GET /api/services``: ``[{"domain": ..., "services": {...}}, ...]`` for what the token may see."""
    api: ApiServer = request.app[API_KEY]
    principal: Principal = request[PRINCIPAL_KEY]
    listing = [{"domain": domain, "services": services}
               for domain, services in services_of(api.hub, principal).items()]
    return web.Response(body=ha_format.encode(ha_format.dumps(listing)), content_type="application/json",
                        charset="utf-8")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/services", get_services)
