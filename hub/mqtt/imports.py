"""Devices that others announce on the broker, mirrored into this hub: adoption, state, availability, commands.

The parsing of discovery payloads lives in ``importer.py`` (pure functions); this module
is its running side. Every entity announced on the broker enters the hub through
:meth:`MqttImports.adopt`, the one place where an imported appliance becomes a device
and entities in the registries. Without the broker nothing imported can be read or
commanded, so everything imported is "unavailable" while disconnected (as Home Assistant
shows it); the last known states stand again when the connection is back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiomqtt

from ..appliances.adoption import adopt_device
from ..appliances.availability import availability
from ..capabilities import CommandError
from ..context import Context
from ..model import Entity
from ..states import UNKNOWN
from .export import IMPORT_PREFIX
from .federation import QOS_COMMAND, Federation
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
from .template import MISSING, TemplateError

if TYPE_CHECKING:
    from ..core import Hub
    from .connection import MqttConnection

__all__ = ["MqttImports"]

_LOGGER = logging.getLogger(__name__)

_NATIVE = "read natively from zigbee2mqtt's bridge/devices (native support is preferred)"


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


class MqttImports:
    """What the bridge adopted from the broker, and the topics it reads for them."""

    __slots__ = ("_by_entity", "_claimed_zigbee", "_conn", "_device_topics", "_federation", "_hub", "_imported",
                 "_last_payload", "_sources", "_subscribed", "keep_subscribed", "skipped")

    def __init__(self, hub: Hub, conn: MqttConnection, federation: Federation) -> None:
        self._hub = hub
        self._conn = conn
        self._federation = federation
        self.skipped: dict[str, str] = {}  # discovery topic -> why it was not adopted
        self._imported: dict[str, _Imported] = {}  # discovery topic (or device topic/component) -> record
        self._device_topics: dict[str, tuple[bytes, set[str]]] = {}  # device discovery topic -> (raw, keys)
        self._by_entity: dict[str, _Imported] = {}
        self._sources: dict[str, list[_Imported]] = {}  # state/availability topic -> records
        self._subscribed: set[str] = set()
        self._last_payload: dict[str, bytes] = {}  # per source topic, replayed to entities adopted later
        # IEEE addresses that zigbee2mqtt.py reads natively: their HA-discovery configs are not adopted.
        self._claimed_zigbee: set[str] = set()
        # Topics another reader on this connection (zigbee2mqtt.py) still needs: never unsubscribed here.
        self.keep_subscribed: Callable[[str], bool] = lambda topic: False

    # -- questions the wiring asks ----------------------------------------------------------
    def imported(self) -> dict[str, str]:
        """Discovery topic → entity id of everything adopted from the broker."""
        return {topic: record.entity_id for topic, record in self._imported.items()}

    def is_imported(self, entity_id: str) -> bool:
        return entity_id in self._by_entity

    def reads(self, topic: str) -> bool:
        """Whether a state/availability topic is read for something adopted here."""
        return topic in self._sources

    def claim_zigbee(self, ieee: str, claimed: bool) -> None:
        """A zigbee2mqtt device is read natively (``claimed``) or no longer: one device, never two.

        While claimed, what was adopted from zigbee2mqtt's HA discovery for it is dropped and its discovery
        configs are skipped; native support reads more (every expose) and follows renames by IEEE address.
        """
        ieee = ieee.lower()
        if not claimed:
            self._claimed_zigbee.discard(ieee)
            return
        if ieee in self._claimed_zigbee:
            return
        self._claimed_zigbee.add(ieee)
        for record in [r for r in self._imported.values() if ("zigbee", ieee) in r.spec.device_connections]:
            self._forget(record)
            self.skipped[record.spec.discovery_topic] = _NATIVE

    @property
    def wanted(self) -> bool:
        settings = self._conn.settings
        return settings.import_ or settings.federation

    def discovery_filters(self) -> list[str]:
        prefix = self._conn.settings.discovery_prefix
        return [f"{prefix}/+/+/config", f"{prefix}/+/+/+/config"]

    def source_topics(self, *, foreign_only: bool = False) -> list[str]:
        """State/availability topics read; ``foreign_only``: those not published by a qilu peer."""
        if not foreign_only:
            return list(self._sources)
        return [t for t, recs in self._sources.items() if any(r.spec.peer_hub is None for r in recs)]

    # -- connection events ------------------------------------------------------------------
    def on_connected(self) -> None:
        """Back from "unavailable": the last known states stand until fresher messages arrive."""
        for record in list(self._imported.values()):
            self._write_state(record)

    def on_disconnected(self) -> None:
        """Without the broker nothing imported can be read or commanded (as Home Assistant shows it)."""
        states = self._hub.states
        entity_ids = [r.entity_id for r in self._imported.values() if states.get(r.entity_id) is not None]
        availability(self._hub).mark_unavailable(entity_ids, Context("mqtt"))

    def on_message(self, topic: str, data: bytes) -> None:
        records = self._sources.get(topic)
        if records:
            self._last_payload[topic] = data
            for record in list(records):
                self._on_source_message(record, topic, data)
        prefix = self._conn.settings.discovery_prefix + "/"
        if topic.startswith(prefix) and topic.endswith("/config"):
            self._on_discovery(topic, data)

    # -- discovery of others ------------------------------------------------------------------
    def _on_discovery(self, topic: str, payload: bytes) -> None:
        where = split_discovery_topic(self._conn.settings.discovery_prefix, topic)
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
            spec = parse_discovery(self._conn.settings.discovery_prefix, topic, data)
        except (ValueError, DiscoveryError) as err:
            self._skip(topic, str(err))
            return
        if not self._wanted(spec):
            return
        if existing is not None:
            self._forget(existing, remove_entity=False)
        self.adopt(topic, spec, payload, existing)

    def _wanted(self, spec: ImportSpec) -> bool:
        if any(kind == "zigbee" and value in self._claimed_zigbee for kind, value in spec.device_connections):
            self.skipped[spec.discovery_topic] = _NATIVE
            return False
        if spec.peer_hub is not None:
            if spec.peer_hub == self._conn.hub_id:
                self._conn.stats.echoes_ignored += 1
                return False
            return self._conn.settings.federation
        return self._conn.settings.import_

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
                entries = parse_device_discovery(self._conn.settings.discovery_prefix, topic, data)
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
            self.adopt(key, item, raw, existing)
        if payload:
            self._device_topics[topic] = (payload, keys)

    def _skip(self, topic: str, reason: str) -> None:
        self._conn.stats.discovery_skipped += 1
        if self.skipped.get(topic) != reason:
            _LOGGER.info("Not adopting %s: %s", topic, reason)
        self.skipped[topic] = reason

    # -- adoption: the one way an announced entity enters the hub ---------------------------
    def _register(self, spec: ImportSpec) -> tuple[str, str]:
        """Create or update the device and entity of an announced entity; (entity id, device id).

        This is the import's only write to the device registry, through the lifecycle's one adoption door
        (:func:`qilu_hub.appliances.adopt_device`).
        """
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
        return entity.entity_id, device.id

    def adopt(self, topic: str, spec: ImportSpec, raw: bytes, previous: _Imported | None = None) -> None:
        """Adopt (or re-adopt with a changed config) one announced entity and start reading its topics."""
        hub = self._hub
        entity_id, device_id = self._register(spec)
        record = _Imported(spec, entity_id, device_id, raw)
        if previous is not None and previous.entity_id == entity_id:  # a changed config keeps the state
            record.value, record.attrs = previous.value, previous.attrs
        self._imported[topic] = record
        self._by_entity[entity_id] = record
        hub.commands.register_entity(entity_id, self._command)
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
        if hub.states.get(entity_id) is None:
            hub.states.async_set(entity_id, UNKNOWN, {}, Context("mqtt"))
        # Several entities often share one state topic (zigbee2mqtt): a later one has missed
        # the retained message that the first subscription brought.
        for t in dict.fromkeys(topics):
            if t in self._last_payload:
                self._on_source_message(record, t, self._last_payload[t])
        client = self._conn.client
        if new and client is not None:
            self._conn.spawn(self._conn.subscribe(client, new, 1, no_local=True))

    def _forget(self, record: _Imported, remove_entity: bool = True) -> None:
        self._imported.pop(record.spec.discovery_topic, None)
        if self._by_entity.get(record.entity_id) is record:
            del self._by_entity[record.entity_id]
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
        gone = [t for t in gone if not self.keep_subscribed(t)]
        client = self._conn.client
        if gone and client is not None:
            self._conn.spawn(client.unsubscribe(gone))
        if remove_entity:
            self._hub.states.async_remove(record.entity_id, Context("mqtt"))
            self._hub.entities.async_remove(record.entity_id)

    # -- state and availability ---------------------------------------------------------------
    def _on_source_message(self, record: _Imported, topic: str, payload: bytes) -> None:
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
                self._conn.stats.state_errors += 1
                if not record.warned:
                    record.warned = True
                    _LOGGER.warning("MQTT state for %s not understood: %s", record.entity_id, err)
        if changed:
            self._write_state(record)

    def _apply_source(self, record: _Imported, source: StateSource, payload: bytes) -> bool:
        if source.field == "federated":
            peer_state = self._federation.read_peer_state(payload, record.spec.peer_hub)
            if peer_state is None:
                return False
            record.value, record.attrs, record.context = peer_state.value, peer_state.attributes, peer_state.context
            return True
        value = read_source(record.spec, source, payload, record.value, record.attrs)
        if value is not MISSING:
            record.value = value
        record.context = Context("mqtt")
        return True

    @staticmethod
    def _is_available(record: _Imported) -> bool:
        flags = record.available
        if not flags:
            return True
        if record.spec.availability_mode == "all":
            return all(flags.values())
        if record.spec.availability_mode == "any":
            return any(flags.values())
        return all(flags.values())  # "latest": each topic keeps its last word; any offline means offline

    def _write_state(self, record: _Imported) -> None:
        if not self._is_available(record):  # its availability topic says offline: the hub's one rule applies
            availability(self._hub).mark_unavailable([record.entity_id], record.context or Context("mqtt"))
            return
        value = record.value
        if value is None:
            value = UNKNOWN
        self._hub.states.async_set(record.entity_id, value, dict(record.attrs), record.context or Context("mqtt"))

    # -- commands to imported entities ----------------------------------------------------------
    async def _command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        record = self._by_entity.get(entity.entity_id)
        client = self._conn.client
        if record is None:
            raise CommandError("unavailable", f"{entity.entity_id} is no longer announced on MQTT")
        if client is None or not self._conn.connected.is_set():
            raise CommandError("unavailable", "the MQTT broker is not connected")
        spec = record.spec
        if not self._is_available(record):
            raise CommandError("unavailable", f"{entity.entity_id} is offline")
        if spec.peer_hub is not None:
            await self._federation.call_peer(client, spec.peer_hub, spec.options["call_topic"], command, args,
                                             context)
            return
        try:
            for topic, payload in command_messages(spec, command, args, record.value):
                await client.publish(topic, payload, qos=QOS_COMMAND)
        except aiomqtt.MqttError as err:
            raise CommandError("unavailable", f"MQTT publish failed: {err}") from None
        self._conn.stats.commands_out += 1
