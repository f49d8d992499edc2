"""Connecting a phone or headset: a scoped token and a one-time sign-in link for it, shown as a QR code.

``POST /api/dashboard/connect`` (admin only) creates a token with the scopes asked for (never an admin one) and a
sign-in link ``/login/link/{ticket}`` for it: random, single-use, valid for ``LINK_LIFETIME`` seconds, kept in
memory only. The answer carries the link and its QR code, drawn on the hub as SVG (segno), so nobody types a
token on a phone or headset keyboard, and the token's secret never reaches the admin's page.

``GET /api/dashboard/tokens`` lists the valid tokens (names and scopes, never secrets) and
``POST /api/dashboard/tokens/{id}/revoke`` revokes one, so a lost phone loses its access from the same page.

Opening the link shows a page with one button that POSTs the ticket to ``/login`` (``dashboard.login``); the
ticket becomes the token's HttpOnly session cookie there. A GET never signs in: link previews and prefetchers
that open every link in a chat would otherwise use the ticket up (or sign themselves in).
"""

from __future__ import annotations

import html
import io
import re
from typing import Any

from aiohttp import web

from ..tokens import Scopes
from .auth import Principal
from .keys import API_KEY, CREDENTIALS_KEY, PRINCIPAL_KEY
from .tickets import TicketStore

__all__ = ["LINKS_KEY", "LINK_LIFETIME", "LINK_PREFIX", "OPENS", "add_routes", "after_sign_in"]

LINK_PREFIX = "/login/link/"
LINK_LIFETIME = 600.0  # long enough to find the phone, short enough that a photographed code goes stale
LINKS_KEY: web.AppKey[TicketStore] = web.AppKey("login_links", TicketStore)
MAX_NAME = 60

# No script, no inline style (the dashboard's CSP); the ticket rides in the form body of the POST.
_LINK_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>qilu-hub: sign in</title></head>
<body><main><h1>qilu-hub</h1><p lang="en">Sign in to this home's dashboard on this device.</p>
<p lang="zh-CN">在此设备上登录家庭控制面板。</p>
<form method="post" action="/login"><input type="hidden" name="ticket" value="{ticket}">{open_field}
<button type="submit" data-testid="link-submit">Sign in · 登录</button></form></main></body></html>"""


# Where a link may send the browser after signing in: the dashboard, or the WebXR view for a headset. A fixed
# list, never a URL from the request (an open redirect would lend the hub's name to any site).
OPENS = {"dashboard": "/", "xr": "/xr/"}


def link_page(ticket: str, opens: str = "dashboard") -> web.Response:
    open_field = f'<input type="hidden" name="open" value="{opens}">' if opens in OPENS and opens != "dashboard" else ""
    return web.Response(text=_LINK_PAGE.format(ticket=html.escape(ticket, quote=True), open_field=open_field),
                        content_type="text/html",
                        headers={"Referrer-Policy": "same-origin"})  # the POST must carry its Origin (see login)


async def open_link(request: web.Request) -> web.Response:
    """``GET /login/link/{ticket}``: the page behind the QR code. Says nothing about whether the ticket is valid."""
    return link_page(request.match_info["ticket"], request.query.get("open", "dashboard"))


def after_sign_in(opens: object) -> str:
    """The path a sign-in link's form asks to open next (``/`` for anything not on the list)."""
    return OPENS.get(opens, "/") if isinstance(opens, str) else "/"


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _scopes(body: dict[str, Any], principal: Principal, known_areas: set[str]) -> Scopes | str:
    read_only = body.get("read_only", False)
    if not isinstance(read_only, bool):
        return "read_only must be true or false"
    areas = body.get("areas")
    if areas is not None:
        if not isinstance(areas, list) or not areas or not all(isinstance(a, str) for a in areas):
            return "areas must be null (every room) or a non-empty list of area ids"
        unknown = sorted(set(areas) - known_areas)
        if unknown:
            return f"no such area: {', '.join(unknown)}"
    return Scopes(read_only=read_only, areas=frozenset(areas) if areas is not None else None)


async def connect(request: web.Request) -> web.Response:
    """Create a phone's token and its one-time sign-in link: ``{name, read_only?, areas?, open?}`` in, link and QR
    out. ``open``: ``dashboard`` (default) or ``xr`` (the WebXR view at ``/xr/``, for a headset's browser)."""
    refused = _admin_from_page(request)  # as for ws_ticket: with the cookie, only the hub's own page
    if refused is not None:
        return refused
    principal: Principal = request[PRINCIPAL_KEY]
    try:
        body = await request.json()
    except ValueError:
        return _bad("the body must be JSON")
    if not isinstance(body, dict):
        return _bad("the body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or re.search(r"[\x00-\x1f\x7f]", name):
        return _bad(f"name must be 1 to {MAX_NAME} printable characters")
    api = request.app[API_KEY]
    hub = api.hub
    scopes = _scopes(body, principal, {area.id for area in hub.areas.all()})
    if isinstance(scopes, str):
        return _bad(scopes)
    opens = body.get("open", "dashboard")
    if opens not in OPENS:
        return _bad(f"open must be one of {', '.join(OPENS)}")
    token, secret = hub.tokens.create(name.strip(), scopes)
    ticket = request.app[LINKS_KEY].issue(secret)
    secure = api.scheme == "https" or api.proxies.forwarded_https(request.remote or "?",
                                                                  request.headers.get("X-Forwarded-Proto"))
    url = f"{'https' if secure else 'http'}://{request.host}{LINK_PREFIX}{ticket}"
    if opens != "dashboard":
        url += f"?open={opens}"
    # Error correction M: survives a phone camera at arm's length off a laptop screen; dark on light for scanners.
    import segno  # here: QR codes are drawn when a link is made, not loaded with the API

    svg = io.BytesIO()
    # With its namespace (the page parses it as SVG, not HTML) and a viewBox instead of a fixed size (CSS sizes it).
    segno.make(url, error="m").save(svg, kind="svg", scale=5, border=4, dark="#000000", light="#ffffff",
                                    xmldecl=False, svgns=True, omitsize=True)
    qr_svg = svg.getvalue().decode("utf-8")
    body_out = {"url": url, "qr_svg": qr_svg, "expires_in": request.app[LINKS_KEY].lifetime,
                "token": {"id": token.id, "name": token.name, **scopes.to_dict()}}
    return web.json_response(body_out, headers={"Cache-Control": "no-store"})


def _admin_from_page(request: web.Request) -> web.Response | None:
    """None when the request may manage tokens: an admin token, and with the cookie, the hub's own page."""
    principal: Principal = request[PRINCIPAL_KEY]
    if not principal.admin:
        return _bad("managing phones and headsets needs an admin token", 403)
    _, source = request[CREDENTIALS_KEY]
    if source == "cookie" and not request.headers.get("Origin") and request.method != "GET":
        return _bad("this request needs the page's Origin", 403)
    return None


async def list_tokens(request: web.Request) -> web.Response:
    """``GET /api/dashboard/tokens``: the tokens still valid (never their secrets), so a lost phone can be found."""
    refused = _admin_from_page(request)
    if refused is not None:
        return refused
    tokens = request.app[API_KEY].hub.tokens
    current: Principal = request[PRINCIPAL_KEY]
    body = [{"id": t.id, "name": t.name, **t.scopes.to_dict(), "created": t.created, "last_used": t.last_used,
             "expires": t.expires, "current": t.id == current.token.id}
            for t in tokens.list() if t.revoked is None and not tokens.expired(t)]
    return web.json_response({"tokens": body}, headers={"Cache-Control": "no-store"})


async def revoke_token(request: web.Request) -> web.Response:
    """``POST /api/dashboard/tokens/{id}/revoke``: the phone's sessions end at once (``sessions.SessionGuard``)."""
    refused = _admin_from_page(request)
    if refused is not None:
        return refused
    token_id = request.match_info["token_id"]
    if token_id == request[PRINCIPAL_KEY].token.id:
        return _bad("this is the token this page is signed in with; revoke it with qilu-hub token revoke", 400)
    if not request.app[API_KEY].hub.tokens.revoke(token_id):
        return _bad(f"no valid token {token_id!r}", 404)
    return web.json_response({"revoked": token_id})


def redeem(app: web.Application, ticket: str) -> str | None:
    """The token secret a sign-in link stands for, once; None when unknown, used or expired."""
    return app[LINKS_KEY].redeem(ticket)


def add_routes(app: web.Application) -> None:
    app[LINKS_KEY] = TicketStore(lifetime=LINK_LIFETIME, max_outstanding=100)
    app.router.add_get(LINK_PREFIX + "{ticket}", open_link)
    app.router.add_post("/api/dashboard/connect", connect)
    app.router.add_get("/api/dashboard/tokens", list_tokens)
    app.router.add_post("/api/dashboard/tokens/{token_id}/revoke", revoke_token)
