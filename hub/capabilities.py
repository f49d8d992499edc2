"""The capability catalogue: one description of what entities can report and be told to do.

Drivers, the API, scenes, the recognizer and the XR bridge all read this one table.
Each capability declares its state, its attributes (type, unit, range) and the
commands it accepts with argument schemas. Commands are named after Home
Assistant services and attributes after Home Assistant's state attributes, so the
Home Assistant-compatible API needs no translation; each capability also names the
Matter cluster it corresponds to, for appliance makers who think in Matter terms.

Several capabilities may contribute arguments to one command: an entity with
``on_off`` and ``level`` accepts ``turn_on`` with ``brightness``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ArgType = Literal["bool", "int", "float", "str", "enum", "rgb", "hs"]


class CommandError(Exception):
    """A command was refused before reaching a driver; ``code`` is stable for API clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ValueSpec:
    """The type and bounds of an attribute, a state or a command argument."""

    type: ArgType
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    options: tuple[str, ...] = ()
    required: bool = False
    description: str = ""

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any]
        if self.type == "bool":
            schema = {"type": "boolean"}
        elif self.type in ("int", "float"):
            schema = {"type": "integer" if self.type == "int" else "number"}
            if self.min is not None:
                schema["minimum"] = self.min
            if self.max is not None:
                schema["maximum"] = self.max
        elif self.type == "enum":
            schema = {"type": "string", "enum": list(self.options)}
        elif self.type == "rgb":
            schema = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255},
                      "minItems": 3, "maxItems": 3}
        elif self.type == "hs":
            schema = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
        else:
            schema = {"type": "string"}
        if self.unit:
            schema["unit"] = self.unit
        if self.description:
            schema["description"] = self.description
        return schema

    def check(self, name: str, value: Any) -> Any:
        """Return the value, coerced where lossless (int to float), or raise CommandError."""
        kind = self.type
        if kind == "bool":
            if not isinstance(value, bool):
                raise CommandError("invalid_format", f"{name} must be true or false, not {value!r}")
            return value
        if kind in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CommandError("invalid_format", f"{name} must be a number, not {value!r}")
            if kind == "int":
                if isinstance(value, float):
                    if not value.is_integer():
                        raise CommandError("invalid_format", f"{name} must be a whole number, not {value!r}")
                    value = int(value)
            elif not math.isfinite(value):
                raise CommandError("invalid_format", f"{name} must be finite")
            else:
                value = float(value)
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                raise CommandError("out_of_range", f"{name}={value!r} is outside {self.min}..{self.max}")
            return value
        if kind == "enum":
            if value not in self.options:
                raise CommandError("invalid_format", f"{name} must be one of {', '.join(self.options)}")
            return value
        if kind in ("rgb", "hs"):
            size = 3 if kind == "rgb" else 2
            if not isinstance(value, list | tuple) or len(value) != size:
                raise CommandError("invalid_format", f"{name} must be a list of {size} numbers")
            limits = ((0, 255),) * 3 if kind == "rgb" else ((0, 360), (0, 100))
            out = []
            for item, (low, high) in zip(value, limits, strict=True):
                if isinstance(item, bool) or not isinstance(item, int | float) or not low <= item <= high:
                    raise CommandError("out_of_range", f"{name} has {item!r}, outside {low}..{high}")
                out.append(item)
            return out
        if not isinstance(value, str):
            raise CommandError("invalid_format", f"{name} must be a string")
        if len(value) > 256:
            raise CommandError("invalid_format", f"{name} is longer than 256 characters")
        return value


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    args: Mapping[str, ValueSpec] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True, slots=True)
class Capability:
    """One capability: its Home Assistant domain and device class, Matter cluster, state, attributes, commands."""

    name: str
    domain: str
    state: ValueSpec
    attributes: Mapping[str, ValueSpec] = field(default_factory=dict)
    commands: Mapping[str, CommandSpec] = field(default_factory=dict)
    device_class: str | None = None
    matter_cluster: int | None = None
    # True when the capability only adds to another's commands/attributes (level adds to on_off).
    modifier: bool = False
    description: str = ""
    # Home Assistant's state class for numeric sensors: "measurement" (a reading now), "total_increasing" (a meter
    # that only grows, as HA's Energy dashboard needs), "total"; None for non-numeric states.
    state_class: str | None = None
    # A Material Design icon where Home Assistant's frontend has none from the domain or device class.
    icon: str | None = None


def _v(type_: ArgType, unit: str | None = None, lo: float | None = None, hi: float | None = None,
       options: Iterable[str] = (), required: bool = False, description: str = "") -> ValueSpec:
    return ValueSpec(type_, unit, lo, hi, tuple(options), required, description)


def _cmd(name: str, description: str = "", **args: ValueSpec) -> CommandSpec:
    return CommandSpec(name, args, description)


ON_OFF = _v("enum", options=("on", "off"))
_TOGGLES = {
    "turn_on": _cmd("turn_on", "Switch on"),
    "turn_off": _cmd("turn_off", "Switch off"),
    "toggle": _cmd("toggle", "Switch to the opposite state"),
}


def _sensor(name: str, unit: str | None, lo: float, hi: float, device_class: str, cluster: int | None,
            description: str, state_class: str = "measurement") -> Capability:
    return Capability(name, "sensor", _v("float", unit, lo, hi), device_class=device_class,
                      matter_cluster=cluster, description=description, state_class=state_class)


def _binary(name: str, device_class: str, cluster: int | None, description: str) -> Capability:
    return Capability(name, "binary_sensor", ON_OFF, device_class=device_class, matter_cluster=cluster,
                      description=description)


HVAC_MODES = ("off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only")
OPERATIONAL_STATES = ("stopped", "running", "paused", "error", "finished")

_CATALOGUE: tuple[Capability, ...] = (
    Capability("on_off", "switch", ON_OFF, commands=_TOGGLES, matter_cluster=0x0006,
               description="Something that can be switched on and off"),
    Capability(
        "level", "light", ON_OFF, modifier=True, matter_cluster=0x0008,
        attributes={"brightness": _v("int", None, 0, 255)},
        commands={"turn_on": _cmd("turn_on", brightness=_v("int", None, 0, 255),
                                  brightness_pct=_v("float", "%", 0, 100),
                                  transition=_v("float", "s", 0, 300))},
        description="Dimmable output (brightness 0-255, as Home Assistant's lights)",
    ),
    Capability(
        "color_temperature", "light", ON_OFF, modifier=True, matter_cluster=0x0300,
        attributes={"color_temp_kelvin": _v("int", "K", 1000, 12000)},
        commands={"turn_on": _cmd("turn_on", color_temp_kelvin=_v("int", "K", 1000, 12000))},
        description="Tunable white",
    ),
    Capability(
        "color", "light", ON_OFF, modifier=True, matter_cluster=0x0300,
        attributes={"rgb_color": _v("rgb"), "hs_color": _v("hs")},
        commands={"turn_on": _cmd("turn_on", rgb_color=_v("rgb"), hs_color=_v("hs"))},
        description="Full colour",
    ),
    Capability(
        "cover_position", "cover", _v("enum", options=("open", "closed", "opening", "closing")),
        matter_cluster=0x0102,
        attributes={"current_position": _v("int", "%", 0, 100)},
        commands={
            "open_cover": _cmd("open_cover"),
            "close_cover": _cmd("close_cover"),
            "stop_cover": _cmd("stop_cover"),
            "set_cover_position": _cmd("set_cover_position", position=_v("int", "%", 0, 100, required=True)),
        },
        description="Blinds, shutters, curtains, garage doors",
    ),
    Capability(
        "lock", "lock", _v("enum", options=("locked", "unlocked", "locking", "unlocking", "jammed")),
        matter_cluster=0x0101,
        commands={"lock": _cmd("lock", code=_v("str")), "unlock": _cmd("unlock", code=_v("str"))},
        description="Door lock",
    ),
    Capability(
        "thermostat", "climate", _v("enum", options=HVAC_MODES), matter_cluster=0x0201,
        attributes={
            "current_temperature": _v("float", "°C", -40, 80),
            "temperature": _v("float", "°C", 5, 35),
            "hvac_modes": _v("str"),
        },
        commands={
            "set_temperature": _cmd("set_temperature", temperature=_v("float", "°C", 5, 35, required=True)),
            "set_hvac_mode": _cmd("set_hvac_mode", hvac_mode=_v("enum", options=HVAC_MODES, required=True)),
            "turn_on": _cmd("turn_on"),
            "turn_off": _cmd("turn_off"),
        },
        description="Heating, cooling and air conditioning",
    ),
    Capability(
        "fan", "fan", ON_OFF, matter_cluster=0x0202,
        attributes={"percentage": _v("int", "%", 0, 100)},
        commands={
            **_TOGGLES,
            "turn_on": _cmd("turn_on", percentage=_v("int", "%", 0, 100)),
            "set_percentage": _cmd("set_percentage", percentage=_v("int", "%", 0, 100, required=True)),
        },
        description="Fans and air purifiers",
    ),
    Capability(
        "media_playback", "media_player", _v("enum", options=("off", "idle", "playing", "paused")),
        matter_cluster=0x0506,
        attributes={"volume_level": _v("float", None, 0, 1), "media_title": _v("str")},
        commands={
            "media_play": _cmd("media_play"),
            "media_pause": _cmd("media_pause"),
            "media_stop": _cmd("media_stop"),
            "volume_set": _cmd("volume_set", volume_level=_v("float", None, 0, 1, required=True)),
            "turn_on": _cmd("turn_on"),
            "turn_off": _cmd("turn_off"),
        },
        description="TVs, speakers",
    ),
    Capability(
        "operational_state", "sensor", _v("enum", options=OPERATIONAL_STATES), device_class="enum",
        matter_cluster=0x0060,
        attributes={"program": _v("str"), "remaining_s": _v("int", "s", 0, 86400)},
        commands={
            "start": _cmd("start", program=_v("str")),
            "pause": _cmd("pause"),
            "resume": _cmd("resume"),
            "stop": _cmd("stop"),
        },
        description="Appliances that run a cycle: washing machines, dishwashers, ovens", icon="mdi:progress-clock",
    ),
    Capability("button", "button", _v("str"), commands={"press": _cmd("press")}, description="Stateless push"),
    Capability("scene", "scene", _v("str"), commands={"turn_on": _cmd("turn_on", "Activate the home scene")},
               matter_cluster=0x0062, description="A home scene; its state is the time it was last activated",
               icon="mdi:palette"),
    Capability("event", "event", _v("str"), attributes={"event_type": _v("str")}, matter_cluster=0x003B,
               description="Something that happened: a wall switch press, a doorbell"),
    _sensor("temperature", "°C", -60, 150, "temperature", 0x0402, "Temperature"),
    _sensor("humidity", "%", 0, 100, "humidity", 0x0405, "Relative humidity"),
    _sensor("illuminance", "lx", 0, 200000, "illuminance", 0x0400, "Illuminance"),
    _sensor("pressure", "hPa", 300, 1200, "pressure", 0x0403, "Air pressure"),
    _sensor("co2", "ppm", 0, 10000, "carbon_dioxide", 0x040D, "Carbon dioxide concentration"),
    _sensor("pm25", "µg/m³", 0, 1000, "pm25", 0x042A, "PM2.5 concentration"),
    _sensor("power", "W", -100000, 100000, "power", 0x0090, "Active power"),
    _sensor("energy", "kWh", 0, 1e9, "energy", 0x0091, "Energy", state_class="total_increasing"),
    _sensor("voltage", "V", 0, 1000, "voltage", 0x0090, "Voltage"),
    _sensor("battery", "%", 0, 100, "battery", 0x002F, "Battery level"),
    _binary("motion", "motion", 0x0406, "Motion"),
    _binary("occupancy", "occupancy", 0x0406, "Occupancy"),
    _binary("contact", "opening", 0x0045, "Contact (open=on)"),
    _binary("door", "door", 0x0045, "Door (open=on)"),
    _binary("window", "window", 0x0045, "Window (open=on)"),
    _binary("moisture", "moisture", 0x0045, "Water leak"),
    _binary("smoke", "smoke", 0x005C, "Smoke"),
)

CAPABILITIES: Mapping[str, Capability] = {cap.name: cap for cap in _CATALOGUE}


def get(name: str) -> Capability:
    try:
        return CAPABILITIES[name]
    except KeyError:
        raise KeyError(f"unknown capability {name!r}") from None


def domain_for(capabilities: Iterable[str]) -> str:
    """The Home Assistant domain of an entity with these capabilities (lights: on_off plus a modifier)."""
    names = list(capabilities)
    if not names:
        raise ValueError("an entity needs at least one capability")
    caps = [get(n) for n in names]
    if "on_off" in names and any(c.modifier for c in caps):
        return "light"
    primary = next((c for c in caps if not c.modifier), caps[0])
    return primary.domain


def merged_commands(capabilities: Iterable[str]) -> dict[str, CommandSpec]:
    """The commands an entity with these capabilities accepts, arguments merged per command."""
    merged: dict[str, dict[str, ValueSpec]] = {}
    descriptions: dict[str, str] = {}
    for name in capabilities:
        for command in get(name).commands.values():
            merged.setdefault(command.name, {}).update(command.args)
            descriptions.setdefault(command.name, command.description)
    return {name: CommandSpec(name, args, descriptions[name]) for name, args in merged.items()}


def merged_attributes(capabilities: Iterable[str]) -> dict[str, ValueSpec]:
    out: dict[str, ValueSpec] = {}
    for name in capabilities:
        out.update(get(name).attributes)
    return out


def validate_command(
    commands: Mapping[str, CommandSpec], command: str, args: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Check a command and its arguments against an entity's command specs; returns clean arguments."""
    spec = commands.get(command)
    if spec is None:
        known = ", ".join(sorted(commands)) or "none"
        raise CommandError("not_supported", f"command {command!r} is not supported (supported: {known})")
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise CommandError("invalid_format", "command arguments must be an object")
    unknown = [key for key in args if key not in spec.args]
    if unknown:
        raise CommandError("invalid_format", f"unknown argument(s) for {command}: {', '.join(map(str, unknown))}")
    clean: dict[str, Any] = {}
    for name, value_spec in spec.args.items():
        if name in args:
            clean[name] = value_spec.check(name, args[name])
        elif value_spec.required:
            raise CommandError("invalid_format", f"{command} needs argument {name!r}")
    return clean
