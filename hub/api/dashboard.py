"""The web dashboard: static files from the package plus small JSON endpoints it reads.

No build chain: ``static/`` holds plain HTML, JavaScript and CSS. Signing in is a form that
POSTs the token to ``/login`` (never a URL); the token then lives in an HttpOnly cookie. The page gets live
state over the Home Assistant WebSocket protocol (``subscribe_entities``) and sends
commands with the REST service endpoint. The discovery inbox it shows has its own endpoints (``inbox.py``).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from . import ha_format, login_links
from .auth import COOKIE
from .keys import API_KEY, CREDENTIALS_KEY, principal_of

STATIC = Path(__file__).with_name("static")
SCENE_ENTITY = "sensor.household_scene"

LOGIN_PATH = "/login"
# No script and no inline style: the page works under the dashboard's Content-Security-Policy. The token goes
# in a POST body, never in a URL (history, Referer, server logs).
_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>qilu-hub: sign in</title></head>
<body><main><h1>qilu-hub</h1><p>This dashboard needs an access token (<code>qilu-hub token create --name me</code>).</p>
<p lang="zh-CN">此控制面板需要访问令牌（<code>qilu-hub token create --name me</code>）。手机和头显可扫描控制面板
“连接手机”页面上的二维码登录。</p>
<p data-testid="login-message">{message}</p>
<form method="post" action="{action}"><input name="token" type="password" placeholder="qh_..."
 aria-label="Access token" data-testid="login-token" autocomplete="off" autofocus>
<button type="submit" data-testid="login-submit">Open · 打开</button></form></main></body></html>"""



# A path (and query) in printable ASCII without spaces or backslashes: browsers drop tabs and newlines from a URL
# and read a backslash as a slash, so either would let "/" + one of them + "/evil.example" leave like "//evil.example".
_RETURN_PATH = re.compile(r"/(?![/\\])[\x21-\x7e]*")
MAX_RETURN_PATH = 512


def return_path(value: object) -> str:
    """Where the browser goes after signing in: a path on this hub (``/xr/?scene=living_room``, the page that
    showed the form), or ``/`` for anything else. Never another site (an open redirect would lend the hub's name
    to any link): absolute URLs, ``//host`` and the spellings browsers read as it are refused."""
    if not isinstance(value, str) or len(value) > MAX_RETURN_PATH or "\\" in value:
        return "/"
    if not _RETURN_PATH.fullmatch(value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(LOGIN_PATH):  # the form itself takes no GET
        return "/"
    return value


def login_page(message: str = "", status: int = 401, next_path: str = "/") -> web.Response:
    """The sign-in form; signing in returns to `next_path` (the page that asked, checked again by ``login``)."""
    next_path = return_path(next_path)
    action = LOGIN_PATH if next_path == "/" else f"{LOGIN_PATH}?{urlencode({'next': next_path})}"
    # Referrer-Policy same-origin here (no-referrer elsewhere): under no-referrer a browser sends the form's
    # POST with "Origin: null", which cannot be told from a sandboxed frame on a hostile site. Same-origin
    # still sends nothing to other sites.
    return web.Response(text=_LOGIN_PAGE.format(message=html.escape(message), action=html.escape(action)),
                        status=status, content_type="text/html", headers={"Referrer-Policy": "same-origin"})


async def login(request: web.Request) -> web.StreamResponse:
    """``POST /login`` from the sign-in form (or a sign-in link's page, with ``ticket``): a valid token becomes an
    HttpOnly cookie and a 303 back to the page that showed the form (``?next=``, a path on this hub; ``return_path``)
    or to ``/``.

    Browsers send Origin with every POST; the middleware has refused foreign ones, and one without any is
    refused here, so that no other site can sign a browser in to the hub with the attacker's token (login
    CSRF). Wrong tokens count against the address like any failed login.
    """
    api = request.app[API_KEY]
    if not request.headers.get("Origin"):
        return login_page("Sign in from the hub's own page (the request carried no Origin).", 403,
                          request.query.get("next", "/"))
    form = await request.post()
    token, ticket = form.get("token"), form.get("ticket")
    next_path = return_path(request.query.get("next", "/"))
    if isinstance(ticket, str) and ticket:
        next_path = login_links.after_sign_in(form.get("open", "dashboard"))
        # A one-time sign-in link from "Connect a phone" (login_links.py): the ticket stands for a token's secret.
        secret = login_links.redeem(request.app, ticket) or ""
        if not secret or api.principal_for(secret) is None:
            api.login_limiter.failed(api.client_address(request))
            return login_page("This sign-in link was used already or has expired; make a new one on the "
                              "dashboard's \"Connect a phone\" page.", 401)
    else:
        secret = token.strip() if isinstance(token, str) else ""
        if not secret or api.principal_for(secret) is None:
            api.login_limiter.failed(api.client_address(request))
            return login_page("Invalid access token", 401, next_path)
    response = web.HTTPSeeOther(next_path)
    # HttpOnly: no script (an XSS included) can read the token; the page gets WebSocket tickets instead.
    secure = api.scheme == "https" or api.proxies.forwarded_https(request.remote or "?",
                                                                  request.headers.get("X-Forwarded-Proto"))
    response.set_cookie(COOKIE, secret, httponly=True, samesite="Strict", path="/", secure=secure)
    raise response  # aiohttp wants redirects raised; returning one is deprecated


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def registry(request: web.Request) -> web.Response:
    """Areas, devices and entities (with their commands) visible to the token."""
    api = request.app[API_KEY]
    hub = api.hub
    principal = principal_of(request)
    entities = []
    for entity in hub.entities.all():
        if not principal.can_see(entity.entity_id):
            continue
        entities.append({
            "entity_id": entity.entity_id, "name": entity.name, "device_id": entity.device_id,
            "area_id": hub.entities.area_of(entity), "domain": entity.domain, "device_class": entity.device_class,
            "unit": entity.unit, "capabilities": list(entity.capabilities),
            "commands": {name: {arg: {"required": spec.required, **spec.json_schema()}
                                for arg, spec in cmd.args.items()} for name, cmd in entity.commands.items()},
            "controllable": principal.can_control(entity.entity_id),
        })
    body = {
        "name": hub.config.get("hub", {}).get("name", "Home"),
        "areas": [area.to_dict() for area in hub.areas.all()
                  if principal.unrestricted or area.id in {e["area_id"] for e in entities}],
        "devices": api.devices_list(principal),
        "entities": entities,
        "scene_entity": SCENE_ENTITY,
        "token": {"name": principal.token.name, **principal.scopes.to_dict()},
    }
    return web.Response(text=ha_format.dumps(body), content_type="application/json")


async def ws_ticket(request: web.Request) -> web.Response:
    """A single-use ticket for the WebSocket ``auth`` message (the page cannot read its HttpOnly cookie).

    The middleware has already refused foreign Origins; a cookie-authenticated request must
    also *carry* an Origin (browsers send one with every POST), so that no request a browser
    makes without one (a form, a redirect) can mint a ticket with the owner's cookie.
    """
    api = request.app[API_KEY]
    secret, source = request[CREDENTIALS_KEY]
    if source == "cookie" and not request.headers.get("Origin"):
        return web.json_response({"message": "a WebSocket ticket needs the request's Origin"}, status=403)
    ticket = api.tickets.issue(secret)
    return web.json_response({"ticket": ticket, "expires_in": api.tickets.lifetime},
                             headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_static("/static/", STATIC, append_version=False)
    app.router.add_get("/api/dashboard/registry", registry)
    app.router.add_post("/api/dashboard/ws_ticket", ws_ticket)
    login_links.add_routes(app)
