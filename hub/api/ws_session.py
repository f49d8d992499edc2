"""What the two WebSocket protocols share: the auth handshake and the read loop.

Home Assistant's protocol (JSON in text frames) and the native stream (msgpack in
binary frames) differ in framing and wording only; a :class:`Framing` holds those
differences, so the login limiting, rate limiting and bad-frame handling are one code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import WSCloseCode, WSMsgType, web

from .auth import Principal
from .input_checks import BadInput, log_refused
from .limits import CLOSE_TIMEOUT, CURRENT_SLOT, RateLimit, close_or_abort

if TYPE_CHECKING:
    from .app import ApiServer


class Session(Protocol):
    def send(self, payload: Any) -> None: ...

    def handle(self, data: Any) -> None: ...


class EndableSession:
    """What both connection classes share for being ended by the hub (see :class:`~.sessions.SessionGuard`)."""

    __slots__ = ()
    # Set by the subclass (its own __slots__); declared here for the type checker.
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None

    def stop(self) -> None:
        raise NotImplementedError

    def end(self, reason: bytes) -> asyncio.Task[None]:
        """End the session from the hub's side (its token was revoked or has expired): no further message is
        acted on, calls in flight are cancelled, and the socket is closed (aborted if the client will not
        take the close frame)."""
        self.stop()
        return asyncio.get_running_loop().create_task(close_or_abort(self.ws, self.transport, reason))


@dataclass(frozen=True, slots=True)
class Framing:
    frame_type: WSMsgType  # the frame type this protocol speaks
    decode: Callable[[Any], Any]  # raises on malformed input
    send: Callable[[web.WebSocketResponse, Mapping[str, Any]], Awaitable[None]]
    error: Callable[[Any, str, str], Any]  # (id, code, message) -> an encoded error result
    # auth_timeout (with {seconds}), auth_format, auth_blocked, auth_invalid, wrong_frame, bad_frame, protocol
    texts: Mapping[str, str]


async def authenticate(api: ApiServer, ws: web.WebSocketResponse, address: str, framing: Framing) -> Principal | None:
    """Read the auth message; on failure answer auth_invalid and close. Failed logins are rate limited per address.

    The socket counts as unauthenticated (:class:`~.limits.SocketSlots`) until this returns a principal.
    """
    texts = framing.texts

    async def invalid(message: str) -> None:
        # A client that stopped reading does not answer the close either: drop it rather than wait for it.
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await framing.send(ws, {"type": "auth_invalid", "message": message})
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=message.encode()[:120])

    try:
        message = await ws.receive(timeout=api.auth_timeout)
    except TimeoutError:
        await invalid(texts["auth_timeout"].format(seconds=api.auth_timeout))
        return None
    if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None  # closed or errored before authenticating
    data = None
    if message.type == framing.frame_type:
        with contextlib.suppress(Exception):
            data = framing.decode(message.data)
    if not isinstance(data, dict) or data.get("type") != "auth" or not isinstance(data.get("access_token"), str):
        await invalid(texts["auth_format"])
        return None
    if api.login_limiter.blocked(address):
        await invalid(texts["auth_blocked"])
        return None
    principal = api.principal_for_socket(data["access_token"])
    if principal is None:
        api.login_limiter.failed(address)
        await invalid(texts["auth_invalid"])
        return None
    slot = CURRENT_SLOT.get()
    if slot is not None:
        slot.authenticated()
    return principal


async def serve(ws: web.WebSocketResponse, session: Session, framing: Framing, writer: asyncio.Task[None],
                peer: str = "?") -> None:
    """Decode frames and hand them to the session until the socket closes; then stop its writer."""
    limit = RateLimit()
    try:
        async for message in ws:
            if message.type == framing.frame_type:
                if not limit.allow():
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Too many messages")
                    break
                try:
                    data = framing.decode(message.data)
                except BadInput as err:  # decodes, but nested too deeply or with text that has no UTF-8 form
                    log_refused(framing.texts.get("protocol", "WebSocket"), peer, str(err))
                    session.send(framing.error(None, "invalid_format", f"{framing.texts['bad_frame']}: {err}"))
                    continue
                except Exception as err:
                    session.send(framing.error(None, "invalid_format", f"{framing.texts['bad_frame']}: "
                                                                       f"{type(err).__name__}"))
                    continue
                session.handle(data)
            elif message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                session.send(framing.error(None, "invalid_format", framing.texts["wrong_frame"]))
            elif message.type == WSMsgType.ERROR:
                break
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await writer
