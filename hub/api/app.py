"""The API component: builds the aiohttp application and serves it.

Routes: Home Assistant's WebSocket (``/api/websocket``) and REST (``/api/...``),
the native msgpack stream (``/api/stream``), the OpenAPI document, the dashboard
(``/``) and its JSON helpers. One middleware enforces, for every route except
``/api/health``: the Origin check (browsers), the failed-login limit and a valid
token. WebSocket routes authenticate in-band (their protocols' ``auth`` message, which
also takes the dashboard's single-use tickets); the dashboard's sign-in form (``POST /login``)
checks the token it carries itself. Another middleware turns input that breaks a handler
deep down into a 400, and every answer gets the browser hardening headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, web

from ..config import ConfigError
from ..const import CONFIG_FILE, DEFAULT_BIND, DEFAULT_PORT
from ..registry import EVENT_AREA_REGISTRY_UPDATED, EVENT_DEVICE_REGISTRY_UPDATED, EVENT_ENTITY_REGISTRY_UPDATED
from ..resource_limits import connection_budget
from . import (
    dashboard,
    ha_extras,
    ha_format,
    inbox,
    labels,
    login_links,
    matter,
    problems,
    registry_ws,
    render_template,
    rest,
    stream,
    websocket_ha,
    xr,
)
from . import tls as tls_api
from .advert import HubAdvert, serves_lan
from .auth import AreaLookup, LoginLimiter, Principal, ProxyTrust, credentials, origin_allowed
from .connection_guard import ConnectionGuard
from .ha_fanout import HaFanout
from .http_log import HttpErrorLog
from .input_checks import log_refused
from .keys import API_KEY, CREDENTIALS_KEY, PRINCIPAL_KEY
from .limits import (
    AUTH_TIMEOUT,
    CURRENT_SLOT,
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    MAX_MESSAGE_BYTES,
    MAX_PENDING_BYTES,
    MAX_TCP_CONNECTIONS,
    MAX_TCP_CONNECTIONS_PER_ADDRESS,
    MAX_UNAUTHENTICATED_PER_ADDRESS,
    SocketSlots,
    body_deadline_middleware,
)
from .outbox import Flusher
from .sessions import SessionGuard
from .stream import StateBytesCache, StreamFanout, handle_stream
from .tickets import TICKET_PREFIX, TicketStore
from .websocket_ha import HaConnection, handle_websocket

if TYPE_CHECKING:
    from ..core import Hub

_LOGGER = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/api/health", tls_api.CA_PATH})
IN_BAND_AUTH_PATHS = frozenset({"/api/websocket", "/api/stream"})
MAX_REST_BODY = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiServer:
    """Hub component ``api``: serves the HTTP/WebSocket API and the dashboard."""

    name = "api"

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        login_limiter: LoginLimiter | None = None,
        max_websockets: int = MAX_CONNECTIONS,
    ) -> None:
        self._host = host
        self._port = port
        self.max_message_bytes = max_message_bytes
        self.sockets = SocketSlots(max_websockets)  # WebSockets open now, and those not authenticated yet
        self.auth_timeout = AUTH_TIMEOUT
        self.idle_timeout = IDLE_TIMEOUT
        self.connections = ConnectionGuard(MAX_TCP_CONNECTIONS, MAX_TCP_CONNECTIONS_PER_ADDRESS)
        self.login_limiter = login_limiter or LoginLimiter()
        self.port: int | None = None
        self.scheme = "http"
        self.allowed_origins: frozenset[str] = frozenset()
        self.proxies = ProxyTrust()
        self.tickets = TicketStore()
        self.http_log = HttpErrorLog()
        self.state_json = ha_format.StateJsonCache()
        self.state_bytes = StateBytesCache()
        self.ha_connections: set[HaConnection] = set()
        self.pending_share = MAX_PENDING_BYTES  # bytes each Home Assistant client may queue (websocket_ha)
        self.flusher = Flusher()  # one write per connection per loop turn, for every WebSocket
        self.ha_fanout = HaFanout(self)
        self.stream_fanout = StreamFanout(self)
        self.sessions = SessionGuard(self)  # ends sessions whose token is revoked or expires
        self.tls: tls_api.HubTls | None = None  # the hub's own CA and certificate (hub.tls: auto)
        self.advert: HubAdvert | None = None  # the hub's mDNS record (serving the LAN, hub.mdns), or a test's
        # Each protocol's commands, per server: two hubs in one process never share handlers.
        self.ws_commands = websocket_ha.command_registry()
        labels.add_ws_commands(self.ws_commands)
        registry_ws.add_ws_commands(self.ws_commands)
        ha_extras.add_ws_commands(self.ws_commands)
        render_template.add_ws_commands(self.ws_commands)
        # Who among scoped tokens hears events that name no entity (the registries' own rules).
        self.event_visibility: dict[str, registry_ws.EventVisibility] = dict(registry_ws.EVENT_VISIBILITY)
        self.stream_commands: dict[str, stream.StreamHandler] = {}
        labels.add_stream_commands(self.stream_commands)
        xr.add_ws_commands(self.ws_commands)
        xr.add_stream_commands(self.stream_commands)
        self.xr_push = xr.ScenePush(self)  # resolved XR scenes pushed to WebSocket/stream subscribers
        self._hub: Hub | None = None
        self._areas: AreaLookup | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._unlisten: list[Callable[[], None]] = []

    @property
    def hub(self) -> Hub:
        assert self._hub is not None, "the API is not started"
        return self._hub

    @property
    def areas(self) -> AreaLookup:
        assert self._areas is not None
        return self._areas

    @property
    def url(self) -> str:
        host = self._host or DEFAULT_BIND
        return f"{self.scheme}://{host}:{self.port}"

    # -- lifecycle ----------------------------------------------------------------------
    async def async_start(self, hub: Hub) -> None:
        self._hub = hub
        self._areas = AreaLookup(hub)
        conf = hub.config.get("hub", {})
        self._host = self._host or conf.get("bind") or DEFAULT_BIND
        port = self._port if self._port is not None else conf.get("port", DEFAULT_PORT)
        self.allowed_origins = frozenset(conf.get("allowed_origins") or ())
        ssl_context = None
        config_file = hub.config_dir / CONFIG_FILE
        try:
            self.proxies = ProxyTrust(conf.get("trusted_proxies") or ())
        except ValueError as err:
            raise ConfigError(config_file, None, "hub.trusted_proxies", f"is not a list of addresses/CIDRs: {err}"
                              ) from err
        if conf.get("tls_certificate") and conf.get("tls") == "auto":
            raise ConfigError(config_file, None, "hub.tls", "auto and hub.tls_certificate exclude each other: "
                              "the hub serves either its own certificate or yours")
        if conf.get("tls_certificate"):
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                ssl_context.load_cert_chain(conf["tls_certificate"], conf.get("tls_key"))
            except (OSError, ssl.SSLError) as err:
                raise ConfigError(config_file, None, "hub.tls_certificate",
                                  f"certificate/key cannot be loaded: {err}") from err
            self.scheme = "https"
        elif conf.get("tls") == "auto":
            ssl_context = self._start_tls(hub, config_file)
        for event_type in (EVENT_AREA_REGISTRY_UPDATED, EVENT_DEVICE_REGISTRY_UPDATED, EVENT_ENTITY_REGISTRY_UPDATED):
            self._unlisten.append(hub.bus.listen(event_type, self._registry_changed))
        self._unlisten.append(hub.bus.listen("state_changed", self._forget_removed))
        self._apply_limits(conf)
        app = build_app(self)
        # keepalive_timeout also runs from the moment a connection opens until its first complete request:
        # it is the header timeout as well as the keep-alive idle timeout. lingering_time bounds how long the
        # rest of a body nobody reads (a refused request's) is drained before the connection is closed.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=self.http_log,
                                     keepalive_timeout=self.idle_timeout, lingering_time=self.idle_timeout)
        await self._runner.setup()
        assert self._runner.server is not None
        try:
            self._server = await self.connections.listen(self._runner.server, self._host, port, ssl_context,
                                                         handshake_timeout=self.idle_timeout)
        except OSError as err:
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(config_file, None, "hub.port",
                              f"cannot listen on {self._host}:{port}: {err.strerror or err}") from err
        sockets = self._server.sockets
        self.port = sockets[0].getsockname()[1] if sockets else port
        self.sessions.start()
        if self.tls is not None:
            self.tls.start()
        _LOGGER.info("API listening on %s", self.url)
        if conf.get("mdns", True) and (self.advert is not None or serves_lan(self._host)):
            self.advert = self.advert or HubAdvert()
            await self.advert.start(self, self._advertised_addresses())

    def _advertised_addresses(self) -> list[str]:
        """The address the API is bound to, or (bound to every address, or to a name) the machine's LAN ones."""
        import ipaddress

        from ..tls import lan_names

        with contextlib.suppress(ValueError):
            if not ipaddress.ip_address(self._host or "").is_unspecified:
                return [str(self._host)]
        return [str(a) for a in lan_names().addresses]

    def _start_tls(self, hub: Hub, config_file: Any) -> ssl.SSLContext:
        """HTTPS from the hub's own CA; a CA that cannot be used stops the start (hub.tls says HTTPS is wanted)."""
        from ..tls import TlsError  # here: the cryptography package loads only for hub.tls: auto

        if self.tls is None:
            self.tls = tls_api.HubTls(hub.config_dir)
        try:
            context = self.tls.start_context()
        except (TlsError, OSError) as err:
            raise ConfigError(config_file, None, "hub.tls", f"auto: {err}") from err
        self.scheme = "https"
        return context

    def _apply_limits(self, conf: dict[str, Any]) -> None:
        """The ``hub:`` connection limits; the overall cap is lowered to leave files for the rest of the hub."""
        configured = int(conf.get("max_connections") or MAX_TCP_CONNECTIONS)
        budget = connection_budget(configured)
        if budget < configured:
            _LOGGER.info("API accepts at most %d connections (hub.max_connections is %d): the open-file limit "
                         "leaves no more", budget, configured)
        self.connections = ConnectionGuard(
            budget, int(conf.get("max_connections_per_address") or MAX_TCP_CONNECTIONS_PER_ADDRESS),
            exempt=self.proxies.trusted)
        self.idle_timeout = float(conf.get("idle_timeout") or IDLE_TIMEOUT)
        self.auth_timeout = float(conf.get("websocket_auth_timeout") or AUTH_TIMEOUT)
        self.sockets.max_unauthenticated_per_address = int(
            conf.get("max_unauthenticated_per_address") or MAX_UNAUTHENTICATED_PER_ADDRESS)

    async def async_stop(self) -> None:
        if self.advert is not None:
            await self.advert.stop()  # first: clients stop finding a hub that is going
        await self.sessions.stop()
        if self.tls is not None:
            await self.tls.stop()
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten.clear()
        for conn in list(self.ha_connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"Hub shutting down")
        for stream_conn in list(self.stream_fanout.connections):
            with contextlib.suppress(Exception):
                await stream_conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"Hub shutting down")
        if self._server is not None:
            self._server.close()  # no new connections while the open ones are shut down
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _registry_changed(self, event: Any) -> None:
        self.areas.invalidate()
        self.stream_fanout.invalidate()

    def _forget_removed(self, event: Any) -> None:
        if event.data["new_state"] is None:
            self.state_json.forget(event.data["entity_id"])
            self.state_bytes.forget(event.data["entity_id"])

    # -- helpers used by the protocols --------------------------------------------------
    def principal_for(self, secret: str) -> Principal | None:
        token = self.hub.tokens.verify(secret)
        return Principal(token, self.areas) if token is not None else None

    def principal_for_socket(self, secret: str) -> Principal | None:
        """As :meth:`principal_for`, also taking a dashboard ticket (valid on the WebSockets only, once)."""
        if secret.startswith(TICKET_PREFIX):
            token_secret = self.tickets.redeem(secret)
            return self.principal_for(token_secret) if token_secret is not None else None
        return self.principal_for(secret)

    def client_address(self, request: web.Request) -> str:
        """The address failed logins are counted against (the client's, behind a trusted proxy)."""
        return self.proxies.client_address(request.remote or "?", request.headers.getall("X-Forwarded-For", ()))

    def pending_messages(self) -> int:
        """Messages queued for Home Assistant protocol clients (the benchmark paces itself on it)."""
        return sum(conn.pending_count() for conn in self.ha_connections)

    def config_dict(self) -> dict[str, Any]:
        hub = self.hub
        conf = hub.config.get("hub", {})
        return {
            "latitude": conf.get("latitude") or 0.0,
            "longitude": conf.get("longitude") or 0.0,
            "elevation": 0,
            "unit_system": {"length": "km", "accumulated_precipitation": "mm", "mass": "g", "pressure": "Pa",
                            "temperature": "°C", "volume": "L", "wind_speed": "m/s"},
            "location_name": conf.get("name", "Home"),
            "time_zone": conf.get("time_zone", "UTC"),
            "components": sorted({"api", "websocket_api", "history", *hub.components}),
            "config_dir": str(hub.config_dir),
            "allowlist_external_dirs": [],
            "allowlist_external_urls": [],
            "version": hub.version,
            "config_source": "yaml",
            "recovery_mode": False,
            "safe_mode": False,
            "state": "RUNNING",
            "external_url": None,
            "internal_url": None,
            "currency": "EUR",
            "country": None,
            "language": "en",
        }

    def devices_list(self, principal: Principal) -> list[dict[str, Any]]:
        """Devices the token may see, in Home Assistant's device registry shape (the dashboard's too)."""
        return [registry_ws.device_entry(d) for d in registry_ws.visible_devices(self.hub, principal)]


# Pages that show the sign-in form when signed out, and where signing in there returns to.
SIGN_IN_PAGES = {"/": "/", "/xr": "/xr/", "/xr/": "/xr/"}


def _unauthorized(request: web.Request, message: str, status: int = 401) -> web.Response:
    if request.path in SIGN_IN_PAGES and request.method == "GET":
        if "token" in request.query and status == 401:  # an old bookmark: tokens in links no longer sign in
            message = "Links with ?token= no longer sign in (they leak into history); paste the token below."
        # Back to the page that asked (a headset on /xr/ must not land on the dashboard), its query kept but
        # never a token in it.
        query = request.rel_url.query.copy()
        query.popall("token", None)
        next_path = str(request.rel_url.with_path(SIGN_IN_PAGES[request.path]).with_query(query))
        return dashboard.login_page(message, status, next_path)
    if request.path == dashboard.LOGIN_PATH:
        return dashboard.login_page(message, status, request.query.get("next", "/"))
    return web.json_response({"message": message}, status=status)


# Sent with every answer. The dashboard loads only its own files (no inline script or style, no other
# hosts), may not be framed (clickjacking) and leaks nothing through Referer; answers that carry home
# state are not stored by browsers or proxies (static files may be). Of the browser's powerful features the
# pages may use only the camera (the dashboard's QR scan of a Matter code) and WebXR (/xr/), and only for
# this origin; the others named here are refused outright (also to any script that got in).
PERMISSIONS_POLICY = ("camera=(self), xr-spatial-tracking=(self), microphone=(), geolocation=(), payment=(), "
                      "usb=(), serial=(), hid=(), midi=(), display-capture=(), browsing-topics=()")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: runs for every answer, error pages and WebSocket upgrades included."""
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def bad_input_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Input that breaks a handler deep down (nesting beyond the stack, text with no UTF-8 form) is the
    client's error: 400 and one rate-limited log line, not a 500 with a traceback."""
    try:
        return await handler(request)
    except (RecursionError, UnicodeError) as err:
        if request.path in IN_BAND_AUTH_PATHS:  # already upgraded: no HTTP answer is possible any more
            raise
        reason = "nested too deeply" if isinstance(err, RecursionError) else "text with no UTF-8 form"
        log_refused("HTTP", request.app[API_KEY].client_address(request),
                    f"{request.method} {request.path!r}: {reason} ({type(err).__name__})")
        return web.json_response({"message": f"Bad request: {reason}"}, status=400)


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    api: ApiServer = request.app[API_KEY]
    path = request.path
    if path in PUBLIC_PATHS:
        return await handler(request)
    if not origin_allowed(request, api.allowed_origins):
        return web.json_response({"message": "Origin not allowed"}, status=403)
    if path in IN_BAND_AUTH_PATHS:
        slot = api.sockets.admit(api.client_address(request))
        if slot is None:
            return web.json_response({"message": "Too many connections"}, status=503)
        CURRENT_SLOT.set(slot)  # the auth handshake marks it authenticated
        try:
            return await handler(request)
        finally:
            slot.release()
    address = api.client_address(request)
    if api.login_limiter.blocked(address):
        return _unauthorized(request, "Too many failed login attempts; try again later", 429)
    if path == dashboard.LOGIN_PATH or path.startswith(login_links.LINK_PREFIX):
        return await handler(request)  # the sign-in form (token or link ticket in the body, checked and counted there)
    secret, source = credentials(request)
    if not secret:
        return _unauthorized(request, "Missing access token")
    principal = api.principal_for(secret)
    if principal is None:
        api.login_limiter.failed(address)
        return _unauthorized(request, "Invalid access token")
    request[PRINCIPAL_KEY] = principal
    request[CREDENTIALS_KEY] = (secret, source)
    return await handler(request)


async def get_openapi(request: web.Request) -> web.Response:
    from .openapi import openapi_document  # built on request; its module (the document as code) loads then

    return web.json_response(openapi_document(request.app[API_KEY].hub.version))


def build_app(api: ApiServer) -> web.Application:
    app = web.Application(middlewares=[bad_input_middleware, security_middleware, body_deadline_middleware],
                          client_max_size=MAX_REST_BODY)
    app[API_KEY] = api
    app.on_response_prepare.append(security_headers)
    app.router.add_get("/api/websocket", handle_websocket)
    app.router.add_get("/api/stream", handle_stream)
    app.router.add_get("/api/openapi.json", get_openapi)
    rest.add_routes(app)
    ha_extras.add_routes(app)
    labels.add_routes(app)
    dashboard.add_routes(app)
    inbox.add_routes(app)
    xr.add_routes(app)
    tls_api.add_routes(app)
    matter.add_routes(app)
    problems.add_routes(app)
    return app
