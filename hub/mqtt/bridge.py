"""The MQTT component: wires the broker connection to export, import and federation.

The parts, each in its own module:

* ``connection.py`` — one aiomqtt client with a persistent session, reconnection with backoff;
* ``export.py`` — our entities in Home Assistant's discovery format, published from dirty sets;
* ``imports.py`` (parsing in ``importer.py``) — others' devices adopted, mirrored and commanded;
* ``federation.py`` — commands and replies between qilu hubs, peers' state documents;
* ``zigbee2mqtt.py`` (parsing in ``z2m_exposes.py``) — zigbee2mqtt's own topics read natively.

This module decides what a session subscribes to and routes each message and each command
addressed to us. Avoiding storms on reconnect: when the broker still has our session
(``session_present``), it also still has our subscriptions and retained messages: nothing is
re-subscribed except foreign state topics (retained values refresh stale mirrors), and configs are
not republished. Without the session (a broker that lost its store) everything is announced again,
because its retained messages are gone too. Subscriptions use ``no_local`` so the hub does not read
back its own messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from ..capabilities import CommandError
from ..context import Context
from .connection import BridgeStats, MqttClient, MqttConnection
from .export import Exporter, ExportTopics, parse_ha_command
from .federation import QOS_COMMAND, REPLY, Federation
from .imports import MqttImports
from .settings import MqttSettings, valid_id
from .zigbee2mqtt import Zigbee2Mqtt

if TYPE_CHECKING:
    from ..core import Hub

__all__ = ["BridgeStats", "MqttBridge"]

_LOGGER = logging.getLogger(__name__)

QOS_CONFIG = 1


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
        self._hub: Hub | None = None
        self._conn: MqttConnection | None = None
        self._export: Exporter | None = None
        self._imports: MqttImports | None = None
        self._federation: Federation | None = None
        self._z2m: Zigbee2Mqtt | None = None
        self._first_connect = True

    # -- lifecycle ------------------------------------------------------------------------
    async def async_start(self, hub: Hub) -> None:
        self._hub = hub
        if self._settings is None:
            self.settings = MqttSettings.from_config(hub.config.get("mqtt"))
        self.hub_id = self.settings.hub_id or self._stored_hub_id(hub)
        self.topics = topics = ExportTopics(self.settings.discovery_prefix, self.settings.base_topic, self.hub_id)
        self._conn = MqttConnection(self.settings, self.hub_id, topics, self.stats, self.connected, self)
        self._federation = Federation(topics, self.stats)
        self._imports = imports = MqttImports(hub, self._conn, self._federation)
        if self.settings.import_ and self.settings.zigbee2mqtt:
            self._z2m = z2m = Zigbee2Mqtt(hub, self._conn, self.settings.zigbee2mqtt_base_topic,
                                          imports.claim_zigbee, imports.reads)
            imports.keep_subscribed = z2m.reads
        self._export = Exporter(hub, topics, self.stats, self._is_imported)
        if self.settings.export:
            self._export.start()
        self._conn.start()

    async def async_stop(self) -> None:
        if self._export is not None:
            self._export.stop()
        if self._conn is not None:
            await self._conn.stop()

    def _is_imported(self, entity_id: str) -> bool:
        """Mirrored from the broker (HA discovery or zigbee2mqtt): never exported back to it."""
        return (self._imports is not None and self._imports.is_imported(entity_id)) or (
            self._z2m is not None and self._z2m.is_imported(entity_id))

    @staticmethod
    def _stored_hub_id(hub: Hub) -> str:
        record = hub.storage.get("mqtt", "hub")
        if record and isinstance(record.get("hub_id"), str) and valid_id(record["hub_id"]):
            return str(record["hub_id"])
        hub_id = f"hub-{uuid.uuid4().hex[:8]}"
        hub.storage.put("mqtt", "hub", {"hub_id": hub_id})
        return hub_id

    # -- the connection's handler -----------------------------------------------------------
    async def on_session(self, client: MqttClient) -> None:
        assert self.topics is not None and self._imports is not None and self._export is not None
        assert self._federation is not None
        imports = self._imports
        subscribe = MqttConnection.subscribe
        resumed = client.session_present and not self._first_connect
        self.stats.sessions_resumed += int(resumed)
        if not resumed:
            # "+/set/#" also matches ".../set" itself; subscribing both would deliver commands twice.
            command_topics = [self.topics.set_filter(), self.topics.call_filter(), self._federation.reply_topic]
            await subscribe(client, command_topics, QOS_COMMAND)
            if self._z2m is not None:  # before discovery: native claims come first, so fewer adopt-and-drop
                await subscribe(client, self._z2m.bridge_topics() + self._z2m.device_topics(), 1, no_local=True)
            if imports.wanted:
                await subscribe(client, imports.discovery_filters(), QOS_CONFIG, no_local=True)
            sources = imports.source_topics()
            if sources:
                await subscribe(client, sources, 1, no_local=True)
        else:
            # The broker kept our subscriptions; only foreign state topics are refreshed (their
            # publishers use QoS 0, which brokers do not queue) to catch changes we missed.
            foreign = imports.source_topics(foreign_only=True)
            if self._z2m is not None:
                foreign += self._z2m.device_topics()
            if foreign:
                await subscribe(client, foreign, 1, no_local=True)
        await client.publish(self.topics.status, "online", qos=1, retain=True)
        imports.on_connected()
        if self._z2m is not None:
            self._z2m.on_connected()
        if self.settings.export and not resumed:
            self._export.announce_all()
        self._first_connect = False
        self._export.wake()

    async def publisher(self, client: MqttClient) -> None:
        assert self._export is not None
        await self._export.publisher(client)

    def on_disconnected(self) -> None:
        if self._imports is not None:
            self._imports.on_disconnected()
        if self._z2m is not None:
            self._z2m.on_disconnected()

    def on_message(self, topic: str, payload: bytes) -> None:
        assert self.topics is not None and self._imports is not None
        own = f"{self.topics.base}/{self.hub_id}/"
        if topic.startswith(own):
            self._on_command_message(topic[len(own):], payload)
            return
        self._imports.on_message(topic, payload)
        if self._z2m is not None:  # both: topics such as bridge/state may be read by each
            self._z2m.on_message(topic, payload)

    # -- commands addressed to our exported entities ------------------------------------------
    def _on_command_message(self, rest: str, payload: bytes) -> None:
        assert self._federation is not None and self._export is not None and self._conn is not None
        federation = self._federation
        if rest == REPLY:
            federation.on_reply(payload)
            return
        parts = rest.split("/")
        if len(parts) < 2 or parts[1] not in ("set", "call"):
            return  # our own state/status topics when echoed by a broker without no_local
        entity_id = self._export.entity_for_object(parts[0])
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
                reply = federation.reply_address(payload)
                command, args, context = federation.parse_call(payload)
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
        self._conn.spawn(self._execute(parts[0], entity_id, command, args, context, reply))

    async def _execute(self, object_id: str, entity_id: str, command: str, args: dict[str, Any],
                       context: Context, reply: tuple[str, str] | None = None) -> None:
        assert self._hub is not None
        try:
            await self._hub.commands.async_call(entity_id, command, args, context)
        except CommandError as err:
            self._command_failed(object_id, entity_id, err, reply)
            return
        if reply is not None:
            await Federation.send_reply(self._client, reply, {"ok": True})

    def _command_failed(self, object_id: str, entity_id: str, err: CommandError,
                        reply: tuple[str, str] | None = None) -> None:
        self.stats.command_errors += 1
        self.stats.last_error = f"{entity_id}: {err.code}: {err.message}"
        _LOGGER.warning("MQTT command for %s refused: %s (%s)", entity_id, err.message, err.code)
        client = self._client
        if client is not None and self.topics is not None and self._conn is not None:
            body = {"ok": False, "code": err.code, "message": err.message}
            self._conn.spawn(client.publish(f"{self.topics.base}/{self.hub_id}/{object_id}/result",
                                            json.dumps(body), qos=0))
            if reply is not None:
                self._conn.spawn(Federation.send_reply(client, reply, body))

    # -- introspection --------------------------------------------------------------------
    @property
    def _client(self) -> MqttClient | None:
        """The live aiomqtt client, if connected (tests reach its socket to cut the connection)."""
        return self._conn.client if self._conn is not None else None

    @property
    def skipped(self) -> dict[str, str]:
        """Discovery topic → why it was not adopted."""
        return self._imports.skipped if self._imports is not None else {}

    @property
    def idle(self) -> bool:
        """Nothing waits to be published (benchmarks wait for quiet)."""
        return self._export is None or self._export.idle

    def imported(self) -> dict[str, str]:
        """Discovery topic → entity id of everything adopted from the broker."""
        return self._imports.imported() if self._imports is not None else {}

    @property
    def zigbee2mqtt(self) -> Zigbee2Mqtt | None:
        """The native zigbee2mqtt reader, when enabled."""
        return self._z2m

    def exported(self) -> dict[str, str]:
        return self._export.exported() if self._export is not None else {}
