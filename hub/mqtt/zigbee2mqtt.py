"""zigbee2mqtt read natively: its devices adopted from ``bridge/devices``, their states, availability and commands.

zigbee2mqtt announces its devices on its own topics whether or not its Home Assistant discovery is on
(it is off by default). This module reads those topics under one base topic (``mqtt.zigbee2mqtt.base_topic``,
``zigbee2mqtt`` by default); the payload shapes and their sources are in ``z2m_exposes.py``.

* ``<base>/bridge/devices`` (retained): every device, by IEEE address, is adopted at once through the
  lifecycle's adoption door (:func:`qilu_hub.appliances.adopt_device`), as Home Assistant adopts every device
  of an integration the user has set up: configuring the bridge is the household's decision. A device that
  is no longer listed (or a ``device_leave`` event) has its entities and, when nothing else is left on it,
  its device removed. A new ``friendly_name`` for a known IEEE address is a rename: the same device and
  entities (entity ids stay), the device's name and the topics read follow.
* ``<base>/bridge/state`` and ``<base>/<friendly_name>/availability``: either says offline, every entity of
  the device is ``unavailable`` (through :func:`qilu_hub.appliances.availability`), as while the broker is
  disconnected.
* ``<base>/<friendly_name>``: the device's state JSON, one document feeding all its entities.
* Commands leave as JSON on ``<base>/<friendly_name>/set``, checked first against the capability catalogue
  (by the hub's command router) and then against the device's own exposes (settable, value ranges).

Bad payloads are logged with the reason and change nothing: a ``bridge/devices`` that is not JSON, not a
list or absurdly large keeps every device as it was, and a malformed entry keeps that one device as it was.

Seen both natively and through zigbee2mqtt's Home Assistant discovery, a device is one device: native wins.
The import (``imports.py``) is told which IEEE addresses are read natively, drops what it adopted for them
and skips their discovery configs.
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
from .federation import QOS_COMMAND
from .z2m_exposes import (
    MAX_STATE_BYTES,
    MISSING,
    NativeDevice,
    NativeEntity,
    Z2mError,
    command_body,
    parse_bridge_devices,
    parse_device,
    parse_online,
    read_state,
)

if TYPE_CHECKING:
    from ..core import Hub
    from .connection import MqttConnection

__all__ = ["UNIQUE_PREFIX", "Zigbee2Mqtt"]

_LOGGER = logging.getLogger(__name__)

SOURCE = "zigbee2mqtt"
# Entity unique ids: <IMPORT_PREFIX>zigbee2mqtt:<ieee>:<expose key>; the export's prefix marks them as
# mirrored from the broker, which is never exported back to it.
UNIQUE_PREFIX = f"{IMPORT_PREFIX}zigbee2mqtt:"
_STORE_KIND = "mqtt"


@dataclass(slots=True)
class _Record:
    spec: NativeEntity
    entity_id: str
    value: Any = UNKNOWN
    attrs: dict[str, Any] = field(default_factory=dict)
    unregister: Callable[[], None] | None = None  # the command handler's registration


@dataclass(slots=True)
class _Device:
    info: NativeDevice
    device_id: str
    records: dict[str, _Record] = field(default_factory=dict)  # expose key -> record
    online: bool | None = None  # the device's availability topic's last word
    warned: bool = False


class Zigbee2Mqtt:
    """One zigbee2mqtt instance (one base topic) read natively."""

    __slots__ = ("_by_entity", "_by_name", "_claim", "_conn", "_devices", "_hub", "_keep",
                 "base", "bridge_online", "last_error", "problems")

    def __init__(self, hub: Hub, conn: MqttConnection, base_topic: str,
                 claim: Callable[[str, bool], None], keep_subscribed: Callable[[str], bool]) -> None:
        self._hub = hub
        self._conn = conn
        self.base = base_topic
        self._claim = claim  # (ieee, claimed) -> the HA-discovery import steps aside or back
        self._keep = keep_subscribed  # topics the HA-discovery import still reads: never unsubscribed here
        self._devices: dict[str, _Device] = {}  # ieee -> device
        self._by_name: dict[str, str] = {}  # friendly name -> ieee
        self._by_entity: dict[str, tuple[_Device, _Record]] = {}
        self.bridge_online: bool | None = None
        self.last_error: str | None = None
        self.problems: dict[str, str] = {}  # entry or topic -> why it was not used (the last word on each)

    # -- questions the wiring asks ----------------------------------------------------------
    def bridge_topics(self) -> list[str]:
        return [f"{self.base}/bridge/devices", f"{self.base}/bridge/state", f"{self.base}/bridge/event"]

    def device_topics(self) -> list[str]:
        return [t for name in self._by_name for t in self._topics_of(name)]

    def _topics_of(self, name: str) -> tuple[str, str]:
        return f"{self.base}/{name}", f"{self.base}/{name}/availability"

    def reads(self, topic: str) -> bool:
        if topic in self.bridge_topics():
            return True
        if topic.startswith(self.base + "/"):
            rest = topic[len(self.base) + 1:]
            return rest.removesuffix("/availability") in self._by_name
        return False

    def is_imported(self, entity_id: str) -> bool:
        return entity_id in self._by_entity

    def devices(self) -> dict[str, str]:
        """IEEE address → friendly name of every device read natively."""
        return {ieee: device.info.friendly_name for ieee, device in self._devices.items()}

    def skipped(self) -> dict[str, str]:
        """``<ieee>/<property>`` → why that expose has no entity (``linkquality``, unknown units...)."""
        return {f"{ieee}/{prop}": why for ieee, device in self._devices.items()
                for prop, why in device.info.skipped.items()}

    # -- connection events ------------------------------------------------------------------
    def on_connected(self) -> None:
        for device in self._devices.values():
            self._write(device)

    def on_disconnected(self) -> None:
        ids = [eid for eid in self._by_entity if self._hub.states.get(eid) is not None]
        availability(self._hub).mark_unavailable(ids, Context("mqtt"))

    # -- messages -------------------------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes) -> None:
        if not topic.startswith(self.base + "/"):
            return
        rest = topic[len(self.base) + 1:]
        if rest == "bridge/devices":
            self._on_devices(payload)
        elif rest == "bridge/state":
            self._on_bridge_state(payload)
        elif rest == "bridge/event":
            self._on_event(payload)
        elif rest.endswith("/availability") and rest[: -len("/availability")] in self._by_name:
            device = self._devices[self._by_name[rest[: -len("/availability")]]]
            online = parse_online(payload)
            if online is None:
                self._problem(topic, f"availability payload {payload[:60]!r} is neither online nor offline")
                return
            device.online = online
            self._write(device)
        elif rest in self._by_name:
            self._on_state(self._devices[self._by_name[rest]], payload)

    def _problem(self, where: str, why: str, level: int = logging.WARNING) -> None:
        self.last_error = f"{where}: {why}"
        if self.problems.get(where) != why:
            _LOGGER.log(level, "zigbee2mqtt %s: %s", where, why)
        self.problems[where] = why

    def _on_bridge_state(self, payload: bytes) -> None:
        online = parse_online(payload)
        if online is None:
            self._problem(f"{self.base}/bridge/state", f"{payload[:60]!r} is neither online nor offline")
            return
        self.bridge_online = online
        for device in self._devices.values():
            self._write(device)

    def _on_devices(self, payload: bytes) -> None:
        where = f"{self.base}/bridge/devices"
        if not payload:
            return  # an emptied retained message says nothing about the devices; keep them
        try:
            listed, problems, unreadable = parse_bridge_devices(payload)
        except Z2mError as err:
            self._conn.stats.discovery_skipped += 1
            self._problem(where, f"{err}; keeping the {len(self._devices)} devices known", logging.ERROR)
            return
        self.problems.pop(where, None)
        for entry, why in problems.items():
            self._conn.stats.discovery_skipped += 1
            self._problem(f"{where} {entry}", f"{why}; that device is kept as it was")
        if unreadable is None:
            self._problem(where, "an entry without a readable ieee_address: no device is removed on this list")
        else:
            keep = {d.ieee for d in listed} | unreadable
            for ieee in [i for i in self._devices if i not in keep]:
                self._remove(ieee, "no longer listed in bridge/devices")
            self._forget_stored(keep)
        for device in listed:
            self._adopt(device)
        self._store()

    def _on_event(self, payload: bytes) -> None:
        try:
            event = json.loads(payload) if len(payload) <= MAX_STATE_BYTES else None
        except (ValueError, RecursionError):
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            self._problem(f"{self.base}/bridge/event", "not a JSON object with type and data")
            return
        kind, data = event.get("type"), event["data"]
        ieee = str(data.get("ieee_address", "")).lower()
        if kind == "device_leave" and ieee in self._devices:
            self._remove(ieee, "left the network")
            self._store()
        elif kind == "device_renamed" and isinstance(data.get("from"), str) and isinstance(data.get("to"), str):
            old = self._by_name.get(data["from"])
            if old is not None:
                self._rename(self._devices[old], data["to"])
        elif kind == "device_interview" and data.get("status") == "successful" and data.get("definition"):
            try:
                device = parse_device(data)
            except Z2mError as err:
                self._problem(f"{self.base}/bridge/event {ieee}", str(err))
                return
            if device is not None:
                self._adopt(device)
                self._store()
        elif kind in ("device_joined", "device_interview"):
            _LOGGER.info("zigbee2mqtt %s: %s %s", self.base, kind, data.get("friendly_name", ieee))

    # -- adoption, renames, removal -------------------------------------------------------------
    def _adopt(self, info: NativeDevice) -> None:
        known = self._devices.get(info.ieee)
        if known is not None and known.info.raw == info.raw:
            return
        if known is None and not info.entities:
            return  # not interviewed yet, unsupported, or nothing we read: no empty device in the registry
        taken = self._by_name.get(info.friendly_name)
        if taken is not None and taken != info.ieee:  # a swap of names within one list: free the name first
            self._rename(self._devices[taken], f"{info.friendly_name}\0moving")
        self._claim(info.ieee, True)
        hub = self._hub
        device_record = adopt_device(
            hub, source=SOURCE, name=info.friendly_name, identifiers=[(SOURCE, info.ieee)],
            connections=[("zigbee", info.ieee)], manufacturer=info.manufacturer, model=info.model,
            sw_version=info.sw_version, driver=SOURCE,
        )
        if known is None:
            known = _Device(info, device_record.id)
            self._devices[info.ieee] = known
            self._subscribe(self._topics_of(info.friendly_name))
        else:
            if known.info.friendly_name != info.friendly_name:
                self._rename(known, info.friendly_name)
            known.info, known.device_id = info, device_record.id
        self._by_name[info.friendly_name] = info.ieee
        for key in set(known.records) - {e.key for e in info.entities}:  # exposes the device lost
            self._remove_record(known.records.pop(key))
        for spec in info.entities:
            self._register(known, spec)
        self._write(known)

    def _register(self, device: _Device, spec: NativeEntity) -> None:
        hub = self._hub
        suggested = f"{device.info.friendly_name} {spec.key}" if spec.kind in ("sensor", "binary") else spec.name
        entity = hub.entities.async_get_or_create(
            unique_id=f"{UNIQUE_PREFIX}{device.info.ieee}:{spec.key}", capabilities=spec.capabilities,
            name=spec.name, device_id=device.device_id, entity_category=spec.entity_category,
            suggested_object_id=suggested,
        )
        previous = device.records.get(spec.key)
        record = _Record(spec, entity.entity_id)
        if previous is not None:
            record.value, record.attrs = previous.value, previous.attrs
        device.records[spec.key] = record
        self._by_entity[entity.entity_id] = (device, record)
        record.unregister = hub.commands.register_entity(entity.entity_id, self._command)

    def _rename(self, device: _Device, new_name: str) -> None:
        old_name = device.info.friendly_name
        if old_name == new_name:
            return
        if self._by_name.get(old_name) == device.info.ieee:
            del self._by_name[old_name]
        if "\0" not in old_name:
            self._unsubscribe(self._topics_of(old_name))
        device.info.friendly_name = new_name
        device.online = None  # the old availability topic's word is not the new one's
        if "\0" in new_name:
            return  # parked for a swap; the list that caused it names it next
        self._by_name[new_name] = device.info.ieee
        if self._hub.devices.get(device.device_id) is not None:
            self._hub.devices.async_update(device.device_id, name=new_name)
        self._subscribe(self._topics_of(new_name))
        _LOGGER.info("zigbee2mqtt device %s renamed from %s to %s", device.info.ieee, old_name, new_name)

    def _remove(self, ieee: str, why: str) -> None:
        device = self._devices.pop(ieee)
        if self._by_name.get(device.info.friendly_name) == ieee:
            del self._by_name[device.info.friendly_name]
        self._unsubscribe(self._topics_of(device.info.friendly_name))
        for record in device.records.values():
            self._remove_record(record)
        self._drop_device(device.device_id)
        self._claim(ieee, False)
        _LOGGER.info("zigbee2mqtt device %s (%s) removed: %s", device.info.friendly_name, ieee, why)

    def _remove_record(self, record: _Record) -> None:
        self._by_entity.pop(record.entity_id, None)
        if record.unregister is not None:
            record.unregister()
        availability(self._hub).forget(record.entity_id)
        self._hub.states.async_remove(record.entity_id, Context("mqtt"))
        self._hub.entities.async_remove(record.entity_id)

    def _drop_device(self, device_id: str) -> None:
        """The device goes too when nothing else (another source's entities) is left on it."""
        if self._hub.devices.get(device_id) is not None and not self._hub.entities.for_device(device_id):
            self._hub.devices.async_remove(device_id)

    # -- what survives a restart: which devices this base topic had, to remove those gone meanwhile ------
    def _store_key(self) -> str:
        return f"zigbee2mqtt:{self.base}"

    def _store(self) -> None:
        devices = {ieee: d.device_id for ieee, d in self._devices.items()}
        self._hub.storage.put(_STORE_KIND, self._store_key(), {"devices": devices})

    def _forget_stored(self, keep: set[str]) -> None:
        """Devices adopted in an earlier run that the first list of this run no longer has."""
        stored = self._hub.storage.get(_STORE_KIND, self._store_key()) or {}
        devices = stored.get("devices")
        for ieee, device_id in (devices.items() if isinstance(devices, dict) else []):
            if ieee in keep or ieee in self._devices or not isinstance(device_id, str):
                continue
            prefix = f"{UNIQUE_PREFIX}{ieee}:"
            for entity in self._hub.entities.for_device(device_id):
                if entity.unique_id.startswith(prefix):
                    self._hub.states.async_remove(entity.entity_id, Context("mqtt"))
                    self._hub.entities.async_remove(entity.entity_id)
            self._drop_device(device_id)
            _LOGGER.info("zigbee2mqtt device %s removed: gone from bridge/devices while the hub was away", ieee)

    # -- state and availability ---------------------------------------------------------------
    def _available(self, device: _Device) -> bool:
        """zigbee2mqtt and the device itself do not say offline (the broker connection is the bridge's word:
        ``on_disconnected`` marks everything unavailable, ``on_connected`` writes the known states back)."""
        return self.bridge_online is not False and device.online is not False and not device.info.disabled

    def _on_state(self, device: _Device, payload: bytes) -> None:
        where = f"{self.base}/{device.info.friendly_name}"
        try:
            doc = json.loads(payload) if len(payload) <= MAX_STATE_BYTES else None
        except (ValueError, RecursionError):
            doc = None
        if not isinstance(doc, dict):
            self._conn.stats.state_errors += 1
            if not device.warned:
                device.warned = True
                self._problem(where, "state is not a JSON object (ignored)")
            return
        for record in device.records.values():
            value = read_state(record.spec, doc, record.attrs)
            if value is not MISSING:
                record.value = UNKNOWN if value is None else value
        self._write(device)

    def _write(self, device: _Device) -> None:
        context = Context("mqtt")
        if not self._available(device):
            ids = [r.entity_id for r in device.records.values()]
            availability(self._hub).mark_unavailable(ids, context)
            return
        for record in device.records.values():
            self._hub.states.async_set(record.entity_id, record.value, dict(record.attrs), context)

    # -- subscriptions ------------------------------------------------------------------------
    def _subscribe(self, topics: tuple[str, ...] | list[str]) -> None:
        client = self._conn.client
        if client is not None:
            self._conn.spawn(self._conn.subscribe(client, list(topics), 1, no_local=True))

    def _unsubscribe(self, topics: tuple[str, ...] | list[str]) -> None:
        client = self._conn.client
        gone = [t for t in topics if not self._keep(t)]
        if client is not None and gone:
            self._conn.spawn(client.unsubscribe(gone))

    # -- commands ------------------------------------------------------------------------------
    async def _command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        found = self._by_entity.get(entity.entity_id)
        if found is None:
            raise CommandError("unavailable", f"{entity.entity_id} is no longer listed by zigbee2mqtt")
        device, record = found
        client = self._conn.client
        if client is None or not self._conn.connected.is_set():
            raise CommandError("unavailable", "the MQTT broker is not connected")
        if not self._available(device):
            raise CommandError("unavailable", f"{entity.entity_id} is offline")
        body = command_body(record.spec, command, args, record.value)
        try:
            await client.publish(f"{self.base}/{device.info.friendly_name}/set",
                                 json.dumps(body, separators=(",", ":")), qos=QOS_COMMAND)
        except aiomqtt.MqttError as err:
            raise CommandError("unavailable", f"MQTT publish failed: {err}") from None
        self._conn.stats.commands_out += 1
