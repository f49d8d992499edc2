"""The bridge's one broker connection: the aiomqtt client, reconnection with backoff, subscriptions.

One aiomqtt connection (MQTT 5) with a fixed client id and a persistent session, so
commands published at QoS 1 while the hub is away are queued by the broker and
delivered on reconnect. Reconnection backs off exponentially with jitter; a connection
that lasted a minute starts the backoff again from the bottom.

What the connection is *for* is the wiring's business (``bridge.py``): it is told
through :class:`ConnectionHandler` when a session starts, each message, and when the
session ends, and it runs the handler's publisher alongside the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from .export import PUBLISH_BATCH, ExportTopics
from .settings import MqttSettings

__all__ = ["PUBLISH_BATCH", "BridgeStats", "ConnectionHandler", "MqttClient", "MqttConnection"]

_LOGGER = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
SUBSCRIBE_BATCH = 64


class MqttClient(aiomqtt.Client):
    """aiomqtt does not expose CONNACK's session-present flag; we need it to avoid re-announcing."""

    session_present = False

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any = None) -> None:
        self.session_present = bool(getattr(flags, "session_present", False))
        super()._on_connect(client, userdata, flags, reason_code, properties)


@dataclass(slots=True)
class BridgeStats:
    connects: int = 0
    sessions_resumed: int = 0
    published: int = 0
    received: int = 0
    commands_in: int = 0
    commands_out: int = 0
    command_errors: int = 0
    echoes_ignored: int = 0
    discovery_skipped: int = 0
    state_errors: int = 0
    last_error: str | None = None


class ConnectionHandler(Protocol):
    """What the connection calls back; the bridge implements it."""

    async def on_session(self, client: MqttClient) -> None:
        """A connection is up: subscribe and announce before ``connected`` is set."""

    def on_message(self, topic: str, payload: bytes) -> None:
        """One message; exceptions are counted and logged, never end the connection."""

    async def publisher(self, client: MqttClient) -> None:
        """Runs as long as the connection does; an exception ends the connection."""

    def on_disconnected(self) -> None:
        """The connection is gone (or never came up)."""


class MqttConnection:
    """Keeps one client connected to the broker and runs the handler over it."""

    __slots__ = ("_handler", "_run_task", "_tasks", "client", "connected", "hub_id", "settings", "stats",
                 "topics")

    def __init__(self, settings: MqttSettings, hub_id: str, topics: ExportTopics, stats: BridgeStats,
                 connected: asyncio.Event, handler: ConnectionHandler) -> None:
        self.settings = settings
        self.hub_id = hub_id
        self.topics = topics
        self.stats = stats
        self.connected = connected
        self.client: MqttClient | None = None
        self._handler = handler
        self._run_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        self._run_task = asyncio.create_task(self._run(), name="mqtt")

    async def stop(self) -> None:
        client = self.client
        if client is not None and self.connected.is_set():
            # A clean disconnect suppresses the will, so say "offline" ourselves.
            with contextlib.suppress(Exception):  # the broker may already be gone; stopping goes on
                await asyncio.wait_for(client.publish(self.topics.status, "offline", qos=1, retain=True), 2.0)
        if self._run_task is not None:
            self._run_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._run_task
            self._run_task = None
        for task in list(self._tasks):
            task.cancel()
        self.connected.clear()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a publish/subscribe in the background; cancelled with the connection's owner."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.debug("MQTT background task failed: %r", task.exception())

    @staticmethod
    async def subscribe(client: MqttClient, topics: Iterable[str], qos: int, *, no_local: bool = False) -> None:
        options = SubscribeOptions(qos=qos, noLocal=no_local)
        items = [(t, options) for t in topics]
        for start in range(0, len(items), SUBSCRIBE_BATCH):
            await client.subscribe(items[start : start + SUBSCRIBE_BATCH])

    def _tls_context(self) -> ssl.SSLContext | None:
        s = self.settings
        if not s.tls:
            return None
        context = ssl.create_default_context(cafile=s.ca_file)
        if s.client_cert and s.client_key:
            context.load_cert_chain(s.client_cert, s.client_key)
        return context

    def _make_client(self) -> MqttClient:
        s = self.settings
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        return MqttClient(
            s.host, s.port,
            username=s.username, password=s.password,
            identifier=s.client_id or f"qilu-{self.hub_id}",
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=properties,
            will=aiomqtt.Will(self.topics.status, "offline", qos=1, retain=True),
            keepalive=s.keepalive,
            tls_context=self._tls_context(),
            timeout=10,
            max_inflight_messages=PUBLISH_BATCH,
        )

    async def _run(self) -> None:
        delay = self.settings.reconnect_min
        while True:
            started = time.monotonic()
            try:
                async with self._make_client() as client:
                    client.pending_calls_threshold = PUBLISH_BATCH * 4  # batches are expected, not a leak
                    self.client = client
                    self.stats.connects += 1
                    delay = self.settings.reconnect_min
                    _LOGGER.info("MQTT connected to %s:%s as %s (session present: %s)", self.settings.host,
                                 self.settings.port, self.hub_id, client.session_present)
                    await self._handler.on_session(client)
                    self.connected.set()
                    reader = asyncio.create_task(self._reader(client))
                    writer = asyncio.create_task(self._handler.publisher(client))
                    try:
                        done, _ = await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
                        for task in done:
                            task.result()
                    finally:
                        for task in (reader, writer):
                            task.cancel()
                        await asyncio.gather(reader, writer, return_exceptions=True)
            except asyncio.CancelledError:
                raise
            except aiomqtt.MqttError as err:
                self.stats.last_error = str(err)
                _LOGGER.warning("MQTT connection to %s:%s lost or refused: %s; retrying in %.1fs",
                                self.settings.host, self.settings.port, err, delay)
            except (OSError, ssl.SSLError) as err:  # unreadable CA/certificate files: say which, no traceback
                self.stats.last_error = f"TLS setup failed: {err}"
                _LOGGER.error("MQTT TLS setup failed: %s (ca_file=%s, client_cert=%s); retrying in %.1fs",
                              err, self.settings.ca_file, self.settings.client_cert, delay)
            except Exception as err:  # a bug here must not end the bridge for good
                self.stats.last_error = f"{type(err).__name__}: {err}"
                _LOGGER.exception("MQTT bridge failed; retrying in %.1fs", delay)
            finally:
                self.connected.clear()
                self.client = None
                self._handler.on_disconnected()
            if time.monotonic() - started > 60:
                delay = self.settings.reconnect_min
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.settings.reconnect_max)

    async def _reader(self, client: MqttClient) -> None:
        async for message in client.messages:
            self.stats.received += 1
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload or "").encode()
            try:
                self._handler.on_message(str(message.topic), data)
            except Exception:  # one bad message must not cut the connection
                self.stats.state_errors += 1
                _LOGGER.exception("MQTT message on %s could not be handled", message.topic)
