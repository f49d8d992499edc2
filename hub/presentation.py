"""How Home Assistant shows an entity: its name, unit, device and state class, icon and per-domain attributes.

Home Assistant's clients (its frontend, hass-client, home-assistant-js-websocket, Immersive-Home) read an
entity's presentation from its state attributes: ``friendly_name``, ``unit_of_measurement``, ``device_class``,
``state_class``, ``icon``, and per domain what it can do (``supported_features``, ``supported_color_modes``,
``min_color_temp_kelvin``, ``hvac_modes``, ``min_temp``...). An MQTT discovery config says the same things as
keys. Both are derived here, once, from the capability catalogue (:mod:`qilu_hub.capabilities`) and the entity
and device registries, never per driver:

* :func:`describe` turns an entity (and its device) into a :class:`Look`;
* :class:`Presentation` keeps one Look per entity, follows registry changes (a renamed device renames its
  entities' ``friendly_name`` at once, as in Home Assistant) and is the state machine's attribute hook, so
  every state written carries its Look and every API (WebSocket, REST, msgpack stream) shows it unchanged;
* the MQTT export (:mod:`qilu_hub.mqtt.export`) builds its discovery configs from the same Look.

Naming follows Home Assistant's ``has_entity_name`` rules
(developers.home-assistant.io/docs/core/entity#entity-naming): an entity of a device is named for what it is
on that device ("Power"); its friendly name is the device's name and that ("Fridge Power"); the device's main
feature has no name of its own and shows the device's name alone; an entity without a device shows its own
name. Attribute names, device classes and feature bits are Home Assistant 2024.3's
(developers.home-assistant.io/docs/core/entity/sensor, .../light, .../climate, .../cover, .../fan,
.../media-player); ``tests/mqtt/test_ha_discovery.py`` checks the tables below against that release's code.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import capabilities as caps
from .registry import EVENT_DEVICE_REGISTRY_UPDATED, EVENT_ENTITY_REGISTRY_UPDATED
from .states import UNAVAILABLE

if TYPE_CHECKING:
    from .bus import Event, EventBus
    from .model import Device, Entity
    from .registry import DeviceRegistry, EntityRegistry
    from .states import StateMachine

__all__ = [
    "BINARY_SENSOR_DEVICE_CLASSES",
    "DEVICE_CLASSES",
    "FEATURES",
    "SENSOR_DEVICE_CLASSES",
    "Look",
    "Presentation",
    "current_color_mode",
    "describe",
    "entity_name",
    "friendly_name",
    "hs_from_rgb",
    "light_color_modes",
    "own_attributes",
    "present",
]

SENSOR_DEVICE_CLASSES = frozenset({
    "apparent_power", "aqi", "atmospheric_pressure", "battery", "carbon_dioxide", "carbon_monoxide", "current",
    "data_rate", "data_size", "date", "distance", "duration", "energy", "energy_storage", "enum", "frequency",
    "gas", "humidity", "illuminance", "irradiance", "moisture", "monetary", "nitrogen_dioxide",
    "nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power", "power_factor",
    "precipitation", "precipitation_intensity", "pressure", "reactive_power", "signal_strength", "sound_pressure",
    "speed", "sulphur_dioxide", "temperature", "timestamp", "volatile_organic_compounds",
    "volatile_organic_compounds_parts", "voltage", "volume", "volume_flow_rate", "volume_storage", "water",
    "weight", "wind_speed",
})
BINARY_SENSOR_DEVICE_CLASSES = frozenset({
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas", "heat",
    "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug", "power", "presence",
    "problem", "running", "safety", "smoke", "sound", "tamper", "update", "vibration", "window",
})
# Device classes Home Assistant knows per domain; any other a driver names is left out (HA would refuse it).
DEVICE_CLASSES: Mapping[str, frozenset[str]] = {
    "sensor": SENSOR_DEVICE_CLASSES,
    "binary_sensor": BINARY_SENSOR_DEVICE_CLASSES,
    "cover": frozenset({"awning", "blind", "curtain", "damper", "door", "garage", "gate", "shade", "shutter",
                        "window"}),
    "switch": frozenset({"outlet", "switch"}),
    "button": frozenset({"identify", "restart", "update"}),
    "media_player": frozenset({"receiver", "speaker", "tv"}),
    "event": frozenset({"button", "doorbell", "motion"}),
}

# supported_features per domain: the feature enum's name in Home Assistant, and for each command an entity
# accepts (``command`` or ``command:argument``) the member and bit it sets.
FEATURES: Mapping[str, tuple[str, Mapping[str, tuple[str, int]]]] = {
    "light": ("LightEntityFeature", {"turn_on:transition": ("TRANSITION", 32)}),
    "cover": ("CoverEntityFeature", {"open_cover": ("OPEN", 1), "close_cover": ("CLOSE", 2),
                                     "set_cover_position": ("SET_POSITION", 4), "stop_cover": ("STOP", 8)}),
    "climate": ("ClimateEntityFeature", {"set_temperature": ("TARGET_TEMPERATURE", 1), "turn_off": ("TURN_OFF", 128),
                                         "turn_on": ("TURN_ON", 256)}),
    "fan": ("FanEntityFeature", {"set_percentage": ("SET_SPEED", 1)}),
    "media_player": ("MediaPlayerEntityFeature", {"media_pause": ("PAUSE", 1), "volume_set": ("VOLUME_SET", 4),
                                                  "turn_on": ("TURN_ON", 128), "turn_off": ("TURN_OFF", 256),
                                                  "media_stop": ("STOP", 4096), "media_play": ("PLAY", 16384)}),
    "lock": ("LockEntityFeature", {"open": ("OPEN", 1)}),
}

_MIREDS = 1_000_000


@dataclass(frozen=True, slots=True)
class Look:
    """What Home Assistant shows for one entity, apart from its state."""

    # The entity's own part of its name; None for the device's main feature (the device's name alone).
    name: str | None
    friendly_name: str
    # Always ours, over whatever a driver writes: friendly_name, unit_of_measurement, device_class,
    # state_class, icon. Only the keys that apply are present.
    shown: Mapping[str, Any]
    # What the entity can do (supported_features, colour modes, ranges): a driver that knows its appliance
    # better (fewer hvac_modes, a narrower colour temperature range) reports its own and that stands.
    capabilities: Mapping[str, Any] = field(default_factory=dict)
    color_modes: tuple[str, ...] = ()  # lights only


def _same_name(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def entity_name(entity: Entity, device: Device | None) -> str | None:
    """The entity's own part of its name under ``has_entity_name``: "Power" of "Fridge Power" on the device
    "Fridge", None when it is the device's main feature (named as the device), its whole name without a device."""
    name = entity.name_by_user or entity.name
    if device is None:
        return name
    for device_name in dict.fromkeys((device.display_name, device.name)):
        if not name.strip() or _same_name(name, device_name):
            return None
        if name.casefold().startswith(device_name.casefold() + " "):
            return name[len(device_name) + 1:].strip() or None
    return name


def friendly_name(entity: Entity, device: Device | None) -> str:
    part = entity_name(entity, device)
    if device is None:
        return part or entity.entity_id
    return device.display_name if part is None else f"{device.display_name} {part}"


def light_color_modes(capabilities: Iterable[str]) -> tuple[str, ...]:
    """Home Assistant's ``supported_color_modes`` for a light: ``onoff`` and ``brightness`` only alone; colour
    as ``hs`` (commands take ``hs_color`` and ``rgb_color`` alike), with ``color_temp`` for tunable white."""
    names = set(capabilities)
    modes = tuple(mode for cap, mode in (("color_temperature", "color_temp"), ("color", "hs")) if cap in names)
    if modes:
        return modes
    return ("brightness",) if "level" in names else ("onoff",)


def current_color_mode(modes: tuple[str, ...], value: Any, attributes: Mapping[str, Any]) -> str | None:
    """The light's ``color_mode`` now: None while not on (as Home Assistant), else the driver's own if it is one
    of the supported modes, else the mode its attributes show (a colour temperature before a colour)."""
    if value != "on":
        return None
    given = attributes.get("color_mode")
    if given in modes:
        return str(given)
    if len(modes) == 1:
        return modes[0]
    if "color_temp" in modes and attributes.get("color_temp_kelvin") is not None:
        return "color_temp"
    if attributes.get("hs_color") is not None or attributes.get("rgb_color") is not None:
        return "hs"
    return modes[0]


def _supported_features(domain: str, commands: Mapping[str, caps.CommandSpec]) -> int | None:
    table = FEATURES.get(domain)
    if table is None:
        return None
    bits = 0
    for key, (_member, bit) in table[1].items():
        command, _, arg = key.partition(":")
        spec = commands.get(command)
        if spec is not None and (not arg or arg in spec.args):
            bits |= bit
    return bits


def _capability_attributes(entity: Entity) -> dict[str, Any]:
    domain = entity.domain
    out: dict[str, Any] = {}
    features = _supported_features(domain, entity.commands)
    if domain == "light":
        modes = light_color_modes(entity.capabilities)
        out["supported_color_modes"] = list(modes)
        if "color_temp" in modes:
            spec = caps.get("color_temperature").attributes["color_temp_kelvin"]
            low, high = int(spec.min or 2000), int(spec.max or 6500)
            out.update(min_color_temp_kelvin=low, max_color_temp_kelvin=high,
                       min_mireds=_MIREDS // high, max_mireds=_MIREDS // low)
    elif domain == "climate":
        mode = entity.commands.get("set_hvac_mode")
        if mode is not None and "hvac_mode" in mode.args:
            out["hvac_modes"] = list(mode.args["hvac_mode"].options)
        target = entity.commands.get("set_temperature")
        if target is not None and "temperature" in target.args:
            spec = target.args["temperature"]
            out.update(min_temp=spec.min, max_temp=spec.max)
    elif domain == "fan":
        percentage = entity.commands.get("set_percentage")
        if percentage is not None:
            out["percentage_step"] = 1.0  # 0..100 in whole percent: Home Assistant's default of 100 speeds
    elif domain == "sensor" and entity.device_class == "enum":
        out["options"] = list(caps.get(entity.capabilities[0]).state.options)
    if features is not None:
        out["supported_features"] = features
    return out


def state_class_of(entity: Entity) -> str | None:
    """``measurement`` for numeric sensors, or what the capability says (``total_increasing`` for meters)."""
    if entity.domain != "sensor" or entity.device_class in ("enum", "timestamp", "date"):
        return None
    primary = caps.get(entity.capabilities[0])
    if primary.state.type not in ("int", "float"):
        return None
    return primary.state_class or "measurement"


def ha_device_class(entity: Entity) -> str | None:
    """The entity's device class if Home Assistant knows it for the entity's domain, else None."""
    known = DEVICE_CLASSES.get(entity.domain)
    return entity.device_class if known is not None and entity.device_class in known else None


def describe(entity: Entity, device: Device | None) -> Look:
    """The Look of one entity, from its capabilities, its registry entry and its device."""
    shown: dict[str, Any] = {"friendly_name": friendly_name(entity, device)}
    if entity.domain == "sensor" and entity.unit and entity.device_class != "enum":
        shown["unit_of_measurement"] = entity.unit
    device_class = ha_device_class(entity)
    if device_class is not None:
        shown["device_class"] = device_class
    state_class = state_class_of(entity)
    if state_class is not None:
        shown["state_class"] = state_class
    icon = entity.icon or caps.get(entity.capabilities[0]).icon
    if icon:
        shown["icon"] = icon
    modes = light_color_modes(entity.capabilities) if entity.domain == "light" else ()
    return Look(entity_name(entity, device), shown["friendly_name"], shown, _capability_attributes(entity), modes)


def hs_from_rgb(rgb: Any) -> list[float] | None:
    """``hs_color`` (hue in degrees, saturation in percent) of an ``rgb_color``; None if it is not three numbers."""
    try:
        r, g, b = (float(c) / 255 for c in rgb)
    except (TypeError, ValueError):
        return None
    hue, saturation, _ = colorsys.rgb_to_hsv(r, g, b)
    return [round(hue * 360, 3), round(saturation * 100, 3)]


def present(look: Look, value: Any, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A state's attributes as Home Assistant shows them: capability attributes under the driver's, the
    presentation over them, and for lights the colour mode (and the colour's other forms) of the moment."""
    merged = {**look.capabilities, **attributes, **look.shown}
    modes = look.color_modes
    if modes and value != UNAVAILABLE:  # unavailable keeps its attributes, the colour mode among them
        mode = current_color_mode(modes, value, merged)
        merged["color_mode"] = mode
        if mode == "hs" and merged.get("hs_color") is None and merged.get("rgb_color") is not None:
            merged["hs_color"] = hs_from_rgb(merged["rgb_color"])
        elif mode == "color_temp" and isinstance(kelvin := merged.get("color_temp_kelvin"), int | float) and kelvin > 0:
            merged["color_temp"] = round(_MIREDS / kelvin)
    return merged


def own_attributes(look: Look, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes without what :func:`present` added: what the appliance itself reported."""
    shown, defaults = look.shown, look.capabilities
    return {key: value for key, value in attributes.items()
            if key not in shown and key != "color_mode" and not (key in defaults and defaults[key] == value)}


_UNREGISTERED = Look(None, "", {})  # a state without a registry entry: written as given


class Presentation:
    """One Look per entity, kept in step with the registries; the state machine's attribute hook.

    A registry change that alters what an entity shows (a device or entity renamed) rewrites the entity's
    current state at once, so every subscriber sees the new ``friendly_name`` as Home Assistant's would.
    """

    __slots__ = ("_devices", "_entities", "_looks", "_states", "_unsubs")

    def __init__(self, bus: EventBus, states: StateMachine, entities: EntityRegistry, devices: DeviceRegistry) -> None:
        self._states = states
        self._entities = entities
        self._devices = devices
        self._looks: dict[str, Look] = {}
        self._unsubs: list[Callable[[], None]] = [
            bus.listen(EVENT_ENTITY_REGISTRY_UPDATED, self._on_entity_registry),
            bus.listen(EVENT_DEVICE_REGISTRY_UPDATED, self._on_device_registry),
        ]

    def look(self, entity_id: str) -> Look | None:
        """The entity's Look; None for a state without a registry entry."""
        look = self._looks.get(entity_id)
        if look is None:
            look = self._describe(entity_id)
            self._looks[entity_id] = look
        return None if look is _UNREGISTERED else look

    def own_attributes(self, entity_id: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """An entity's attributes without its Look: what its appliance reported."""
        look = self.look(entity_id)
        return dict(attributes) if look is None else own_attributes(look, attributes)

    def _describe(self, entity_id: str) -> Look:
        entity = self._entities.get(entity_id)
        if entity is None:
            return _UNREGISTERED
        device = self._devices.get(entity.device_id) if entity.device_id else None
        return describe(entity, device)

    def decorate(self, entity_id: str, value: Any, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
        """The attributes to store for a state being written (the state machine calls this on every write)."""
        look = self._looks.get(entity_id)
        if look is None:
            look = self._describe(entity_id)
            self._looks[entity_id] = look
        if look is _UNREGISTERED:
            return attributes
        if look.color_modes:
            return present(look, value, attributes)
        # The hot path (every sensor reading): present() without the lights' part.
        merged = {**look.capabilities, **attributes} if look.capabilities else dict(attributes)
        merged.update(look.shown)
        return merged

    def _on_entity_registry(self, event: Event[Any]) -> None:
        entity_id = event.data.get("entity_id")
        if not isinstance(entity_id, str):
            return
        if event.data.get("action") == "remove":
            self._looks.pop(entity_id, None)
            return
        self._refresh(entity_id)
        old_id = event.data.get("old_entity_id")  # an entity id changed: the old one's Look is stale
        if isinstance(old_id, str):
            self._looks.pop(old_id, None)

    def _on_device_registry(self, event: Event[Any]) -> None:
        device_id = event.data.get("device_id")
        if not isinstance(device_id, str):
            return
        for entity in self._entities.for_device(device_id):
            self._refresh(entity.entity_id)

    def _refresh(self, entity_id: str) -> None:
        old = self._looks.pop(entity_id, None)
        state = self._states.get(entity_id)
        if old is None or state is None:
            return  # described again at its next write
        new = self._describe(entity_id)
        self._looks[entity_id] = new
        if new == old:
            return
        # Drop what the old Look put there (a default the driver did not override included), then write again:
        # decorate() applies the new Look.
        attributes = {key: value for key, value in state.attributes.items()
                      if key not in old.shown and not (key in old.capabilities and old.capabilities[key] == value)}
        self._states.async_set(entity_id, state.value, attributes, state.context)

    def close(self) -> None:
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
