"""The MQTT component: export to Home Assistant discovery, import others' devices, federate hubs.

One aiomqtt connection (MQTT 5) with a fixed client id and a persistent session, so
commands published at QoS 1 while the hub is away are queued by the broker and
delivered on reconnect. Reconnection backs off exponentially with jitter.

Avoiding storms on reconnect:

* State changes mark an entity dirty; one publisher task drains the dirty set,
  so while disconnected only the latest state per entity is kept, and after a
  reconnect only entities that changed meanwhile are published.
* When the broker still has our session (``session_present``), it also still has
  our subscriptions and retained messages: nothing is re-subscribed except
  foreign state topics (retained values refresh stale mirrors), and configs are
  not republished. Without the session (a broker that lost its store) everything
  is announced again, because its retained messages are gone too.
* Subscriptions use ``no_local`` so the hub does not read back its own messages.

Loop freedom for federation: imported entities are never exported; commands and
state documents carry the origin hub id, and a hub drops what it sent itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ..appliances.adoption import adopt_device
from ..appliances.availability import availability
from ..bus import Event
from ..capabilities import CommandError
from ..context import Context
from ..model import Entity
from ..registry import EVENT_DEVICE_REGISTRY_UPDATED, EVENT_ENTITY_REGISTRY_UPDATED
from ..states import EVENT_STATE_CHANGED, UNKNOWN, State
from .export import (
    ORIGIN_PREFIX,
    ExportTopics,
    discovery_config,
    object_id_for,
    parse_ha_command,
    state_document,
)
from .importer import (
    DiscoveryError,
    ImportSpec,
    StateSource,
    command_messages,
    parse_device_discovery,
    parse_discovery,
    read_source,
    split_discovery_topic,
)
from .settings import MqttSettings, valid_id
from .template import MISSING, TemplateError

if TYPE_CHECKING:
    from ..core import Hub

__all__ = ["MqttBridge"]

_LOGGER = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
QOS_COMMAND = 1
QOS_STATE = 1  # queued for federated peers' persistent sessions while they are away
QOS_CONFIG = 1
PUBLISH_BATCH = 64
IMPORT_PREFIX = "mqtt:"
REPLY_TIMEOUT_S = 8.0  # below the command router's 10 s, so the caller hears the peer's answer
REPLY = "_reply"  # cannot clash with an object id: those always hold a domain before "_"


def _dumps(data: Any) -> bytes:
    # default=str: a driver that stores a set or a datetime in attributes must not stall the publisher.
    return json.dumps(data, separators=(",", ":"), default=str).encode()


class _Client(aiomqtt.Client):
    """aiomqtt does not expose CONNACK's session-present flag; we need it to avoid re-announcing."""

    session_present = False

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any = None) -> None:
        self.session_present = bool(getattr(flags, "session_present", False))
        super()._on_connect(client, userdata, flags, reason_code, properties)


@dataclass(slots=True)
class _Imported:
    spec: ImportSpec
    entity_id: str
    device_id: str
    raw: bytes
    value: Any = UNKNOWN
    attrs: dict[str, Any] = field(default_factory=dict)
    available: dict[str, bool] = field(default_factory=dict)
    context: Context | None = None
    warned: bool = False


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


class MqttBridge:
    """Component ``mqtt``. Settings come from the ``mqtt`` config section unless given."""

    name = "mqtt"

    def __init__(self, settings: MqttSettings | None = None) -> None:
        self._settings = settings
        self.settings = settings or MqttSettings()
        self.hub_id = ""
        self.topics: ExportTopics | None = None
        self.stats = BridgeStats()
        self.connected = asyncio.Event()
        self.skipped: dict[str, str] = {}  # discovery topic -> why it was not adopted
        self._hub: Hub | None = None
        self._client: _Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubs: list[Any] = []
        self._wake = asyncio.Event()
        self._dirty_config: set[str] = set()
        self._dirty_state: set[str] = set()
        self._removed_configs: set[str] = set()
        self._exported: dict[str, str] = {}  # entity_id -> config topic, for removal
        self._by_object: dict[str, str] = {}  # object_id -> exported entity_id
        self._imported: dict[str, _Imported] = {}  # discovery topic (or device topic/component) -> record
        self._device_topics: dict[str, tuple[bytes, set[str]]] = {}  # device discovery topic -> (raw, keys)
        self._imported_by_entity: dict[str, _Imported] = {}
        self._sources: dict[str, list[_Imported]] = {}  # state/availability topic -> records
        self._subscribed: set[str] = set()
        self._last_payload: dict[str, bytes] = {}  # per source topic, replayed to entities adopted later
        self._first_connect = True
        self._publishing = False  # a batch is on its way (benchmarks wait for quiet)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}  # call id -> peer's answer

    # -- lifecycle ------------------------------------------------------------------------
    async def async_start(self, hub: Hub) -> None:
        self._hub = hub
        if self._settings is None:
            self.settings = MqttSettings.from_config(hub.config.get("mqtt"))
        self.hub_id = self.settings.hub_id or self._stored_hub_id(hub)
        self.topics = ExportTopics(self.settings.discovery_prefix, self.settings.base_topic, self.hub_id)
        if self.settings.export:
            self._unsubs.append(hub.bus.listen(EVENT_STATE_CHANGED, self._on_state_changed))
            self._unsubs.append(hub.bus.listen(EVENT_ENTITY_REGISTRY_UPDATED, self._on_entity_registry))
            self._unsubs.append(hub.bus.listen(EVENT_DEVICE_REGISTRY_UPDATED, self._on_device_registry))
        self._task = asyncio.create_task(self._run(), name="mqtt")

    async def async_stop(self) -> None:
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        client = self._client
        if client is not None and self.connected.is_set() and self.topics is not None:
            # A clean disconnect suppresses the will, so say "offline" ourselves.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.publish(self.topics.status, "offline", qos=1, retain=True), 2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for task in list(self._tasks):
            task.cancel()
        self.connected.clear()

    @staticmethod
    def _stored_hub_id(hub: Hub) -> str:
        record = hub.storage.get("mqtt", "hub")
        if record and isinstance(record.get("hub_id"), str) and valid_id(record["hub_id"]):
            return str(record["hub_id"])
        hub_id = f"hub-{uuid.uuid4().hex[:8]}"
        hub.storage.put("mqtt", "hub", {"hub_id": hub_id})
        return hub_id

    # -- connection -----------------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext | None:
        s = self.settings
        if not s.tls:
            return None
        context = ssl.create_default_context(cafile=s.ca_file)
        if s.client_cert and s.client_key:
            context.load_cert_chain(s.client_cert, s.client_key)
        return context

    def _make_client(self) -> _Client:
        s = self.settings
        assert self.topics is not None
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        return _Client(
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
                    self._client = client
                    self.stats.connects += 1
                    delay = self.settings.reconnect_min
                    _LOGGER.info("MQTT connected to %s:%s as %s (session present: %s)", self.settings.host,
                                 self.settings.port, self.hub_id, client.session_present)
                    await self._on_connected(client)
                    self.connected.set()
                    reader = asyncio.create_task(self._reader(client))
                    writer = asyncio.create_task(self._publisher(client))
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
                self._client = None
                self._imported_unavailable()
            if time.monotonic() - started > 60:
                delay = self.settings.reconnect_min
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.settings.reconnect_max)

    async def _subscribe(self, client: _Client, topics: Iterable[str], qos: int, *, no_local: bool = False) -> None:
        options = SubscribeOptions(qos=qos, noLocal=no_local)
        items = [(t, options) for t in topics]
        for start in range(0, len(items), 64):
            await client.subscribe(items[start : start + 64])

    async def _on_connected(self, client: _Client) -> None:
        assert self.topics is not None and self._hub is not None
        s = self.settings
        resumed = client.session_present and not self._first_connect
        self.stats.sessions_resumed += int(resumed)
        if not resumed:
            # "+/set/#" also matches ".../set" itself; subscribing both would deliver commands twice.
            command_topics = [self.topics.set_filter(), self.topics.call_filter(), self._reply_topic()]
            await self._subscribe(client, command_topics, QOS_COMMAND)
            if s.import_ or s.federation:
                prefix = s.discovery_prefix
                await self._subscribe(client, [f"{prefix}/+/+/config", f"{prefix}/+/+/+/config"], QOS_CONFIG,
                                      no_local=True)
            if self._sources:
                await self._subscribe(client, list(self._sources), 1, no_local=True)
        else:
            # The broker kept our subscriptions; only foreign state topics are refreshed (their
            # publishers use QoS 0, which brokers do not queue) to catch changes we missed.
            foreign = [t for t, recs in self._sources.items() if any(r.spec.peer_hub is None for r in recs)]
            if foreign:
                await self._subscribe(client, foreign, 1, no_local=True)
        await client.publish(self.topics.status, "online", qos=1, retain=True)
        # Back from "unavailable": the last known states stand until fresher messages arrive.
        for record in list(self._imported.values()):
            self._write_state(record)
        if s.export and not resumed:
            # Retained configs/states may be gone (fresh broker) or this process is new: announce all.
            self._dirty_config.update(self._exportable_ids())
            self._dirty_state.update(self._exportable_ids())
        self._first_connect = False
        self._wake.set()

    # -- export ---------------------------------------------------------------------------
    def _exportable(self, entity: Entity | None) -> bool:
        return entity is not None and not entity.disabled and not entity.unique_id.startswith(IMPORT_PREFIX)

    def _exportable_ids(self) -> list[str]:
        assert self._hub is not None
        return [e.entity_id for e in self._hub.entities.all() if self._exportable(e)]

    def _on_state_changed(self, event: Event[Any]) -> None:
        entity_id = event.data["entity_id"]
        if entity_id in self._imported_by_entity:
            return  # never re-export what we imported
        self._dirty_state.add(entity_id)
        self._wake.set()

    def _on_entity_registry(self, event: Event[Any]) -> None:
        entity_id = event.data["entity_id"]
        if event.data["action"] == "remove":
            topic = self._exported.pop(entity_id, None)
            if topic is not None:
                self._removed_configs.add(topic)
                self._by_object.pop(object_id_for(entity_id), None)
        else:
            self._dirty_config.add(entity_id)
        self._wake.set()

    def _on_device_registry(self, event: Event[Any]) -> None:
        assert self._hub is not None
        device_id = event.data["device_id"]
        for entity in self._hub.entities.for_device(device_id):
            self._dirty_config.add(entity.entity_id)
        self._wake.set()

    def _config_payload(self, entity: Entity) -> tuple[str, bytes]:
        assert self._hub is not None and self.topics is not None
        hub = self._hub
        device = hub.devices.get(entity.device_id) if entity.device_id else None
        area_id = hub.entities.area_of(entity)
        area = hub.areas.get(area_id) if area_id else None
        config = discovery_config(entity, device, area.name if area else None, self.topics,
                                  str((hub.config.get("hub") or {}).get("name", "qilu-hub")))
        return self.topics.config(entity), _dumps(config)

    async def _publisher(self, client: _Client) -> None:
        assert self._hub is not None and self.topics is not None
        hub = self._hub
        while True:
            await self._wake.wait()
            self._wake.clear()
            messages: list[tuple[str, bytes, int]] = []
            removed, self._removed_configs = self._removed_configs, set()
            messages += [(topic, b"", QOS_CONFIG) for topic in removed]
            configs, self._dirty_config = self._dirty_config, set()
            states, self._dirty_state = self._dirty_state, set()
            for entity_id in configs:
                entity = hub.entities.get(entity_id)
                if not self._exportable(entity):
                    continue
                assert entity is not None
                topic, payload = self._config_payload(entity)
                self._exported[entity_id] = topic
                self._by_object[object_id_for(entity_id)] = entity_id
                messages.append((topic, payload, QOS_CONFIG))
                states.add(entity_id)
            for entity_id in states:
                entity = hub.entities.get(entity_id)
                state = hub.states.get(entity_id)
                if state is None or not self._exportable(entity) or entity_id not in self._exported:
                    continue
                assert entity is not None
                doc = state_document(entity, state, self.hub_id)
                messages.append((self.topics.state(entity_id), _dumps(doc), QOS_STATE))
            self._publishing = True
            try:
                for start in range(0, len(messages), PUBLISH_BATCH):
                    batch = messages[start : start + PUBLISH_BATCH]
                    await asyncio.gather(*(client.publish(t, p, qos=q, retain=True) for t, p, q in batch))
                    self.stats.published += len(batch)
            except aiomqtt.MqttError:
                # Not sent: keep them dirty so the next connection publishes them.
                self._removed_configs |= removed
                self._dirty_config |= {e for e in configs if e in self._exported}
                self._dirty_state |= states
                raise
            finally:
                self._publishing = False

    # -- inbound --------------------------------------------------------------------------
    async def _reader(self, client: _Client) -> None:
        async for message in client.messages:
            self.stats.received += 1
            try:
                self._dispatch(str(message.topic), message.payload)
            except Exception:  # one bad message must not cut the connection
                self.stats.state_errors += 1
                _LOGGER.exception("MQTT message on %s could not be handled", message.topic)

    def _dispatch(self, topic: str, payload: Any) -> None:
        assert self.topics is not None
        data = payload if isinstance(payload, bytes) else str(payload or "").encode()
        own = f"{self.topics.base}/{self.hub_id}/"
        if topic.startswith(own):
            self._on_command_message(topic[len(own):], data)
            return
        records = self._sources.get(topic)
        if records:
            self._last_payload[topic] = data
            for record in list(records):
                self._on_source_message(record, topic, data)
        prefix = self.settings.discovery_prefix + "/"
        if topic.startswith(prefix) and topic.endswith("/config"):
            self._on_discovery(topic, data)

    # -- commands addressed to us ---------------------------------------------------------
    def _reply_topic(self) -> str:
        assert self.topics is not None
        return f"{self.topics.base}/{self.hub_id}/{REPLY}"

    def _on_command_message(self, rest: str, payload: bytes) -> None:
        if rest == REPLY:
            self._on_reply(payload)
            return
        parts = rest.split("/")
        if len(parts) < 2 or parts[1] not in ("set", "call"):
            return  # our own state/status topics when echoed by a broker without no_local
        entity_id = self._by_object.get(parts[0])
        if entity_id is None:
            self.stats.command_errors += 1
            _LOGGER.warning("MQTT command for unknown object %s", parts[0])
            return
        entity = self._hub.entities.get(entity_id) if self._hub else None
        if entity is None:
            return
        reply: tuple[str, str] | None = None
        try:
            if parts[1] == "call":
                reply = self._reply_address(payload)
                command, args, context = self._parse_call(payload)
                if context is None:
                    self.stats.echoes_ignored += 1
                    return
            else:
                field_name = parts[2] if len(parts) > 2 else None
                command, args = parse_ha_command(entity, field_name, payload)
                context = Context("mqtt")
        except CommandError as err:
            self._command_failed(parts[0], entity_id, err, reply)
            return
        self.stats.commands_in += 1
        self._spawn(self._execute(parts[0], entity_id, command, args, context, reply))

    def _reply_address(self, payload: bytes) -> tuple[str, str] | None:
        """Where a federated caller waits for the outcome: (topic, call id), if it asked and looks sane."""
        assert self.topics is not None
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        topic, call_id = data.get("reply_to"), data.get("id")
        if (isinstance(topic, str) and isinstance(call_id, str) and topic.startswith(self.topics.base + "/")
                and topic.endswith("/" + REPLY) and "+" not in topic and "#" not in topic and len(call_id) <= 64):
            return topic, call_id
        return None

    def _parse_call(self, payload: bytes) -> tuple[str, dict[str, Any], Context | None]:
        try:
            data = json.loads(payload)
        except ValueError:
            raise CommandError("invalid_format", "call payload is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("command"), str):
            raise CommandError("invalid_format", "call payload needs a command")
        args = data.get("args") or {}
        if not isinstance(args, dict):
            raise CommandError("invalid_format", "call args must be an object")
        origin = data.get("origin")
        if origin == self.hub_id:
            return data["command"], args, None  # our own command coming back: an echo
        if not isinstance(origin, str) or not valid_id(origin):
            raise CommandError("invalid_format", "call payload needs the origin hub id")
        remote: dict[str, Any] = data["context"] if isinstance(data.get("context"), dict) else {}
        parent = remote.get("id") if isinstance(remote.get("id"), str) else None
        return data["command"], args, Context(f"{ORIGIN_PREFIX}{origin}", parent_id=parent)

    async def _execute(self, object_id: str, entity_id: str, command: str, args: dict[str, Any],
                       context: Context, reply: tuple[str, str] | None = None) -> None:
        assert self._hub is not None
        try:
            await self._hub.commands.async_call(entity_id, command, args, context)
        except CommandError as err:
            self._command_failed(object_id, entity_id, err, reply)
            return
        if reply is not None:
            await self._send_reply(reply, {"ok": True})

    async def _send_reply(self, reply: tuple[str, str], body: dict[str, Any]) -> None:
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(reply[0], json.dumps({"id": reply[1], **body}), qos=QOS_COMMAND)

    def _on_reply(self, payload: bytes) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            future = self._replies.get(data["id"])
            if future is not None and not future.done():
                future.set_result(data)

    def _command_failed(self, object_id: str, entity_id: str, err: CommandError,
                        reply: tuple[str, str] | None = None) -> None:
        self.stats.command_errors += 1
        self.stats.last_error = f"{entity_id}: {err.code}: {err.message}"
        _LOGGER.warning("MQTT command for %s refused: %s (%s)", entity_id, err.message, err.code)
        client = self._client
        if client is not None and self.topics is not None:
            body = json.dumps({"ok": False, "code": err.code, "message": err.message})
            self._spawn(client.publish(f"{self.topics.base}/{self.hub_id}/{object_id}/result", body, qos=0))
            if reply is not None:
                self._spawn(self._send_reply(reply, {"ok": False, "code": err.code, "message": err.message}))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.debug("MQTT background task failed: %r", task.exception())

    # -- discovery of others --------------------------------------------------------------
    def _on_discovery(self, topic: str, payload: bytes) -> None:
        where = split_discovery_topic(self.settings.discovery_prefix, topic)
        if where is not None and where[0] == "device":
            self._on_device_discovery(topic, payload)
            return
        existing = self._imported.get(topic)
        if not payload:
            if existing is not None:
                self._forget(existing)
            self.skipped.pop(topic, None)
            return
        if existing is not None and existing.raw == payload:
            return
        try:
            data = json.loads(payload)
            if not isinstance(data, dict):
                raise DiscoveryError("payload is not a JSON object")
            spec = parse_discovery(self.settings.discovery_prefix, topic, data)
        except (ValueError, DiscoveryError) as err:
            self._skip(topic, str(err))
            return
        if not self._wanted(spec):
            return
        if existing is not None:
            self._forget(existing, remove_entity=False)
        self._adopt(topic, spec, payload, existing)

    def _wanted(self, spec: ImportSpec) -> bool:
        if spec.peer_hub is not None:
            if spec.peer_hub == self.hub_id:
                self.stats.echoes_ignored += 1
                return False
            return self.settings.federation
        return self.settings.import_

    def _on_device_discovery(self, topic: str, payload: bytes) -> None:
        previous_raw, previous_keys = self._device_topics.pop(topic, (b"", set()))
        if payload and payload == previous_raw:
            self._device_topics[topic] = (previous_raw, previous_keys)
            return
        entries: list[tuple[str, ImportSpec | DiscoveryError]] = []
        if payload:
            try:
                data = json.loads(payload)
                if not isinstance(data, dict):
                    raise DiscoveryError("payload is not a JSON object")
                entries = parse_device_discovery(self.settings.discovery_prefix, topic, data)
            except (ValueError, DiscoveryError) as err:
                self._skip(topic, str(err))
        keys = {key for key, _ in entries}
        for key in previous_keys - keys:  # components dropped from the device, or the device removed
            record = self._imported.get(key)
            if record is not None:
                self._forget(record)
        for key, item in entries:
            if isinstance(item, DiscoveryError):
                self._skip(key, str(item))
                continue
            if not self._wanted(item):
                continue
            existing = self._imported.get(key)
            raw = json.dumps(item.unique_id).encode() + payload
            if existing is not None and existing.raw == raw:
                continue
            if existing is not None:
                self._forget(existing, remove_entity=False)
            self._adopt(key, item, raw, existing)
        if payload:
            self._device_topics[topic] = (payload, keys)

    def _skip(self, topic: str, reason: str) -> None:
        self.stats.discovery_skipped += 1
        if self.skipped.get(topic) != reason:
            _LOGGER.info("Not adopting %s: %s", topic, reason)
        self.skipped[topic] = reason

    def _adopt(self, topic: str, spec: ImportSpec, raw: bytes, previous: _Imported | None = None) -> None:
        assert self._hub is not None
        hub = self._hub
        area_id = hub.areas.async_get_or_create(spec.suggested_area).id if spec.suggested_area else None
        source = f"mqtt:{spec.peer_hub}" if spec.peer_hub else "mqtt"
        device = adopt_device(
            hub, source=source, name=spec.device_name, identifiers=spec.device_identifiers,
            connections=spec.device_connections, manufacturer=spec.manufacturer, model=spec.model,
            sw_version=spec.sw_version, area_id=area_id, driver="mqtt",
        )
        suggested = spec.object_id
        if spec.peer is not None:  # namespaced by hub id: hub_b's light.kitchen → light.hub_b_kitchen
            suggested = f"{spec.peer_hub} {str(spec.peer.get('entity_id', spec.name)).split('.', 1)[-1]}"
        entity = hub.entities.async_get_or_create(
            unique_id=f"{IMPORT_PREFIX}{spec.unique_id}", capabilities=spec.capabilities, name=spec.name,
            device_id=device.id, entity_category=spec.entity_category, suggested_object_id=suggested,
        )
        record = _Imported(spec, entity.entity_id, device.id, raw)
        if previous is not None and previous.entity_id == entity.entity_id:  # a changed config keeps the state
            record.value, record.attrs = previous.value, previous.attrs
        self._imported[topic] = record
        self._imported_by_entity[entity.entity_id] = record
        hub.commands.register_entity(entity.entity_id, self._imported_command)
        topics = [s.topic for s in spec.sources] + [a[0] for a in spec.availability]
        new = []
        for t in topics:
            records = self._sources.setdefault(t, [])
            if record not in records:
                records.append(record)
            if t not in self._subscribed:
                new.append(t)
                self._subscribed.add(t)
        self.skipped.pop(topic, None)
        if hub.states.get(entity.entity_id) is None:
            hub.states.async_set(entity.entity_id, UNKNOWN, {}, Context("mqtt"))
        # Several entities often share one state topic (zigbee2mqtt): a later one has missed
        # the retained message that the first subscription brought.
        for t in dict.fromkeys(topics):
            if t in self._last_payload:
                self._on_source_message(record, t, self._last_payload[t])
        client = self._client
        if new and client is not None:
            self._spawn(self._subscribe(client, new, 1, no_local=True))

    def _forget(self, record: _Imported, remove_entity: bool = True) -> None:
        assert self._hub is not None
        self._imported.pop(record.spec.discovery_topic, None)
        if self._imported_by_entity.get(record.entity_id) is record:
            del self._imported_by_entity[record.entity_id]
        gone = []
        for t, records in list(self._sources.items()):
            if record in records:
                records.remove(record)
            if not records:
                del self._sources[t]
                gone.append(t)
        for t in gone:
            self._subscribed.discard(t)
            self._last_payload.pop(t, None)
        client = self._client
        if gone and client is not None:
            self._spawn(client.unsubscribe(gone))
        if remove_entity:
            self._hub.states.async_remove(record.entity_id, Context("mqtt"))
            self._hub.entities.async_remove(record.entity_id)

    def _on_source_message(self, record: _Imported, topic: str, payload: bytes) -> None:
        assert self._hub is not None
        spec = record.spec
        changed = False
        for avail_topic, template, on, off in spec.availability:
            if avail_topic != topic:
                continue
            try:
                value = template.render(payload) if template is not None else payload.decode("utf-8", "replace")
            except TemplateError:
                continue
            if value is not MISSING and str(value) in (on, off):
                record.available[topic] = str(value) == on
                changed = True
        for source in spec.sources:
            if source.topic != topic:
                continue
            try:
                changed |= self._apply_source(record, source, payload)
            except TemplateError as err:
                self.stats.state_errors += 1
                if not record.warned:
                    record.warned = True
                    _LOGGER.warning("MQTT state for %s not understood: %s", record.entity_id, err)
        if changed:
            self._write_state(record)

    def _apply_source(self, record: _Imported, source: StateSource, payload: bytes) -> bool:
        if source.field == "federated":
            if not payload:
                return False
            try:
                doc = json.loads(payload)
            except ValueError:
                raise TemplateError("peer state is not JSON") from None
            if not isinstance(doc, dict) or "value" not in doc:
                raise TemplateError("peer state lacks a value")
            if doc.get("hub") == self.hub_id:
                self.stats.echoes_ignored += 1
                return False
            origin = doc.get("origin") if isinstance(doc.get("origin"), str) else record.spec.peer_hub
            remote: dict[str, Any] = doc["context"] if isinstance(doc.get("context"), dict) else {}
            record.value = doc["value"]
            record.attrs = dict(doc.get("attributes") or {})
            record.context = Context(f"{ORIGIN_PREFIX}{origin}",
                                     parent_id=remote.get("id") if isinstance(remote.get("id"), str) else None)
            return True
        value = read_source(record.spec, source, payload, record.value, record.attrs)
        if value is not MISSING:
            record.value = value
        record.context = Context("mqtt")
        return True

    def _is_available(self, record: _Imported) -> bool:
        flags = record.available
        if not flags:
            return True
        if record.spec.availability_mode == "all":
            return all(flags.values())
        if record.spec.availability_mode == "any":
            return any(flags.values())
        return all(flags.values())  # "latest": each topic keeps its last word; any offline means offline

    def _imported_unavailable(self) -> None:
        """Without the broker nothing imported can be read or commanded (as Home Assistant shows it)."""
        if self._hub is None:
            return
        entity_ids = [r.entity_id for r in self._imported.values() if self._hub.states.get(r.entity_id) is not None]
        availability(self._hub).mark_unavailable(entity_ids, Context("mqtt"))

    def _write_state(self, record: _Imported) -> None:
        assert self._hub is not None
        if not self._is_available(record):  # its availability topic says offline: the hub's one rule applies
            availability(self._hub).mark_unavailable([record.entity_id], record.context or Context("mqtt"))
            return
        value = record.value
        if value is None:
            value = UNKNOWN
        self._hub.states.async_set(record.entity_id, value, dict(record.attrs), record.context or Context("mqtt"))

    async def _imported_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        record = self._imported_by_entity.get(entity.entity_id)
        client = self._client
        if record is None:
            raise CommandError("unavailable", f"{entity.entity_id} is no longer announced on MQTT")
        if client is None or not self.connected.is_set():
            raise CommandError("unavailable", "the MQTT broker is not connected")
        spec = record.spec
        if not self._is_available(record):
            raise CommandError("unavailable", f"{entity.entity_id} is offline")
        if spec.peer_hub is not None:
            await self._peer_command(client, record, command, args, context)
            return
        try:
            for topic, payload in command_messages(spec, command, args, record.value):
                await client.publish(topic, payload, qos=QOS_COMMAND)
        except aiomqtt.MqttError as err:
            raise CommandError("unavailable", f"MQTT publish failed: {err}") from None
        self.stats.commands_out += 1

    async def _peer_command(self, client: _Client, record: _Imported, command: str, args: dict[str, Any],
                            context: Context) -> None:
        """Run a command in the peer hub that owns the entity, and wait for its verdict."""
        peer = record.spec.peer_hub
        origin = context.origin[len(ORIGIN_PREFIX):] if context.origin.startswith(ORIGIN_PREFIX) else self.hub_id
        call_id = uuid.uuid4().hex
        body = {"command": command, "args": args, "origin": origin, "id": call_id, "reply_to": self._reply_topic(),
                "context": {"id": context.id, "origin": context.origin}}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[call_id] = future
        try:
            await client.publish(record.spec.options["call_topic"], json.dumps(body, separators=(",", ":")),
                                 qos=QOS_COMMAND)
            self.stats.commands_out += 1
            answer = await asyncio.wait_for(future, REPLY_TIMEOUT_S)
        except aiomqtt.MqttError as err:
            raise CommandError("unavailable", f"MQTT publish failed: {err}") from None
        except TimeoutError:
            raise CommandError("timeout", f"hub {peer} did not answer within {REPLY_TIMEOUT_S:g} s") from None
        finally:
            self._replies.pop(call_id, None)
        if not answer.get("ok"):
            code = answer.get("code") if isinstance(answer.get("code"), str) else "driver_error"
            raise CommandError(str(code), f"hub {peer}: {answer.get('message', 'refused')}")

    # -- introspection --------------------------------------------------------------------
    def imported(self) -> dict[str, str]:
        """Discovery topic → entity id of everything adopted from the broker."""
        return {topic: record.entity_id for topic, record in self._imported.items()}

    def exported(self) -> dict[str, str]:
        return dict(self._exported)

    def state_of(self, entity_id: str) -> State | None:
        return self._hub.states.get(entity_id) if self._hub else None
