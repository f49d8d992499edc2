"""zigbee2mqtt's own device descriptions (``bridge/devices`` and its exposes) turned into the common model.

Pure functions: the running side (subscriptions, states, commands on the broker) is ``zigbee2mqtt.py``.
What the payloads look like is taken from zigbee2mqtt's documentation and its test fixtures (facts, no code):

* MQTT topics and messages, https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html:
  ``<base>/bridge/state`` is ``{"state": "online"}`` (zigbee2mqtt 1.17+; the legacy API published the plain
  string ``online``), ``<base>/bridge/devices`` a retained JSON list of devices, ``<base>/bridge/event``
  ``{"type": "device_joined"|"device_interview"|"device_leave"|..., "data": {...}}``, ``<base>/<friendly_name>``
  one JSON object per device state, ``<base>/<friendly_name>/set`` JSON commands such as
  ``{"state": "ON", "brightness": 255, "color": {"x": 0.123, "y": 0.123}}``, and
  ``<base>/<friendly_name>/availability`` ``{"state": "online"|"offline"}`` (or the plain string).
* Exposes, https://www.zigbee2mqtt.io/guide/usage/exposes.html: generic types ``binary`` (``value_on``,
  ``value_off``, ``value_toggle``), ``numeric`` (``value_min``, ``value_max``, ``unit``), ``enum`` (``values``),
  ``composite``, and specific types ``light``, ``switch``, ``cover``, ``lock``, ``climate``, ``fan`` whose
  ``features`` are generic exposes; every expose has ``property`` (the key in the state and ``/set`` JSON),
  an optional ``endpoint``, and ``access`` bits: 1 published in the state, 2 settable through ``/set``,
  4 readable through ``/get``.
* The ``bridge/devices`` entries of the IKEA LED1545G12 bulb and the Aqara WSDCGQ11LM sensor as zigbee2mqtt's
  own test expects them: Koenkk/zigbee2mqtt test/extensions/bridge.test.ts, "Should publish devices on startup"
  (commit 03847732cce9233d832d39b5ff05e586a5c7450c): brightness 0..254, ``color_temp`` in mired with
  ``value_min``/``value_max``, battery voltage in mV, ``linkquality`` in lqi with category ``diagnostic``.

Each device entry becomes a :class:`NativeDevice` whose :class:`NativeEntity` list maps exposes to the
capability catalogue (``hub/capabilities.py``); an expose without a matching capability is kept in
``skipped`` with the reason. Bad input raises :class:`Z2mError` (whole payload) or is reported per entry,
never partly applied.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..capabilities import HVAC_MODES, CommandError

__all__ = [
    "MAX_DEVICES",
    "MAX_DEVICES_BYTES",
    "Feature",
    "NativeDevice",
    "NativeEntity",
    "Z2mError",
    "command_body",
    "parse_bridge_devices",
    "parse_device",
    "parse_online",
    "read_state",
]

# zigbee2mqtt's bridge/devices for a large network (hundreds of devices with full exposes) is a few MiB;
# anything far beyond is refused whole rather than half-parsed.
MAX_DEVICES_BYTES = 16 * 1024 * 1024
MAX_DEVICES = 5000
MAX_EXPOSES = 512  # per device, features included
MAX_STATE_BYTES = 1024 * 1024

ACCESS_STATE = 1
ACCESS_SET = 2

_IEEE = re.compile(r"^0x[0-9a-fA-F]{16}$")

# property -> (capability, {zigbee2mqtt unit: factor to the capability's unit, or a converter name})
_NUMERIC: dict[str, tuple[str, dict[str | None, float | str]]] = {
    "temperature": ("temperature", {"°C": 1.0, "°F": "f_to_c"}),
    "humidity": ("humidity", {"%": 1.0}),
    "illuminance": ("illuminance", {"lx": 1.0}),
    "illuminance_lux": ("illuminance", {"lx": 1.0}),
    "pressure": ("pressure", {"hPa": 1.0, "kPa": 10.0}),
    "co2": ("co2", {"ppm": 1.0}),
    "pm25": ("pm25", {"µg/m³": 1.0}),
    "power": ("power", {"W": 1.0, "kW": 1000.0}),
    "energy": ("energy", {"kWh": 1.0, "Wh": 0.001}),
    "voltage": ("voltage", {"V": 1.0, "mV": 0.001}),
    "battery": ("battery", {"%": 1.0}),
}
_BINARY = {
    "occupancy": "occupancy", "presence": "occupancy", "contact": "contact", "water_leak": "moisture",
    "smoke": "smoke",
}
_COVER_STATES = {"OPEN": "open", "CLOSE": "closed", "CLOSED": "closed", "OPENING": "opening",
                 "CLOSING": "closing", "STOP": None}
_FAN_MODES = ("low", "medium", "high")


class Z2mError(ValueError):
    """A zigbee2mqtt payload this hub cannot use; the message says why."""


@dataclass(frozen=True, slots=True)
class Feature:
    """One generic expose: where its value lives in the device's JSON and what it may hold."""

    property: str
    type: str  # binary | numeric | enum | composite
    access: int = ACCESS_STATE
    value_on: Any = None
    value_off: Any = None
    value_toggle: Any = None
    value_min: float | None = None
    value_max: float | None = None
    values: tuple[str, ...] = ()
    unit: str | None = None

    def settable(self) -> bool:  # a method: the field "property" shadows the builtin in this class body
        return bool(self.access & ACCESS_SET)

    def check(self, name: str, value: float) -> float:
        """A value for ``/set`` within the device's own range, or CommandError."""
        if not self.settable():
            raise CommandError("not_supported", f"{self.property} cannot be set on this device")
        low = -math.inf if self.value_min is None else self.value_min
        high = math.inf if self.value_max is None else self.value_max
        if not low <= value <= high:
            raise CommandError("out_of_range", f"{name} {value:g} is outside this device's range {low:g}..{high:g}")
        return value


@dataclass(slots=True)
class NativeEntity:
    """One hub entity of a zigbee2mqtt device: which exposes it reads and sets."""

    key: str  # stable within the device: "light", "light_l2", "temperature"
    kind: str  # light | switch | cover | lock | climate | fan | sensor | binary
    name: str
    capabilities: tuple[str, ...]
    features: dict[str, Feature]  # role (state, brightness, color_temp, color, position, ...) -> feature
    entity_category: str | None = None
    convert: float | str = 1.0  # sensors: factor (or converter) from zigbee2mqtt's unit to the capability's


@dataclass(slots=True)
class NativeDevice:
    """One zigbee2mqtt device from ``bridge/devices``, by IEEE address (its identity across renames)."""

    ieee: str
    friendly_name: str
    manufacturer: str | None = None
    model: str | None = None
    sw_version: str | None = None
    disabled: bool = False  # disabled in zigbee2mqtt: kept, but unavailable (zigbee2mqtt neither reads nor sets it)
    entities: list[NativeEntity] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # property -> why it has no entity
    raw: str = ""  # canonical JSON of the entry: an unchanged entry is not re-adopted


# -- bridge payloads ----------------------------------------------------------------------------


def parse_online(payload: bytes) -> bool | None:
    """``{"state": "online"}`` or the legacy plain ``online``/``offline``; None when neither."""
    text = payload.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        text = str(data.get("state", "")) if isinstance(data, dict) else ""
    if text == "online":
        return True
    if text == "offline":
        return False
    return None


def parse_bridge_devices(payload: bytes) -> tuple[list[NativeDevice], dict[str, str], set[str] | None]:
    """The device list; (devices, problems by entry, IEEE addresses of entries that could not be read).

    Raises :class:`Z2mError` when the payload as a whole is unusable (too large, not JSON, not a list);
    the caller then keeps what it knew. A malformed entry is reported and skipped; if its IEEE address can
    still be read, it is listed in the third item so that the caller keeps that device as it was. When an
    entry cannot even be identified, the third item is None: any known device might be that one, so the
    caller removes nothing on this list.
    """
    if len(payload) > MAX_DEVICES_BYTES:
        raise Z2mError(f"bridge/devices is {len(payload)} bytes, more than the {MAX_DEVICES_BYTES} accepted")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as err:
        raise Z2mError(f"bridge/devices is not JSON: {err}") from None
    if not isinstance(data, list):
        raise Z2mError(f"bridge/devices must be a JSON list, not {type(data).__name__}")
    if len(data) > MAX_DEVICES:
        raise Z2mError(f"bridge/devices lists {len(data)} devices, more than the {MAX_DEVICES} accepted")
    devices: list[NativeDevice] = []
    problems: dict[str, str] = {}
    unreadable: set[str] = set()
    unidentified = False
    seen: set[str] = set()
    for index, entry in enumerate(data):
        where = f"entry {index}"
        if isinstance(entry, Mapping) and isinstance(entry.get("ieee_address"), str):
            where = f"entry {index} ({entry['ieee_address']})"
        try:
            device = parse_device(entry)
        except Z2mError as err:
            problems[where] = str(err)
            if isinstance(entry, Mapping) and isinstance(entry.get("ieee_address"), str) \
                    and _IEEE.match(entry["ieee_address"]):
                unreadable.add(entry["ieee_address"].lower())
            else:
                unidentified = True
            continue
        if device is None:
            continue
        if device.ieee in seen:
            problems[where] = f"{device.ieee} is listed twice"
            continue
        seen.add(device.ieee)
        devices.append(device)
    names = [d.friendly_name for d in devices]
    if len(set(names)) != len(names):
        raise Z2mError("bridge/devices gives two devices the same friendly_name")
    return devices, problems, None if unidentified else unreadable


def _text(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return value if isinstance(value, str) and value else None


def parse_device(entry: Any) -> NativeDevice | None:
    """One ``bridge/devices`` entry (or a ``device_interview`` event's data); None for the coordinator, which
    is zigbee2mqtt's own radio rather than a device of the home."""
    if not isinstance(entry, Mapping):
        raise Z2mError("a device entry must be a JSON object")
    ieee = entry.get("ieee_address")
    if not isinstance(ieee, str) or not _IEEE.match(ieee):
        raise Z2mError(f"ieee_address must be 0x followed by 16 hex digits, not {ieee!r}")
    name = entry.get("friendly_name")
    # Its state topic is <base>/<name>: no wildcards, and no name that reads as another topic of the scheme.
    if not isinstance(name, str) or not name or len(name) > 256 or any(c in name for c in "+#\0") \
            or name.startswith("/") or name.endswith("/") or name.split("/")[0] == "bridge" \
            or name.rsplit("/", 1)[-1] in ("set", "get", "availability"):
        raise Z2mError(f"friendly_name {name!r} cannot be a topic level")
    if entry.get("type") == "Coordinator":
        return None
    definition = entry.get("definition")
    device = NativeDevice(ieee=ieee.lower(), friendly_name=name, sw_version=_text(entry, "software_build_id"),
                          disabled=entry.get("disabled") is True)
    if definition is None:
        device.skipped["*"] = "not supported by zigbee2mqtt yet (no definition)"
    elif not isinstance(definition, Mapping):
        raise Z2mError("definition must be a JSON object")
    else:
        device.manufacturer = _text(definition, "vendor")
        device.model = _text(definition, "model")
        exposes = definition.get("exposes", [])
        if not isinstance(exposes, list):
            raise Z2mError("definition.exposes must be a list")
        budget = [MAX_EXPOSES]
        for expose in exposes:
            _expose(device, expose, budget)
    device.raw = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)
    return device


def _feature(item: Any, budget: list[int]) -> Feature:
    budget[0] -= 1
    if budget[0] < 0:
        raise Z2mError(f"more than {MAX_EXPOSES} exposes")
    if not isinstance(item, Mapping):
        raise Z2mError("an expose must be a JSON object")
    prop, kind = item.get("property"), item.get("type")
    if not isinstance(prop, str) or not prop or not isinstance(kind, str):
        raise Z2mError(f"an expose needs a property and a type: {str(dict(item))[:120]}")
    access = item.get("access", ACCESS_STATE)
    if isinstance(access, bool) or not isinstance(access, int):
        raise Z2mError(f"{prop}: access must be a number")
    values = item.get("values", ())
    lo, hi = item.get("value_min"), item.get("value_max")
    for bound in (lo, hi):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)
                                  or not math.isfinite(bound)):
            raise Z2mError(f"{prop}: value_min/value_max must be numbers")
    unit = item.get("unit")
    return Feature(prop, kind, access, item.get("value_on"), item.get("value_off"), item.get("value_toggle"),
                   lo, hi, tuple(str(v) for v in values) if isinstance(values, list) else (),
                   unit if isinstance(unit, str) else None)


def _features(expose: Mapping[str, Any], budget: list[int]) -> dict[str, Feature]:
    """A specific expose's features by name (``color_xy``, not its property ``color``)."""
    items = expose.get("features", [])
    if not isinstance(items, list):
        raise Z2mError(f"{expose.get('type')}: features must be a list")
    out: dict[str, Feature] = {}
    for item in items:
        feature = _feature(item, budget)
        name = item.get("name") if isinstance(item.get("name"), str) else feature.property
        out[name] = feature
    return out


def _label(expose: Mapping[str, Any], prop: str) -> str:
    label = expose.get("label")
    return label if isinstance(label, str) and label else prop.replace("_", " ").capitalize()


def _category(expose: Mapping[str, Any]) -> str | None:
    category = expose.get("category")
    return category if category in ("config", "diagnostic") else None


def _expose(device: NativeDevice, expose: Any, budget: list[int]) -> None:
    if not isinstance(expose, Mapping) or not isinstance(expose.get("type"), str):
        raise Z2mError("an expose must be a JSON object with a type")
    kind = expose["type"]
    endpoint = expose.get("endpoint")
    suffix = f"_{endpoint}" if isinstance(endpoint, str) and endpoint else ""
    if kind in ("light", "switch", "cover", "lock", "climate", "fan"):
        features = _features(expose, budget)
        entity = _specific(kind, features, suffix)
        if isinstance(entity, str):
            device.skipped[kind + suffix] = entity
            return
        entity.name = device.friendly_name if not suffix else f"{device.friendly_name} {endpoint}"
        device.entities.append(entity)
        return
    feature = _feature(expose, budget)
    prop = feature.property
    if feature.type == "numeric" and prop in _NUMERIC:
        capability, units = _NUMERIC[prop]
        if feature.unit not in units:
            device.skipped[prop] = f"unit {feature.unit!r} is not one the {capability} capability reads"
            return
        device.entities.append(NativeEntity(prop, "sensor", _label(expose, prop), (capability,),
                                            {"value": feature}, _category(expose), units[feature.unit]))
        return
    if feature.type == "binary" and prop in _BINARY:
        device.entities.append(NativeEntity(prop, "binary", _label(expose, prop), (_BINARY[prop],),
                                            {"value": feature}, _category(expose)))
        return
    device.skipped[prop] = f"{feature.type} expose {prop!r} has no matching capability"


def _specific(kind: str, f: dict[str, Feature], suffix: str) -> NativeEntity | str:
    """The entity of a light/switch/cover/lock/climate/fan expose, or why there is none."""
    state = f.get("state")
    if kind in ("light", "switch"):
        if state is None or state.type != "binary":
            return f"{kind} without a binary state feature"
        caps = ["on_off"]
        roles = {"state": state}
        if kind == "light":
            if "brightness" in f:
                caps.append("level")
                roles["brightness"] = f["brightness"]
            if "color_temp" in f:
                caps.append("color_temperature")
                roles["color_temp"] = f["color_temp"]
            color = f.get("color_xy") or f.get("color_hs")
            if color is not None:
                caps.append("color")
                roles["color"] = color
        return NativeEntity(kind + suffix, kind, "", tuple(caps), roles)
    if kind == "cover":
        if state is None and "position" not in f:
            return "cover without state or position"
        roles = {k: v for k, v in (("state", state), ("position", f.get("position"))) if v is not None}
        return NativeEntity(kind + suffix, kind, "", ("cover_position",), roles)
    if kind == "lock":
        if state is None or state.type != "binary":
            return "lock without a binary state feature"
        return NativeEntity(kind + suffix, kind, "", ("lock",), {"state": state})
    if kind == "climate":
        setpoint = f.get("occupied_heating_setpoint") or f.get("current_heating_setpoint")
        if setpoint is None:
            return "climate without a heating setpoint (cooling-only thermostats are not read natively)"
        roles = {"setpoint": setpoint}
        for role, name in (("current", "local_temperature"), ("mode", "system_mode")):
            if name in f:
                roles[role] = f[name]
        return NativeEntity(kind + suffix, kind, "", ("thermostat",), roles)
    # fan
    if state is None or state.type != "binary":
        return "fan without a binary state feature"
    roles = {"state": state}
    if "mode" in f and f["mode"].type == "enum":
        roles["mode"] = f["mode"]
    return NativeEntity(kind + suffix, kind, "", ("fan",), roles)


# -- state -------------------------------------------------------------------------------------


class _Missing:
    __slots__ = ()


MISSING: Any = _Missing()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _convert(value: float, convert: float | str) -> float:
    if convert == "f_to_c":
        return round((value - 32) * 5 / 9, 2)
    assert isinstance(convert, float)
    return round(value * convert, 6) if convert != 1.0 else value


def read_state(entity: NativeEntity, doc: Mapping[str, Any], attrs: dict[str, Any]) -> Any:
    """Update ``attrs`` from one state document; the new state value, or MISSING when it says nothing of it."""
    roles = entity.features
    state = roles.get("state")
    value: Any = MISSING
    if entity.kind in ("sensor", "binary"):
        feature = roles["value"]
        if feature.property not in doc:
            return MISSING
        raw = doc[feature.property]
        if entity.kind == "binary":
            return "on" if raw == feature.value_on else "off" if raw == feature.value_off else MISSING
        if raw is None:
            return None
        number = _number(raw)
        return MISSING if number is None else _convert(number, entity.convert)
    if entity.kind in ("light", "switch", "fan", "lock") and state is not None and state.property in doc:
        raw = doc[state.property]
        if entity.kind == "lock":
            value = "locked" if raw == state.value_on else "unlocked" if raw == state.value_off else MISSING
        else:
            value = "on" if raw == state.value_on else "off" if raw == state.value_off else MISSING
    if entity.kind == "light":
        _read_light(roles, doc, attrs)
    elif entity.kind == "fan" and "mode" in roles and isinstance(doc.get(roles["mode"].property), str):
        fan_mode = doc[roles["mode"].property]
        if fan_mode in _FAN_MODES:
            attrs["percentage"] = round((_FAN_MODES.index(fan_mode) + 1) * 100 / len(_FAN_MODES))
    elif entity.kind == "cover":
        position = roles.get("position")
        if position is not None and (number := _number(doc.get(position.property))) is not None:
            attrs["current_position"] = round(number)
            value = "closed" if number <= 0 else "open"
        if state is not None and doc.get(state.property) in _COVER_STATES and position is None:
            mapped = _COVER_STATES[doc[state.property]]
            value = mapped if mapped is not None else value
    elif entity.kind == "climate":
        for role, attr in (("current", "current_temperature"), ("setpoint", "temperature")):
            reading = roles.get(role)
            if reading is not None and (number := _number(doc.get(reading.property))) is not None:
                attrs[attr] = number
        system_mode = roles.get("mode")
        if system_mode is not None:
            attrs["hvac_modes"] = ",".join(m for m in system_mode.values if m in HVAC_MODES)
            if doc.get(system_mode.property) in HVAC_MODES:
                value = doc[system_mode.property]
        elif value is MISSING and "temperature" in attrs:
            value = "heat"
    return value


def _read_light(roles: dict[str, Feature], doc: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    brightness = roles.get("brightness")
    if brightness is not None and (number := _number(doc.get(brightness.property))) is not None:
        top = brightness.value_max or 254
        attrs["brightness"] = max(0, min(255, round(number * 255 / top)))
    color_temp = roles.get("color_temp")
    if color_temp is not None and (number := _number(doc.get(color_temp.property))) is not None and number > 0:
        attrs["color_temp_kelvin"] = round(1_000_000 / number)
    color = roles.get("color")
    raw = doc.get(color.property) if color is not None else None
    if isinstance(raw, Mapping):
        x, y = _number(raw.get("x")), _number(raw.get("y"))
        if x is not None and y is not None:
            attrs["xy_color"] = [x, y]
        hue, sat = _number(raw.get("hue")), _number(raw.get("saturation"))
        if hue is not None and sat is not None:
            attrs["hs_color"] = [hue, sat]
    mode = doc.get("color_mode")
    if isinstance(mode, str):
        attrs["color_mode"] = mode


# -- commands ------------------------------------------------------------------------------------


def _set_value(feature: Feature, value: Any) -> Any:
    if not feature.settable():
        raise CommandError("not_supported", f"{feature.property} cannot be set on this device")
    return value


def command_body(entity: NativeEntity, command: str, args: Mapping[str, Any], current: Any) -> dict[str, Any]:
    """The JSON object for ``<base>/<friendly_name>/set`` that carries a hub command (already checked against
    the capability catalogue) to the device, checked against the device's own exposes first."""
    roles = entity.features
    state = roles.get("state")
    if entity.kind in ("light", "switch", "fan"):
        assert state is not None
        if command == "toggle":
            if state.value_toggle is not None:
                return {state.property: _set_value(state, state.value_toggle)}
            command = "turn_off" if current == "on" else "turn_on"
        if command == "turn_off":
            return {state.property: _set_value(state, state.value_off)}
        if command == "set_percentage" or (command == "turn_on" and "percentage" in args):
            return _fan_percentage(entity, int(args["percentage"]))
        if command != "turn_on":
            raise CommandError("not_supported", f"{command} is not supported by this zigbee2mqtt {entity.kind}")
        body: dict[str, Any] = {state.property: _set_value(state, state.value_on)}
        if entity.kind == "light":
            _light_args(roles, args, body)
        return body
    if entity.kind == "lock" and state is not None:
        return {state.property: _set_value(state, state.value_on if command == "lock" else state.value_off)}
    if entity.kind == "cover":
        return _cover(roles, command, args)
    if entity.kind == "climate":
        return _climate(roles, command, args)
    raise CommandError("not_supported", f"{entity.name} cannot be commanded")


def _light_args(roles: dict[str, Feature], args: Mapping[str, Any], body: dict[str, Any]) -> None:
    brightness = roles.get("brightness")
    level = args.get("brightness")
    if "brightness_pct" in args:
        level = args["brightness_pct"] * 255 / 100
    if level is not None:
        if brightness is None:
            raise CommandError("not_supported", "this light has no brightness")
        top = brightness.value_max or 254
        body[brightness.property] = brightness.check("brightness", round(level * top / 255))
    if "color_temp_kelvin" in args:
        color_temp = roles.get("color_temp")
        if color_temp is None:
            raise CommandError("not_supported", "this light has no colour temperature")
        mired = round(1_000_000 / args["color_temp_kelvin"])
        if (color_temp.value_min is not None and mired < color_temp.value_min) or (
                color_temp.value_max is not None and mired > color_temp.value_max):
            low = round(1_000_000 / color_temp.value_max) if color_temp.value_max else 0
            high = round(1_000_000 / color_temp.value_min) if color_temp.value_min else 0
            raise CommandError("out_of_range", f"color_temp_kelvin {args['color_temp_kelvin']} is outside this "
                                               f"light's range {low}..{high} K")
        body[color_temp.property] = _set_value(color_temp, mired)
    if "hs_color" in args or "rgb_color" in args:
        color = roles.get("color")
        if color is None:
            raise CommandError("not_supported", "this light has no colour")
        if "hs_color" in args:
            body[color.property] = {"hue": args["hs_color"][0], "saturation": args["hs_color"][1]}
        else:
            r, g, b = args["rgb_color"]
            body[color.property] = {"r": r, "g": g, "b": b}
        _set_value(color, None)
    if "transition" in args:
        body["transition"] = args["transition"]


def _fan_percentage(entity: NativeEntity, percentage: int) -> dict[str, Any]:
    state = entity.features["state"]
    mode = entity.features.get("mode")
    if percentage == 0:
        return {state.property: _set_value(state, state.value_off)}
    if mode is None or not all(m in mode.values for m in _FAN_MODES):
        raise CommandError("not_supported", "this fan has no low/medium/high modes")
    index = min(len(_FAN_MODES) - 1, math.ceil(percentage * len(_FAN_MODES) / 100) - 1)
    return {mode.property: _set_value(mode, _FAN_MODES[index])}


def _cover(roles: dict[str, Feature], command: str, args: Mapping[str, Any]) -> dict[str, Any]:
    if command == "set_cover_position":
        position = roles.get("position")
        if position is None:
            raise CommandError("not_supported", "this cover has no position")
        return {position.property: position.check("position", args["position"])}
    state = roles.get("state")
    payload = {"open_cover": "OPEN", "close_cover": "CLOSE", "stop_cover": "STOP"}.get(command)
    if state is None or payload is None:
        raise CommandError("not_supported", f"{command} is not supported by this cover")
    if state.values and payload not in state.values:
        raise CommandError("not_supported", f"this cover does not accept {payload}")
    return {state.property: _set_value(state, payload)}


def _climate(roles: dict[str, Feature], command: str, args: Mapping[str, Any]) -> dict[str, Any]:
    if command == "set_temperature":
        setpoint = roles["setpoint"]
        return {setpoint.property: setpoint.check("temperature", args["temperature"])}
    mode = roles.get("mode")
    wanted = {"set_hvac_mode": args.get("hvac_mode"), "turn_off": "off", "turn_on": "heat"}.get(command)
    if mode is None or wanted is None:
        raise CommandError("not_supported", f"{command} is not supported by this thermostat")
    if wanted not in mode.values:
        raise CommandError("out_of_range", f"this thermostat's modes are {', '.join(mode.values)}")
    return {mode.property: _set_value(mode, wanted)}
