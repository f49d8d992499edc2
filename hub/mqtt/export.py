"""Our entities in Home Assistant's MQTT discovery format, and HA-format commands back to hub commands.

Discovery: https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery — a retained
JSON config on ``<discovery_prefix>/<component>/<node_id>/<object_id>/config``; here
node_id is the hub id and the topic's object_id the entity id with ``.`` replaced by ``_``.
Each entity has one retained JSON state document on ``<base>/<hub>/<object_id>/state`` that
every component reads through a value template, so one publish per change serves
Home Assistant, openHAB and federated qilu hubs alike, and one retained ``online``/``offline``
on ``<base>/<hub>/<object_id>/availability``: an appliance that cannot be reached is
``offline`` there (Home Assistant shows it unavailable) and its state topic keeps its last
real state, because numeric sensors and climate entities raise errors on a state
``"unavailable"``. Every config requires the hub's status topic and the entity's own
(``availability_mode: all``).

What a config says about an entity (name, unit, device and state class, icon, colour modes,
temperature range) comes from :func:`qilu_hub.presentation.describe`, the same Look the
HA-compatible API shows, under Home Assistant's ``has_entity_name`` naming: the device block
carries the device's name; ``name`` is the entity's own part, or null for the device's main
feature; ``object_id`` is the object part of our entity id, so Home Assistant's entity ids
match ours (``sensor.fridge_power``). Lights use the JSON schema
(https://www.home-assistant.io/integrations/light.mqtt/#json-schema) with ``color_mode`` and
``supported_color_modes`` together and colour temperatures in mireds, which Home Assistant
2024.3 requires and later releases still accept. Home Assistant drops keys it does not know
from discovery payloads (its discovery schemas use ``extra=REMOVE_EXTRA``), so the ``qilu``
key carrying our native capabilities is safe to add for federation, and ``default_entity_id``
(the newer releases' successor of ``object_id``) rides along.
``tests/mqtt/test_ha_discovery.py`` validates every config the demo publishes with Home
Assistant's own schemas.

:class:`Exporter` is the running side: it marks entities dirty on state and registry
changes and one publisher task drains the dirty sets, so while disconnected only the
latest state per entity is kept, and after a reconnect only entities that changed
meanwhile are published. Imported entities are never exported (loop freedom).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiomqtt

from ..capabilities import CommandError
from ..const import __version__
from ..model import Device, Entity
from ..presentation import Look, current_color_mode, describe, hs_from_rgb, own_attributes
from ..registry import EVENT_DEVICE_REGISTRY_UPDATED, EVENT_ENTITY_REGISTRY_UPDATED
from ..states import EVENT_STATE_CHANGED, UNAVAILABLE, UNKNOWN, State

if TYPE_CHECKING:
    from ..bus import Event
    from ..core import Hub
    from .connection import BridgeStats, MqttClient

__all__ = [
    "IMPORT_PREFIX",
    "ORIGIN_PREFIX",
    "ExportTopics",
    "Exporter",
    "component_for",
    "discovery_config",
    "object_id_for",
    "origin_hub",
    "parse_ha_command",
    "state_document",
]

# Context.origin of changes that arrived over MQTT: "mqtt:<hub id where the change started>".
ORIGIN_PREFIX = "mqtt:"
# Unique ids of entities adopted from the broker start with this; they are never exported.
IMPORT_PREFIX = "mqtt:"
QOS_STATE = 1  # queued for federated peers' persistent sessions while they are away
QOS_CONFIG = 1
PUBLISH_BATCH = 64
ONLINE, OFFLINE = b"online", b"offline"  # on each entity's availability topic

_ON_OFF_DOMAINS = frozenset({"switch", "light", "fan", "binary_sensor"})
_COMPONENTS = {
    "switch": "switch", "light": "light", "sensor": "sensor", "binary_sensor": "binary_sensor",
    "climate": "climate", "cover": "cover", "lock": "lock", "fan": "fan", "button": "button", "scene": "scene",
}
# Our connection kinds as Home Assistant's device registry names them (CONNECTION_* in its device_registry).
_CONNECTIONS = {"mac": "mac", "zigbee": "zigbee", "ble": "bluetooth"}
_MIREDS = 1_000_000
_DEVICE_CLASS_COMPONENTS = frozenset({"sensor", "binary_sensor", "cover", "switch", "button"})


def object_id_for(entity_id: str) -> str:
    """The object id in our topics: the whole entity id, so two domains' ``kitchen`` never share a topic."""
    return entity_id.replace(".", "_")


def component_for(entity: Entity) -> str:
    """The HA MQTT component; domains HA's MQTT integration lacks (media_player, event) go out read-only."""
    return _COMPONENTS.get(entity.domain, "sensor")


class ExportTopics:
    """The topics of one hub on the broker."""

    __slots__ = ("base", "hub_id", "prefix", "status")

    def __init__(self, prefix: str, base: str, hub_id: str) -> None:
        self.prefix = prefix
        self.base = base
        self.hub_id = hub_id
        self.status = f"{base}/{hub_id}/status"

    def config(self, entity: Entity) -> str:
        return f"{self.prefix}/{component_for(entity)}/{self.hub_id}/{object_id_for(entity.entity_id)}/config"

    def entity_base(self, entity_id: str) -> str:
        return f"{self.base}/{self.hub_id}/{object_id_for(entity_id)}"

    def state(self, entity_id: str) -> str:
        return f"{self.entity_base(entity_id)}/state"

    def availability(self, entity_id: str) -> str:
        return f"{self.entity_base(entity_id)}/availability"

    # Subscriptions for commands addressed to this hub.
    def set_filter(self) -> str:
        return f"{self.base}/{self.hub_id}/+/set/#"

    def call_filter(self) -> str:
        return f"{self.base}/{self.hub_id}/+/call"


def origin_hub(state: State, own_hub: str) -> str:
    """The hub where this change started: ours, unless it arrived over MQTT from another."""
    context = state.context
    if context is not None and context.origin.startswith(ORIGIN_PREFIX):
        return context.origin[len(ORIGIN_PREFIX):] or own_hub
    return own_hub


def _ha_state(entity: Entity, value: Any) -> Any:
    """The state as Home Assistant's components read it; None (rendered "None") for unknown, which every
    component takes as "no state yet" instead of an invalid value."""
    if value is None or value == UNKNOWN:
        return None
    if entity.domain in _ON_OFF_DOMAINS and value in ("on", "off"):
        return "ON" if value == "on" else "OFF"
    return value


def state_document(entity: Entity, state: State, own_hub: str, look: Look | None = None) -> dict[str, Any]:
    """The JSON published on the entity's state topic."""
    if look is None:
        look = describe(entity, None)
    attrs = state.attributes
    doc: dict[str, Any] = {
        "state": _ha_state(entity, state.value),
        "value": state.value,
        # Without the Look: Home Assistant takes those from the config, a federated peer from its own Look.
        "attributes": own_attributes(look, attrs),
        "hub": own_hub,
        "origin": origin_hub(state, own_hub),
        "context": state.context.as_dict() if state.context is not None else None,
        "ts": state.last_updated,
    }
    if entity.domain == "light":
        _light_state(doc, entity, look, state.value, attrs)
    return doc


def _light_state(doc: dict[str, Any], entity: Entity, look: Look, value: Any, attrs: Mapping[str, Any]) -> None:
    """The JSON schema's fields: brightness, and the colour in the form of the current colour mode."""
    if "level" in entity.capabilities and "brightness" in attrs:
        doc["brightness"] = attrs["brightness"]
    mode = current_color_mode(look.color_modes, value, attrs)
    if mode is None:
        return
    doc["color_mode"] = mode
    if mode == "color_temp":
        kelvin = attrs.get("color_temp_kelvin")
        if isinstance(kelvin, int | float) and kelvin > 0:
            doc["color_temp"] = round(_MIREDS / kelvin)
    elif mode == "hs":
        hs = attrs.get("hs_color")
        if hs is None:
            hs = hs_from_rgb(attrs.get("rgb_color"))
        if hs is not None:
            doc["color"] = {"h": hs[0], "s": hs[1]}


def _device_block(device: Device, area_name: str | None, hub_id: str) -> dict[str, Any]:
    dev: dict[str, Any] = {"identifiers": [f"qilu_{hub_id}_{device.id}"], "name": device.display_name}
    for key, value in (("manufacturer", device.manufacturer), ("model", device.model),
                       ("sw_version", device.sw_version), ("hw_version", device.hw_version),
                       ("suggested_area", area_name)):
        if value:
            dev[key] = value
    connections = [[_CONNECTIONS[kind], value] for kind, value in device.connections if kind in _CONNECTIONS]
    if connections:
        dev["connections"] = connections
    serials = [value for kind, value in device.connections if kind == "serial"]
    if serials:
        dev["serial_number"] = serials[0]
    if device.via_device_id:  # a bridge or gateway this device is reached through, itself a device we export
        dev["via_device"] = f"qilu_{hub_id}_{device.via_device_id}"
    return dev


def discovery_config(
    entity: Entity,
    device: Device | None,
    area_name: str | None,
    topics: ExportTopics,
    look: Look | None = None,
) -> dict[str, Any]:
    """The retained discovery payload for one entity; one without a device (a scene) has no device block and is
    named on its own, as in the HA-compatible API."""
    if look is None:
        look = describe(entity, device)
    hub_id = topics.hub_id
    state_topic = topics.state(entity.entity_id)
    set_topic = f"{topics.entity_base(entity.entity_id)}/set"
    shown = look.shown
    config: dict[str, Any] = {
        "name": look.name,
        "unique_id": f"qilu_{hub_id}_{entity.unique_id}",
        "object_id": entity.entity_id.split(".", 1)[1],
        "default_entity_id": entity.entity_id,
        "state_topic": state_topic,
        "json_attributes_topic": state_topic,
        "json_attributes_template": "{{ value_json.attributes | tojson }}",
        "availability": [{"topic": topics.status}, {"topic": topics.availability(entity.entity_id)}],
        "availability_mode": "all",
        "origin": {"name": "qilu-hub", "sw": __version__},
        "qilu": {
            "hub": hub_id,
            "entity_id": entity.entity_id,
            "unique_id": entity.unique_id,
            "capabilities": list(entity.capabilities),
            "device_id": entity.device_id,
            "call_topic": f"{topics.entity_base(entity.entity_id)}/call",
        },
    }
    if entity.entity_category:
        config["entity_category"] = entity.entity_category
    if "icon" in shown:
        config["icon"] = shown["icon"]
    if device is not None:
        config["device"] = _device_block(device, area_name, hub_id)
        config["qilu"]["device"] = {"id": device.id, "name": device.display_name,
                                    "manufacturer": device.manufacturer, "model": device.model,
                                    "area": area_name}
    component = component_for(entity)
    # Home Assistant 2024.3's MQTT sensor has no ``options``, so an enum sensor goes without its class.
    if shown.get("device_class", "enum") != "enum" and component in _DEVICE_CLASS_COMPONENTS:
        config["device_class"] = shown["device_class"]
    capabilities = look.capabilities
    state_template = "{{ value_json.state }}"
    if component == "switch":
        config.update(command_topic=set_topic, payload_on="ON", payload_off="OFF", value_template=state_template)
    elif component == "light":
        modes = list(look.color_modes)
        config.update(schema="json", command_topic=set_topic, brightness="level" in entity.capabilities,
                      brightness_scale=255, color_mode=True, supported_color_modes=modes)
        if "min_mireds" in capabilities:
            config.update(min_mireds=capabilities["min_mireds"], max_mireds=capabilities["max_mireds"])
    elif component == "binary_sensor":
        config.update(payload_on="ON", payload_off="OFF", value_template=state_template)
    elif component == "sensor":
        config["value_template"] = state_template
        for key in ("unit_of_measurement", "state_class"):
            if key in shown:
                config[key] = shown[key]
    elif component == "climate":
        base = topics.entity_base(entity.entity_id)
        config.update(
            modes=list(capabilities.get("hvac_modes", ())),
            mode_state_topic=state_topic, mode_state_template=state_template,
            mode_command_topic=f"{base}/set/mode",
            temperature_command_topic=f"{base}/set/temperature",
            temperature_state_topic=state_topic,
            temperature_state_template="{{ value_json.attributes.temperature }}",
            current_temperature_topic=state_topic,
            current_temperature_template="{{ value_json.attributes.current_temperature }}",
            temp_step=0.5, temperature_unit="C",
        )
        for key in ("min_temp", "max_temp"):
            if capabilities.get(key) is not None:
                config[key] = capabilities[key]
        del config["state_topic"]  # climate has per-field state topics
    elif component == "cover":
        config.update(command_topic=set_topic, payload_open="OPEN", payload_close="CLOSE", payload_stop="STOP",
                      value_template=state_template, position_topic=state_topic,
                      position_template="{{ value_json.attributes.current_position }}",
                      set_position_topic=f"{set_topic}/position")
    elif component == "lock":
        config.update(command_topic=set_topic, payload_lock="LOCK", payload_unlock="UNLOCK",
                      state_locked="locked", state_unlocked="unlocked", value_template=state_template)
    elif component == "fan":
        config.update(command_topic=set_topic, payload_on="ON", payload_off="OFF",
                      state_value_template=state_template,
                      percentage_command_topic=f"{set_topic}/percentage", percentage_state_topic=state_topic,
                      percentage_value_template="{{ value_json.attributes.percentage }}")
    elif component == "button":
        config.update(command_topic=set_topic, payload_press="PRESS")
        del config["state_topic"]
    elif component == "scene":
        # A scene is stateless in Home Assistant: activation only (its "last activated" stays on our side).
        config.update(command_topic=set_topic, payload_on="ON")
        for key in ("state_topic", "json_attributes_topic", "json_attributes_template"):
            del config[key]
    return config


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError("invalid_format", "command payload is not UTF-8 text") from None


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError("invalid_format", f"{name} must be a number, not {text[:40]!r}") from None
    if not math.isfinite(value):
        raise CommandError("invalid_format", f"{name} must be finite")
    return value


def _light_command(entity: Entity, text: str) -> tuple[str, dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError:
        # Plain ON/OFF also reaches JSON-schema lights from simple tools.
        data = {"state": text}
    if not isinstance(data, Mapping):
        raise CommandError("invalid_format", "a light command is a JSON object")
    state = str(data.get("state", "ON")).upper()
    if state == "OFF":
        return "turn_off", {}
    if state == "TOGGLE":
        return "toggle", {}
    if state != "ON":
        raise CommandError("invalid_format", f"light state must be ON, OFF or TOGGLE, not {state[:20]!r}")
    args: dict[str, Any] = {}
    if "brightness" in data:
        args["brightness"] = data["brightness"]
    if "color_temp" in data:  # mireds in the JSON schema (discovery_config sets no color_temp_kelvin flag)
        mireds = data["color_temp"]
        if isinstance(mireds, bool) or not isinstance(mireds, int | float) or not 0 < mireds < _MIREDS:
            raise CommandError("invalid_format", f"color_temp must be a positive number of mireds, not {mireds!r}")
        args["color_temp_kelvin"] = round(_MIREDS / mireds)
    if "transition" in data:
        args["transition"] = data["transition"]
    color = data.get("color")
    if isinstance(color, Mapping):
        if "h" in color and "s" in color:
            args["hs_color"] = [color["h"], color["s"]]
        elif all(k in color for k in "rgb"):
            args["rgb_color"] = [color["r"], color["g"], color["b"]]
    return "turn_on", args


_SIMPLE = {
    "ON": "turn_on", "OFF": "turn_off", "TOGGLE": "toggle",
    "OPEN": "open_cover", "CLOSE": "close_cover", "STOP": "stop_cover",
    "LOCK": "lock", "UNLOCK": "unlock", "PRESS": "press",
}


def parse_ha_command(entity: Entity, field: str | None, payload: bytes) -> tuple[str, dict[str, Any]]:
    """Translate a Home Assistant-format command payload into a hub command and arguments."""
    text = _text(payload)
    if field is None:
        if entity.domain == "light":
            return _light_command(entity, text)
        command = _SIMPLE.get(text.upper())
        if command is None:
            raise CommandError("invalid_format", f"unknown command payload {text[:40]!r} for {entity.entity_id}")
        return command, {}
    if field == "mode":
        return "set_hvac_mode", {"hvac_mode": text}
    if field == "temperature":
        return "set_temperature", {"temperature": _number(text, "temperature")}
    if field == "position":
        return "set_cover_position", {"position": round(_number(text, "position"))}
    if field == "percentage":
        return "set_percentage", {"percentage": round(_number(text, "percentage"))}
    raise CommandError("not_supported", f"no command topic '{field}' for {entity.entity_id}")


def _dumps(data: Any) -> bytes:
    # default=str: a driver that stores a set or a datetime in attributes must not stall the publisher.
    return json.dumps(data, separators=(",", ":"), default=str).encode()


class Exporter:
    """Publishes this hub's entities (configs and states, retained) and maps object ids back to entities."""

    __slots__ = ("_available", "_by_object", "_dirty_config", "_dirty_state", "_exported", "_hub", "_is_imported",
                 "_removed_configs", "_stats", "_topics", "_unsubs", "_wake", "hub_id", "publishing")

    def __init__(self, hub: Hub, topics: ExportTopics, stats: BridgeStats,
                 is_imported: Callable[[str], bool]) -> None:
        self._hub = hub
        self._topics = topics
        self.hub_id = topics.hub_id
        self._stats = stats
        self._is_imported = is_imported  # entity ids the bridge mirrors from the broker
        self._wake = asyncio.Event()
        self._dirty_config: set[str] = set()
        self._dirty_state: set[str] = set()
        self._removed_configs: set[str] = set()
        self._exported: dict[str, str] = {}  # entity_id -> config topic, for removal
        self._by_object: dict[str, str] = {}  # object_id -> exported entity_id
        self._available: dict[str, bool] = {}  # entity_id -> what its availability topic says now
        self._unsubs: list[Callable[[], None]] = []
        self.publishing = False  # a batch is on its way (benchmarks wait for quiet)

    def start(self) -> None:
        bus = self._hub.bus
        self._unsubs.append(bus.listen(EVENT_STATE_CHANGED, self._on_state_changed))
        self._unsubs.append(bus.listen(EVENT_ENTITY_REGISTRY_UPDATED, self._on_entity_registry))
        self._unsubs.append(bus.listen(EVENT_DEVICE_REGISTRY_UPDATED, self._on_device_registry))

    def stop(self) -> None:
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()

    @property
    def idle(self) -> bool:
        """Nothing waits to be published and no batch is on its way."""
        return not (self._dirty_state or self._dirty_config or self._removed_configs or self._wake.is_set()
                    or self.publishing)

    def exported(self) -> dict[str, str]:
        """Entity id → config topic of everything announced."""
        return dict(self._exported)

    def entity_for_object(self, object_id: str) -> str | None:
        return self._by_object.get(object_id)

    def announce_all(self) -> None:
        """Retained configs/states may be gone (fresh broker) or this process is new: announce all."""
        ids = self._exportable_ids()
        self._available.clear()  # the retained availability may be gone too
        self._dirty_config.update(ids)
        self._dirty_state.update(ids)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def _exportable(self, entity: Entity | None) -> bool:
        return entity is not None and not entity.disabled and not entity.unique_id.startswith(IMPORT_PREFIX)

    def _exportable_ids(self) -> list[str]:
        return [e.entity_id for e in self._hub.entities.all() if self._exportable(e)]

    def _on_state_changed(self, event: Event[Any]) -> None:
        entity_id = event.data["entity_id"]
        if self._is_imported(entity_id):
            return  # never re-export what we imported
        self._dirty_state.add(entity_id)
        self._wake.set()

    def _on_entity_registry(self, event: Event[Any]) -> None:
        entity_id = event.data["entity_id"]
        if event.data["action"] == "remove":
            topic = self._exported.pop(entity_id, None)
            if topic is not None:
                self._removed_configs.update((topic, self._topics.availability(entity_id)))
                self._by_object.pop(object_id_for(entity_id), None)
                self._available.pop(entity_id, None)
        else:
            self._dirty_config.add(entity_id)
        self._wake.set()

    def _on_device_registry(self, event: Event[Any]) -> None:
        device_id = event.data["device_id"]
        for entity in self._hub.entities.for_device(device_id):
            self._dirty_config.add(entity.entity_id)
        self._wake.set()

    def _config_payload(self, entity: Entity) -> tuple[str, bytes]:
        hub = self._hub
        device = hub.devices.get(entity.device_id) if entity.device_id else None
        area_id = hub.entities.area_of(entity)
        area = hub.areas.get(area_id) if area_id else None
        config = discovery_config(entity, device, area.name if area else None, self._topics,
                                  hub.presentation.look(entity.entity_id))
        return self._topics.config(entity), _dumps(config)

    async def publisher(self, client: MqttClient) -> None:
        """Drain the dirty sets for as long as the connection lasts."""
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
                # An appliance out of reach: "offline" on its availability topic, and its state topic keeps the
                # last real state (Home Assistant's numeric sensors refuse a state "unavailable").
                available = state.value != UNAVAILABLE
                if self._available.get(entity_id) is not available:
                    self._available[entity_id] = available
                    messages.append((self._topics.availability(entity_id), ONLINE if available else OFFLINE,
                                     QOS_STATE))
                if available:
                    doc = state_document(entity, state, self.hub_id, hub.presentation.look(entity_id))
                    messages.append((self._topics.state(entity_id), _dumps(doc), QOS_STATE))
            self.publishing = True
            try:
                for start in range(0, len(messages), PUBLISH_BATCH):
                    batch = messages[start : start + PUBLISH_BATCH]
                    await asyncio.gather(*(client.publish(t, p, qos=q, retain=True) for t, p, q in batch))
                    self._stats.published += len(batch)
            except aiomqtt.MqttError:
                # Not sent: keep them dirty so the next connection publishes them.
                self._removed_configs |= removed
                self._dirty_config |= {e for e in configs if e in self._exported}
                self._dirty_state |= states
                for entity_id in states:
                    self._available.pop(entity_id, None)  # not known to have arrived: say it again
                raise
            finally:
                self.publishing = False
