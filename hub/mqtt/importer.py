"""Home Assistant-format discovery published by others, turned into the common model.

Reads the discovery payloads that zigbee2mqtt, ESPHome (MQTT mode), Tasmota and
other qilu hubs publish (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery):
abbreviated keys and the ``~`` base topic are expanded, the HA component and device
class pick our capability, and each entity gets the list of topics to read its state
from and the payloads that carry our commands back. Pure functions: the bridge does
the I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..capabilities import CommandError
from .template import MISSING, Template, TemplateError, compile_template, decode_json

__all__ = [
    "DiscoveryError",
    "ImportSpec",
    "StateSource",
    "command_messages",
    "expand_abbreviations",
    "parse_device_discovery",
    "parse_discovery",
    "read_source",
]

# https://www.home-assistant.io/integrations/mqtt/#supported-abbreviations-in-mqtt-discovery-messages (subset)
_ABBREVIATIONS = {
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "bri": "brightness", "bri_cmd_t": "brightness_command_topic",
    "bri_scl": "brightness_scale", "bri_stat_t": "brightness_state_topic",
    "bri_val_tpl": "brightness_value_template", "clr_temp_cmd_t": "color_temp_command_topic",
    "clr_temp_stat_t": "color_temp_state_topic", "clr_temp_val_tpl": "color_temp_value_template",
    "cmd_t": "command_topic", "cmd_tpl": "command_template", "cmps": "components", "dev": "device",
    "dev_cla": "device_class", "ent_cat": "entity_category", "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template", "max_mirs": "max_mireds", "min_mirs": "min_mireds",
    "o": "origin", "obj_id": "object_id", "opt": "optimistic", "p": "platform",
    "pct_cmd_t": "percentage_command_topic", "pct_stat_t": "percentage_state_topic",
    "pct_val_tpl": "percentage_value_template", "pl_avail": "payload_available",
    "pl_cls": "payload_close", "pl_lock": "payload_lock", "pl_not_avail": "payload_not_available",
    "pl_off": "payload_off", "pl_on": "payload_on", "pl_open": "payload_open", "pl_prs": "payload_press",
    "pl_stop": "payload_stop", "pl_unlk": "payload_unlock", "pos_t": "position_topic",
    "pos_tpl": "position_template", "ret": "retain", "sch": "schema", "set_pos_t": "set_position_topic",
    "stat_cla": "state_class", "stat_clsd": "state_closed", "stat_locked": "state_locked",
    "stat_off": "state_off", "stat_on": "state_on", "stat_open": "state_open", "stat_t": "state_topic",
    "stat_tpl": "state_template", "stat_unlocked": "state_unlocked", "stat_val_tpl": "state_value_template",
    "sup_clrm": "supported_color_modes", "t": "topic", "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
}
_DEVICE_ABBREVIATIONS = {
    "cns": "connections", "ids": "identifiers", "mf": "manufacturer", "mdl": "model", "mdl_id": "model_id",
    "hw": "hw_version", "sw": "sw_version", "sa": "suggested_area", "sn": "serial_number",
}

_SENSOR_CLASSES = {
    "temperature": "temperature", "humidity": "humidity", "pressure": "pressure",
    "atmospheric_pressure": "pressure", "illuminance": "illuminance", "carbon_dioxide": "co2",
    "pm25": "pm25", "power": "power", "energy": "energy", "voltage": "voltage", "battery": "battery",
}
_BINARY_CLASSES = {
    "motion": "motion", "occupancy": "occupancy", "presence": "occupancy", "door": "door",
    "garage_door": "door", "window": "window", "opening": "contact", "moisture": "moisture", "smoke": "smoke",
}
_Z2M_IEEE = re.compile(r"^zigbee2mqtt_(0x[0-9a-fA-F]{16})$")
_COLOR_MODES = frozenset({"hs", "xy", "rgb", "rgbw", "rgbww"})


class DiscoveryError(ValueError):
    """A discovery payload this hub cannot adopt; the message says why."""


@dataclass(slots=True)
class StateSource:
    """One topic an entity reads: ``field`` says what the value means."""

    topic: str
    field: str  # state | brightness | color_temp | position | percentage | json_light | federated
    template: Template | None = None


@dataclass(slots=True)
class ImportSpec:
    """An adoptable entity announced on the broker."""

    discovery_topic: str
    component: str
    unique_id: str
    name: str
    capabilities: tuple[str, ...]
    device_name: str
    device_identifiers: list[tuple[str, str]]
    device_connections: list[tuple[str, str]]
    manufacturer: str | None = None
    model: str | None = None
    sw_version: str | None = None
    suggested_area: str | None = None
    entity_category: str | None = None
    object_id: str | None = None  # the publisher's suggestion for our entity id
    sources: list[StateSource] = field(default_factory=list)
    availability: list[tuple[str, Template | None, str, str]] = field(default_factory=list)
    availability_mode: str = "latest"
    options: dict[str, Any] = field(default_factory=dict)
    # Set for entities another qilu hub exports: its id and the native entity description.
    peer_hub: str | None = None
    peer: dict[str, Any] | None = None


def _expand(data: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, Any]:
    return {table.get(key, key): value for key, value in data.items()}


def expand_abbreviations(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Long key names everywhere, and ``~`` replaced in every ``*_topic``."""
    data = _expand(payload, _ABBREVIATIONS)
    if isinstance(data.get("device"), Mapping):
        data["device"] = _expand(data["device"], _DEVICE_ABBREVIATIONS)
    if isinstance(data.get("origin"), Mapping):
        data["origin"] = _expand(data["origin"], _DEVICE_ABBREVIATIONS)
    base = data.pop("~", None)
    if isinstance(data.get("availability"), list):
        data["availability"] = [_expand(item, _ABBREVIATIONS) if isinstance(item, Mapping) else item
                                for item in data["availability"]]
    if isinstance(base, str):
        def fix(value: Any) -> Any:
            if isinstance(value, str):
                if value.startswith("~"):
                    return base + value[1:]
                if value.endswith("~"):
                    return value[:-1] + base
            return value

        for key in list(data):
            if key.endswith("_topic"):
                data[key] = fix(data[key])
        availability = data.get("availability")
        for item in availability if isinstance(availability, list) else []:  # a number raised TypeError
            if isinstance(item, dict) and "topic" in item:
                item["topic"] = fix(item["topic"])
    return data


def split_discovery_topic(prefix: str, topic: str) -> tuple[str, str | None, str] | None:
    """``<prefix>/<component>/[<node_id>/]<object_id>/config`` → (component, node_id, object_id)."""
    if not topic.startswith(prefix + "/") or not topic.endswith("/config"):
        return None
    parts = topic[len(prefix) + 1 : -len("/config")].split("/")
    if len(parts) == 2:
        return parts[0], None, parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return None


def _str(value: Any, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _tpl(config: Mapping[str, Any], key: str) -> Template | None:
    value = config.get(key)
    if value is not None and not isinstance(value, str):
        raise DiscoveryError(f"{key} must be text")
    try:
        return compile_template(value)
    except TemplateError as err:
        raise DiscoveryError(f"{key}: {err}") from None


def _topic(config: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    value = config.get(key)
    if value is None:
        if required:
            raise DiscoveryError(f"{key} is required")
        return None
    if not isinstance(value, str) or not value or "+" in value or "#" in value:
        raise DiscoveryError(f"{key} must be a topic without wildcards, not {value!r}")
    return value


def _device(config: Mapping[str, Any], unique_id: str) -> tuple[str | None, list[tuple[str, str]],
                                                                  list[tuple[str, str]], Mapping[str, Any]]:
    dev = config.get("device")
    if not isinstance(dev, Mapping):
        return None, [("mqtt", unique_id)], [], {}
    ids = dev.get("identifiers")
    if isinstance(ids, str):
        ids = [ids]
    # Anything but a list (a number, a bool) is ignored: iterating it raised TypeError (fuzz).
    identifiers = [("mqtt", str(i)) for i in (ids if isinstance(ids, list) else []) if isinstance(i, str | int)]
    connections: list[tuple[str, str]] = []
    conns = dev.get("connections")
    for item in conns if isinstance(conns, list) else []:
        if isinstance(item, list | tuple) and len(item) == 2:
            connections.append((str(item[0]), str(item[1])))
    for _, ident in identifiers:
        match = _Z2M_IEEE.match(ident)
        if match:  # zigbee2mqtt names devices by IEEE address: the same radio seen elsewhere merges
            connections.append(("zigbee", match.group(1).lower()))
    if not identifiers and not connections:
        identifiers = [("mqtt", unique_id)]
    name = dev.get("name")
    return (str(name) if name else None), identifiers, connections, dev


def _availability(config: Mapping[str, Any]) -> list[tuple[str, Template | None, str, str]]:
    out = []
    pl_on = _str(config.get("payload_available"), "online")
    pl_off = _str(config.get("payload_not_available"), "offline")
    if isinstance(config.get("availability_topic"), str):
        out.append((config["availability_topic"], _tpl(config, "availability_template"), pl_on, pl_off))
    items = config.get("availability")
    for item in items if isinstance(items, list) else []:  # a number here raised TypeError (fuzz)
        if isinstance(item, Mapping) and isinstance(item.get("topic"), str):
            out.append((item["topic"], _tpl(item, "value_template"),
                        _str(item.get("payload_available"), pl_on), _str(item.get("payload_not_available"), pl_off)))
    return out


def parse_discovery(prefix: str, topic: str, payload: Mapping[str, Any]) -> ImportSpec:
    """One entity from one discovery message; raises DiscoveryError with the reason when not adoptable."""
    where = split_discovery_topic(prefix, topic)
    if where is None:
        raise DiscoveryError("not a discovery topic")
    component = where[0]
    config = expand_abbreviations(payload)
    unique_id = str(config.get("unique_id") or topic)
    peer = config.get("qilu") if isinstance(config.get("qilu"), Mapping) else None
    dev_name, identifiers, connections, dev = _device(config, unique_id)
    raw_name = config.get("name", MISSING)
    device_class = config.get("device_class")
    if raw_name is None or (raw_name is MISSING and device_class is None):
        name = dev_name or where[2]  # name: null means "the device's main feature"
    elif raw_name is MISSING:
        name = str(device_class).replace("_", " ").capitalize()
    else:
        name = str(raw_name)
    spec = ImportSpec(
        discovery_topic=topic, component=component, unique_id=unique_id, name=name, capabilities=(),
        device_name=dev_name or name, device_identifiers=identifiers, device_connections=connections,
        manufacturer=dev.get("manufacturer"), model=dev.get("model_id") or dev.get("model"),
        sw_version=dev.get("sw_version"), suggested_area=dev.get("suggested_area"),
        entity_category=config.get("entity_category") if config.get("entity_category") in ("config", "diagnostic")
        else None,
        availability=_availability(config),
        availability_mode=str(config.get("availability_mode", "latest")),
    )
    suggested = config.get("default_entity_id") or config.get("object_id")
    if isinstance(suggested, str) and suggested:
        spec.object_id = suggested.split(".", 1)[-1]
    if peer is not None:
        return _federated(spec, config, peer)
    if config.get("command_template") not in (None, "{{ value }}"):
        raise DiscoveryError("command_template is not supported")
    opts = spec.options
    state_topic = _topic(config, "state_topic")
    if component == "sensor":
        cap = _SENSOR_CLASSES.get(str(device_class))
        if cap is None:
            raise DiscoveryError(f"sensor device_class {device_class!r} has no matching capability")
        spec.capabilities = (cap,)
        spec.sources.append(StateSource(_topic(config, "state_topic", True) or "", "state",
                                        _tpl(config, "value_template")))
        opts["numeric"] = True
    elif component == "binary_sensor":
        cap = _BINARY_CLASSES.get(str(device_class))
        if cap is None:
            raise DiscoveryError(f"binary_sensor device_class {device_class!r} has no matching capability")
        spec.capabilities = (cap,)
        spec.sources.append(StateSource(_topic(config, "state_topic", True) or "", "state",
                                        _tpl(config, "value_template")))
        opts["on"] = config.get("payload_on", "ON")
        opts["off"] = config.get("payload_off", "OFF")
    elif component in ("switch", "fan"):
        spec.capabilities = ("on_off",) if component == "switch" else ("fan",)
        opts["command_topic"] = _topic(config, "command_topic", True)
        opts["payload_on"] = _str(config.get("payload_on"), "ON")
        opts["payload_off"] = _str(config.get("payload_off"), "OFF")
        opts["on"] = config.get("state_on", config.get("payload_on", "ON"))
        opts["off"] = config.get("state_off", config.get("payload_off", "OFF"))
        if state_topic:
            key = "value_template" if component == "switch" else "state_value_template"
            spec.sources.append(StateSource(state_topic, "state", _tpl(config, key)))
        if component == "fan":
            opts["percentage_topic"] = _topic(config, "percentage_command_topic")
            pct_state = _topic(config, "percentage_state_topic")
            if pct_state:
                spec.sources.append(StateSource(pct_state, "percentage", _tpl(config, "percentage_value_template")))
    elif component == "light":
        _light(spec, config, state_topic)
    elif component == "lock":
        spec.capabilities = ("lock",)
        opts["command_topic"] = _topic(config, "command_topic", True)
        opts["payload_lock"] = _str(config.get("payload_lock"), "LOCK")
        opts["payload_unlock"] = _str(config.get("payload_unlock"), "UNLOCK")
        opts["states"] = {
            _str(config.get("state_locked"), "LOCKED"): "locked",
            _str(config.get("state_unlocked"), "UNLOCKED"): "unlocked",
            _str(config.get("state_locking"), "LOCKING"): "locking",
            _str(config.get("state_unlocking"), "UNLOCKING"): "unlocking",
            _str(config.get("state_jammed"), "JAMMED"): "jammed",
        }
        if state_topic:
            spec.sources.append(StateSource(state_topic, "state", _tpl(config, "value_template")))
    elif component == "cover":
        spec.capabilities = ("cover_position",)
        opts["command_topic"] = _topic(config, "command_topic")
        opts["set_position_topic"] = _topic(config, "set_position_topic")
        opts["payloads"] = {"open_cover": _str(config.get("payload_open"), "OPEN"),
                            "close_cover": _str(config.get("payload_close"), "CLOSE"),
                            "stop_cover": _str(config.get("payload_stop"), "STOP")}
        opts["states"] = {_str(config.get("state_open"), "open"): "open",
                          _str(config.get("state_closed"), "closed"): "closed",
                          _str(config.get("state_opening"), "opening"): "opening",
                          _str(config.get("state_closing"), "closing"): "closing"}
        if state_topic:
            spec.sources.append(StateSource(state_topic, "state", _tpl(config, "value_template")))
        pos = _topic(config, "position_topic")
        if pos:
            spec.sources.append(StateSource(pos, "position", _tpl(config, "position_template")))
    elif component == "button":
        spec.capabilities = ("button",)
        opts["command_topic"] = _topic(config, "command_topic", True)
        opts["payload_press"] = _str(config.get("payload_press"), "PRESS")
    else:
        raise DiscoveryError(f"component {component!r} is not imported")
    return spec


def _light(spec: ImportSpec, config: Mapping[str, Any], state_topic: str | None) -> None:
    opts = spec.options
    opts["command_topic"] = _topic(config, "command_topic", True)
    scale = config.get("brightness_scale", 255)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
        raise DiscoveryError("brightness_scale must be a positive number")
    opts["brightness_scale"] = float(scale)
    opts["kelvin"] = bool(config.get("color_temp_kelvin", False))
    schema = config.get("schema", "default")
    caps = ["on_off"]
    if schema == "json":
        modes = set(config.get("supported_color_modes") or [])
        if config.get("brightness") or modes - {"onoff"}:
            caps.append("level")
        if "color_temp" in modes:
            caps.append("color_temperature")
        if modes & _COLOR_MODES:
            caps.append("color")
        opts["json"] = True
        if state_topic:
            spec.sources.append(StateSource(state_topic, "json_light"))
    elif schema == "default":
        opts["json"] = False
        opts["payload_on"] = _str(config.get("payload_on"), "ON")
        opts["payload_off"] = _str(config.get("payload_off"), "OFF")
        opts["on"], opts["off"] = opts["payload_on"], opts["payload_off"]
        opts["brightness_topic"] = _topic(config, "brightness_command_topic")
        opts["color_temp_topic"] = _topic(config, "color_temp_command_topic")
        if opts["brightness_topic"]:
            caps.append("level")
        if opts["color_temp_topic"]:
            caps.append("color_temperature")
        if state_topic:
            spec.sources.append(StateSource(state_topic, "state", _tpl(config, "state_value_template")))
        for key, fld in (("brightness_state_topic", "brightness"), ("color_temp_state_topic", "color_temp")):
            topic = _topic(config, key)
            if topic:
                tpl_key = "brightness_value_template" if fld == "brightness" else "color_temp_value_template"
                spec.sources.append(StateSource(topic, fld, _tpl(config, tpl_key)))
    else:
        raise DiscoveryError(f"light schema {schema!r} is not supported (default and json are)")
    spec.capabilities = tuple(caps)


def _federated(spec: ImportSpec, config: Mapping[str, Any], peer: Mapping[str, Any]) -> ImportSpec:
    hub = peer.get("hub")
    capabilities = peer.get("capabilities")
    call_topic = peer.get("call_topic")
    if not isinstance(hub, str) or not isinstance(call_topic, str) or not isinstance(capabilities, list):
        raise DiscoveryError("qilu federation block lacks hub, call_topic or capabilities")
    from ..capabilities import CAPABILITIES  # local: only federation needs the whole table

    unknown = [c for c in capabilities if c not in CAPABILITIES]
    if unknown or not capabilities:
        raise DiscoveryError(f"peer entity has unknown capabilities {unknown}")
    spec.peer_hub = hub
    spec.peer = dict(peer)
    spec.capabilities = tuple(capabilities)
    device: Mapping[str, Any] = peer["device"] if isinstance(peer.get("device"), Mapping) else {}
    device_id = str(peer.get("device_id") or peer.get("unique_id"))
    spec.unique_id = f"{hub}:{peer.get('unique_id')}"
    spec.device_identifiers = [("qilu", f"{hub}:{device_id}")]
    spec.device_connections = []
    spec.device_name = str(device.get("name") or spec.name)
    spec.manufacturer = device.get("manufacturer")
    spec.model = device.get("model")
    spec.suggested_area = None  # a peer's "Living Room" is another home's room
    # Climate and button configs have no state_topic; the state document lives beside the call topic.
    state_topic = call_topic.rsplit("/", 1)[0] + "/state"
    spec.sources = [StateSource(state_topic, "federated")]
    spec.options = {"call_topic": call_topic}
    return spec


def parse_device_discovery(prefix: str, topic: str,
                           payload: Mapping[str, Any]) -> list[tuple[str, ImportSpec | DiscoveryError]]:
    """A device discovery message (``<prefix>/device/<object_id>/config`` with ``cmps``), one entry per component.

    https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload: shared options (device,
    origin, state_topic, availability, ...) apply to every component unless the component overrides them.
    Each component gets a key shaped like a single-component discovery topic.
    """
    where = split_discovery_topic(prefix, topic)
    if where is None or where[0] != "device":
        raise DiscoveryError("not a device discovery topic")
    data = expand_abbreviations(payload)
    components = data.pop("components", None)
    if not isinstance(components, Mapping) or not components:
        raise DiscoveryError("device discovery needs a non-empty components (cmps) mapping")
    shared = {key: value for key, value in payload.items() if key not in ("cmps", "components")}
    out: list[tuple[str, ImportSpec | DiscoveryError]] = []
    for cmp_id, entry in components.items():
        key = f"{prefix}/device/{where[2]}/{cmp_id}"
        if not isinstance(entry, Mapping):
            out.append((key, DiscoveryError(f"component {cmp_id!r} is not an object")))
            continue
        merged = {**shared, **entry}
        platform = expand_abbreviations(merged).get("platform")
        if not isinstance(platform, str) or "/" in platform:
            out.append((key, DiscoveryError(f"component {cmp_id!r} lacks its platform (p)")))
            continue
        try:
            spec = parse_discovery(prefix, f"{prefix}/{platform}/{where[2]}/{cmp_id}/config", merged)
        except DiscoveryError as err:
            out.append((key, err))
            continue
        spec.discovery_topic = key
        out.append((key, spec))
    return out


# -- state ------------------------------------------------------------------------------


def _match(value: Any, expected: Any) -> bool:
    return value == expected or _str(value, "") == _str(expected, "")


def read_source(spec: ImportSpec, source: StateSource, payload: bytes, current: Any,
                attrs: dict[str, Any]) -> Any:
    """Apply one message; returns the new state value (MISSING: unchanged) and updates ``attrs`` in place."""
    opts = spec.options
    if source.field == "json_light":
        data = decode_json(payload)
        if not isinstance(data, Mapping):
            raise TemplateError("light state is not a JSON object")
        value = current
        if "state" in data:
            value = "on" if str(data["state"]).upper() == "ON" else "off"
        if isinstance(data.get("brightness"), int | float) and not isinstance(data.get("brightness"), bool):
            attrs["brightness"] = round(data["brightness"] * 255 / opts["brightness_scale"])
        ct = data.get("color_temp")
        if isinstance(ct, int | float) and not isinstance(ct, bool) and ct > 0:
            attrs["color_temp_kelvin"] = round(ct if opts["kelvin"] else 1_000_000 / ct)
        color = data.get("color")
        if isinstance(color, Mapping):
            if "hue" in color and "saturation" in color:
                attrs["hs_color"] = [color["hue"], color["saturation"]]
            elif "h" in color and "s" in color:
                attrs["hs_color"] = [color["h"], color["s"]]
            elif all(k in color for k in "rgb"):
                attrs["rgb_color"] = [color["r"], color["g"], color["b"]]
        return value
    raw: Any = source.template.render(payload) if source.template is not None else \
        payload.decode("utf-8", "replace").strip()
    if raw is MISSING:
        return MISSING
    if source.field == "state":
        if opts.get("numeric"):
            if raw in ("", "None", "unknown", None):
                return None
            try:
                number = float(raw)
            except (TypeError, ValueError):
                raise TemplateError(f"{spec.name}: {raw!r} is not a number") from None
            return number if math.isfinite(number) else MISSING
        if "states" in opts:
            return opts["states"].get(_str(raw, ""), MISSING)
        if "on" in opts:
            if _match(raw, opts["on"]):
                return "on"
            if _match(raw, opts["off"]):
                return "off"
            return MISSING
        return raw
    if raw in ("", "None", None):
        return MISSING
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise TemplateError(f"{spec.name}: {source.field} {raw!r} is not a number") from None
    if source.field == "brightness":
        attrs["brightness"] = round(number * 255 / opts["brightness_scale"])
    elif source.field == "color_temp" and number > 0:
        attrs["color_temp_kelvin"] = round(number if opts["kelvin"] else 1_000_000 / number)
    elif source.field == "position":
        attrs["current_position"] = round(number)
    elif source.field == "percentage":
        attrs["percentage"] = round(number)
    return MISSING


# -- commands ---------------------------------------------------------------------------


def command_messages(spec: ImportSpec, command: str, args: Mapping[str, Any],
                     current: Any) -> list[tuple[str, str]]:
    """The (topic, payload) pairs that carry a validated hub command to a foreign device."""
    opts = spec.options
    if command == "toggle":
        command = "turn_off" if current == "on" else "turn_on"
    if spec.component == "light":
        scale = opts["brightness_scale"]
        brightness = args.get("brightness")
        if "brightness_pct" in args:
            brightness = args["brightness_pct"] * 2.55
        kelvin = args.get("color_temp_kelvin")
        if opts["json"]:
            body: dict[str, Any] = {"state": "ON" if command == "turn_on" else "OFF"}
            if command == "turn_on":
                if brightness is not None:
                    body["brightness"] = round(brightness * scale / 255)
                if kelvin is not None:
                    body["color_temp"] = kelvin if opts["kelvin"] else round(1_000_000 / kelvin)
                if "hs_color" in args:
                    body["color"] = {"h": args["hs_color"][0], "s": args["hs_color"][1]}
                elif "rgb_color" in args:
                    r, g, b = args["rgb_color"]
                    body["color"] = {"r": r, "g": g, "b": b}
            if "transition" in args:
                body["transition"] = args["transition"]
            return [(opts["command_topic"], json.dumps(body, separators=(",", ":")))]
        out = [(opts["command_topic"], opts["payload_on"] if command == "turn_on" else opts["payload_off"])]
        if command == "turn_on" and brightness is not None and opts.get("brightness_topic"):
            out.append((opts["brightness_topic"], str(round(brightness * scale / 255))))
        if command == "turn_on" and kelvin is not None and opts.get("color_temp_topic"):
            out.append((opts["color_temp_topic"], str(kelvin if opts["kelvin"] else round(1_000_000 / kelvin))))
        return out
    if spec.component in ("switch", "fan"):
        if command == "set_percentage":
            if not opts.get("percentage_topic"):
                raise CommandError("not_supported", f"{spec.name} has no percentage command topic")
            return [(opts["percentage_topic"], str(args["percentage"]))]
        out = [(opts["command_topic"], opts["payload_on"] if command == "turn_on" else opts["payload_off"])]
        if command == "turn_on" and "percentage" in args and opts.get("percentage_topic"):
            out.append((opts["percentage_topic"], str(args["percentage"])))
        return out
    if spec.component == "lock":
        return [(opts["command_topic"], opts["payload_lock"] if command == "lock" else opts["payload_unlock"])]
    if spec.component == "cover":
        if command == "set_cover_position":
            if not opts.get("set_position_topic"):
                raise CommandError("not_supported", f"{spec.name} has no set_position_topic")
            return [(opts["set_position_topic"], str(args["position"]))]
        if not opts.get("command_topic"):
            raise CommandError("not_supported", f"{spec.name} has no command_topic")
        return [(opts["command_topic"], opts["payloads"][command])]
    if spec.component == "button":
        return [(opts["command_topic"], opts["payload_press"])]
    raise CommandError("not_supported", f"{spec.name} cannot be commanded")
