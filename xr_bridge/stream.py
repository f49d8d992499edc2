"""Client for the hub's msgpack stream (ws://HOST:PORT/api/stream, one msgpack map per binary frame).

Protocol: docs/stream.md on main. auth -> subscribe -> snapshot + deltas; call -> result; ping -> pong.
Reconnects with exponential backoff; a refused token is fatal (retrying would not help)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import random
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgpack

_LOG = logging.getLogger(__name__)


class AuthError(Exception):
    """The hub refused the token."""


class CallError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class StreamEvent:
    kind: str  # snapshot | delta | poses | online | offline | auth_failed | result
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    token: Any = None
    ok: bool = True
    error: str = ""
    poses: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # "device:ID" / "area:ID" -> pose


class StreamClient:
    """asyncio stream client. `on_event` is called from the event loop thread for every StreamEvent."""

    def __init__(
        self,
        url: str,
        token: str,
        on_event: Callable[[StreamEvent], None],
        *,
        entities: list[str] | None = None,
        backoff_min: float = 0.25,
        backoff_max: float = 8.0,
        heartbeat: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self.ssl_context = ssl_context  # wss:// to a hub with its own CA (hub.tls: auto): trust that CA
        self.token = token
        self.on_event = on_event
        self.entities = entities
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.heartbeat = heartbeat
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stop = asyncio.Event()
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def _send(self, msg: dict[str, Any]) -> None:
        if self._ws is None or self._ws.closed:
            raise ConnectionError("not connected to the hub")
        await self._ws.send_bytes(msgpack.packb(msg, use_bin_type=True))

    async def call(
        self, entity_id: str, command: str, args: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> None:
        """Send a command; raises CallError if the hub refuses it, ConnectionError if offline."""
        mid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[mid] = fut
        try:
            await self._send(
                {"type": "call", "id": mid, "entity_id": entity_id, "command": command, "args": args or {}}
            )
            res = await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(mid, None)
        if not res.get("success"):
            err = res.get("error") or {}
            raise CallError(str(err.get("code", "error")), str(err.get("message", "")))

    def stop(self) -> None:
        self._stop.set()
        if self._ws is not None and not self._ws.closed:
            asyncio.get_running_loop().create_task(self._ws.close())

    async def run(self) -> None:
        """Connect, and reconnect with backoff until stop(); raises AuthError on a refused token."""
        delay = self.backoff_min
        async with aiohttp.ClientSession() as http:
            while not self._stop.is_set():
                try:
                    await self._session(http)
                    delay = self.backoff_min  # a session that got going resets the backoff
                except AuthError:
                    self.on_event(StreamEvent("auth_failed"))
                    raise
                except (TimeoutError, aiohttp.ClientError, OSError, ConnectionError) as e:
                    _LOG.info("hub stream: %s", e or type(e).__name__)
                finally:
                    self._fail_pending()
                if self._stop.is_set():
                    break
                self.on_event(StreamEvent("offline"))
                # jitter keeps many clients from reconnecting in lockstep after a hub restart
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay * (0.75 + random.random() / 2))
                delay = min(self.backoff_max, delay * 2)

    def _fail_pending(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("hub connection lost"))
        self._pending.clear()

    async def _session(self, http: aiohttp.ClientSession) -> None:
        async with http.ws_connect(self.url, heartbeat=self.heartbeat, max_msg_size=0,
                                   ssl=self.ssl_context if self.ssl_context is not None else True) as ws:
            self._ws = ws
            try:
                await self._send({"type": "auth", "access_token": self.token})
                first = await ws.receive(timeout=10)
                msg = self._decode(first)
                if msg is None or msg.get("type") != "auth_ok":
                    if msg is not None and msg.get("type") == "auth_invalid":
                        raise AuthError(str(msg.get("message", "invalid token")))
                    raise ConnectionError(f"unexpected reply to auth: {msg}")
                # poses: device/area placement from the hub's device model (hubs without it ignore the key)
                sub: dict[str, Any] = {"type": "subscribe", "id": next(self._ids), "poses": True}
                if self.entities is not None:
                    sub["entities"] = self.entities
                await self._send(sub)
                self.connects += 1
                async for raw in ws:
                    m = self._decode(raw)
                    if m is not None:
                        self._dispatch(m)
            finally:
                self._ws = None

    @staticmethod
    def _decode(raw: aiohttp.WSMessage) -> dict[str, Any] | None:
        if raw.type == aiohttp.WSMsgType.BINARY:
            m = msgpack.unpackb(raw.data, raw=False)
            return m if isinstance(m, dict) else None
        if raw.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            raise ConnectionError("hub closed the stream")
        return None

    def _dispatch(self, m: dict[str, Any]) -> None:
        t = m.get("type")
        if t == "snapshot":
            self.on_event(StreamEvent("snapshot", dict(m.get("states") or {})))
            self.on_event(StreamEvent("online"))
        elif t == "delta":
            self.on_event(StreamEvent("delta", dict(m.get("states") or {}), list(m.get("removed") or [])))
        elif t == "poses":
            poses: dict[str, dict[str, Any] | None] = {}
            for kind, prefix in (("devices", "device"), ("areas", "area")):
                items = m.get(kind)
                if isinstance(items, dict):
                    poses.update({f"{prefix}:{k}": v if isinstance(v, dict) else None for k, v in items.items()})
            self.on_event(StreamEvent("poses", poses=poses))
        elif t == "result":
            fut = self._pending.get(int(m.get("id", -1)))
            if fut is not None and not fut.done():
                fut.set_result(m)


class StreamThread:
    """Runs a StreamClient on its own event loop thread, so the blocking OpenXR frame loop never waits on I/O.

    The frame loop drains `events` once per frame and sends commands with `call` (fire and forget; the
    outcome arrives as a `result` event carrying the caller's token)."""

    def __init__(self, url: str, token: str, entities: list[str] | None = None, **kw: Any) -> None:
        self.events: queue.SimpleQueue[StreamEvent] = queue.SimpleQueue()
        self.loop = asyncio.new_event_loop()
        self.client = StreamClient(url, token, self.events.put, entities=entities, **kw)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="hub-stream", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.client.run())
        except BaseException as e:  # surfaced to the frame loop (auth failure ends the bridge)
            self.error = e
        finally:
            self.loop.close()

    def call(self, token: Any, entity_id: str, command: str, args: dict[str, Any]) -> None:
        async def go() -> None:
            try:
                await self.client.call(entity_id, command, args)
                self.events.put(StreamEvent("result", token=token, ok=True))
            except (TimeoutError, CallError, ConnectionError) as e:
                self.events.put(StreamEvent("result", token=token, ok=False, error=str(e) or type(e).__name__))

        if not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(go(), self.loop)

    def drain(self) -> list[StreamEvent]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.client.stop)
            self._thread.join(timeout)
