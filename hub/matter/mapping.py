"""Matter clusters → the hub's capabilities: one table of what each cluster becomes, read and commanded.

An endpoint's clusters decide its entities: one row per *primary* cluster (On/Off, Boolean State,
Thermostat, a measurement...) gives one entity, whose capabilities the row's *modifier* clusters extend
(an On/Off endpoint with Level Control and Color Control is one light with brightness and colour
temperature, as Home Assistant shows it). States and attributes are computed from the node's raw
attribute values (``"endpoint/cluster/attribute"`` paths, as matter-server reports them), so a report
updates an entity by looking up which entities read that cluster. Commands are translated here into
cluster commands or attribute writes (:class:`MatterCall`); the capability catalogue has validated the
arguments before, and this module checks what only the appliance's own attributes can say (a level
within its min/max).

Values follow the Matter specification's units: temperatures in 0.01 °C, relative humidity in 0.01 %,
illuminance as 10000·log10(lx)+1, levels 0-254, colour temperature in mireds, window covering
positions in 0.01 % *closed*, power in mW, energy in mWh, battery in half percent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Cluster ids (Matter Application Cluster Specification)
ON_OFF, LEVEL, COLOR = 0x0006, 0x0008, 0x0300
BOOLEAN_STATE, OCCUPANCY = 0x0045, 0x0406
TEMPERATURE, HUMIDITY, ILLUMINANCE, PRESSURE = 0x0402, 0x0405, 0x0400, 0x0403
THERMOSTAT, FAN, WINDOW_COVERING, DOOR_LOCK = 0x0201, 0x0202, 0x0102, 0x0101
POWER, ENERGY, POWER_SOURCE = 0x0090, 0x0091, 0x002F
BASIC_INFORMATION, BRIDGED_BASIC_INFORMATION, DESCRIPTOR = 0x0028, 0x0039, 0x001D

Attributes = Mapping[str, Any]  # "ep/cluster/attr" -> raw value, one node's

# Thermostat SystemMode values and the Home Assistant HVAC modes they are
SYSTEM_MODES = {0: "off", 1: "auto", 3: "cool", 4: "heat", 7: "fan_only", 8: "dry"}
HVAC_TO_SYSTEM_MODE = {mode: value for value, mode in SYSTEM_MODES.items()}
LOCK_STATES = {0: "unlocked", 1: "locked", 2: "unlocked", 3: "unlocked"}


class EndpointView:
    """One endpoint's attribute values, read by path."""

    __slots__ = ("attributes", "endpoint")

    def __init__(self, attributes: Attributes, endpoint: int) -> None:
        self.attributes = attributes
        self.endpoint = endpoint

    def get(self, cluster: int, attribute: int, default: Any = None) -> Any:
        value = self.attributes.get(f"{self.endpoint}/{cluster}/{attribute}", default)
        return default if value is None else value


# A state function returns None when the appliance has not given the value, or gave it in a type the cluster
# does not have (a refused report): the entity then keeps what it showed, or stays unknown, instead of showing a
# guess such as "off".
def _two_state(cluster: int, attribute: int, when_true: str, when_false: str) -> Callable[[EndpointView], str | None]:
    def state(v: EndpointView) -> str | None:
        raw = v.get(cluster, attribute)
        return None if not isinstance(raw, bool) else when_true if raw else when_false

    return state


_onoff = _two_state(ON_OFF, 0, "on", "off")


def _occupancy(v: EndpointView) -> str | None:
    raw = v.get(OCCUPANCY, 0)  # a bitmap: bit 0 is "occupied"
    return None if not isinstance(raw, int) or isinstance(raw, bool) else "on" if raw & 1 else "off"


def _scaled(cluster: int, attribute: int, divisor: float, digits: int = 2) -> Callable[[EndpointView], Any]:
    def value(v: EndpointView) -> Any:
        raw = v.get(cluster, attribute)
        return None if not isinstance(raw, (int, float)) else round(raw / divisor, digits)

    return value


def _illuminance(v: EndpointView) -> float | None:
    raw = v.get(ILLUMINANCE, 0)
    if not isinstance(raw, int) or raw <= 0:
        return 0.0 if raw == 0 else None
    return round(10 ** ((raw - 1) / 10000), 1)


def _light_attributes(v: EndpointView) -> dict[str, Any]:
    out: dict[str, Any] = {}
    level = v.get(LEVEL, 0)
    if isinstance(level, int):
        out["brightness"] = round(level * 255 / 254)
    mireds = v.get(COLOR, 7)
    if isinstance(mireds, int) and mireds > 0:
        out["color_temp_kelvin"] = round(1_000_000 / mireds)
    return out


def _thermostat_mode(v: EndpointView) -> str | None:
    return SYSTEM_MODES.get(v.get(THERMOSTAT, 28))


def _thermostat_attributes(v: EndpointView) -> dict[str, Any]:
    mode = _thermostat_mode(v) or "heat"
    setpoint = v.get(THERMOSTAT, 17 if mode == "cool" else 18)
    local = v.get(THERMOSTAT, 0)
    return {
        "current_temperature": None if local is None else local / 100,
        "temperature": None if setpoint is None else setpoint / 100,
        "hvac_modes": ",".join(sorted({"off", mode})),
    }


def _cover_state(v: EndpointView) -> str | None:
    closed = v.get(WINDOW_COVERING, 14)  # CurrentPositionLiftPercent100ths
    return None if not isinstance(closed, int) else "closed" if closed == 10000 else "open"


def _cover_attributes(v: EndpointView) -> dict[str, Any]:
    closed = v.get(WINDOW_COVERING, 14)
    return {} if closed is None else {"current_position": 100 - round(closed / 100)}


def _fan_percent(v: EndpointView) -> Any:
    return v.get(FAN, 3, v.get(FAN, 2))  # PercentCurrent, else PercentSetting


def _fan_state(v: EndpointView) -> str | None:
    percent = _fan_percent(v)
    return None if not isinstance(percent, int) else "on" if percent > 0 else "off"


def _energy(v: EndpointView) -> float | None:
    imported = v.get(ENERGY, 1)
    if isinstance(imported, Mapping):
        raw = imported.get("energy", imported.get("0"))
        return None if raw is None else round(raw / 1_000_000, 4)
    return None


@dataclass(frozen=True, slots=True)
class Row:
    """What one primary cluster becomes: an entity with these capabilities, its state and attributes."""

    cluster: int
    key: str  # entity key within the endpoint
    capabilities: tuple[str, ...]
    state: Callable[[EndpointView], Any]
    attributes: Callable[[EndpointView], dict[str, Any]] = lambda v: {}
    modifiers: Mapping[int, str] = field(default_factory=dict)  # cluster -> extra capability when present
    reads: tuple[int, ...] = ()  # further clusters whose reports change this entity
    device_class: str | None = None
    unit: str | None = None


ROWS: tuple[Row, ...] = (
    Row(ON_OFF, "onoff", ("on_off",), _onoff, _light_attributes,
        modifiers={LEVEL: "level", COLOR: "color_temperature"}),
    Row(BOOLEAN_STATE, "contact", ("contact",), _two_state(BOOLEAN_STATE, 0, "off", "on"),
        device_class="opening"),  # StateValue true: the contact is closed
    Row(OCCUPANCY, "occupancy", ("occupancy",), _occupancy, device_class="occupancy"),
    Row(TEMPERATURE, "temperature", ("temperature",), _scaled(TEMPERATURE, 0, 100), device_class="temperature",
        unit="°C"),
    Row(HUMIDITY, "humidity", ("humidity",), _scaled(HUMIDITY, 0, 100), device_class="humidity", unit="%"),
    Row(ILLUMINANCE, "illuminance", ("illuminance",), _illuminance, device_class="illuminance", unit="lx"),
    Row(PRESSURE, "pressure", ("pressure",), _scaled(PRESSURE, 0, 1, 1), device_class="pressure", unit="hPa"),
    Row(THERMOSTAT, "thermostat", ("thermostat",), _thermostat_mode, _thermostat_attributes),
    Row(WINDOW_COVERING, "cover", ("cover_position",), _cover_state, _cover_attributes),
    Row(DOOR_LOCK, "lock", ("lock",), lambda v: LOCK_STATES.get(v.get(DOOR_LOCK, 0))),
    Row(FAN, "fan", ("fan",), _fan_state, lambda v: {"percentage": _fan_percent(v)}),
    Row(POWER, "power", ("power",), _scaled(POWER, 8, 1000), device_class="power", unit="W"),
    Row(ENERGY, "energy", ("energy",), _energy, device_class="energy", unit="kWh"),
    Row(POWER_SOURCE, "battery", ("battery",), _scaled(POWER_SOURCE, 12, 2, 0), device_class="battery", unit="%"),
)
ROWS_BY_CLUSTER = {row.cluster: row for row in ROWS}


def entity_rows(clusters: set[int]) -> list[tuple[Row, tuple[str, ...]]]:
    """The entities of an endpoint with these server clusters: each row and its capabilities."""
    out = []
    for row in ROWS:
        if row.cluster in clusters:
            caps = row.capabilities + tuple(cap for cl, cap in row.modifiers.items() if cl in clusters)
            out.append((row, caps))
    return out


def clusters_read(row: Row) -> set[int]:
    return {row.cluster, *row.modifiers, *row.reads}


def read(row: Row, attributes: Attributes, endpoint: int) -> tuple[Any, dict[str, Any]]:
    """The entity's state value and attributes from the node's raw attributes."""
    view = EndpointView(attributes, endpoint)
    attrs = {k: val for k, val in row.attributes(view).items() if val is not None}
    return row.state(view), attrs


# -- commands ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MatterCall:
    """One request to the node: a cluster command (``cluster``, ``command``, ``fields``) or an attribute write
    (``write``: attribute id, ``value``)."""

    endpoint: int
    cluster: int
    command: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)
    write: int | None = None
    value: Any = None


class UnsupportedCommand(ValueError):
    pass


def _level_of(args: Mapping[str, Any], view: EndpointView) -> int | None:
    if "brightness" in args:
        level = round(int(args["brightness"]) * 254 / 255)
    elif "brightness_pct" in args:
        level = round(float(args["brightness_pct"]) * 254 / 100)
    else:
        return None
    low, high = view.get(LEVEL, 2, 1), view.get(LEVEL, 3, 254)
    return max(int(low), min(int(high), level))  # within what the appliance says it can do


def commands_for(row: Row, endpoint: int, command: str, args: Mapping[str, Any],
                 attributes: Attributes) -> list[MatterCall]:
    """What to send for a validated hub command; :class:`UnsupportedCommand` when this entity cannot do it."""
    view = EndpointView(attributes, endpoint)
    calls: list[MatterCall] = []
    if row.cluster == ON_OFF:
        if command == "toggle":
            return [MatterCall(endpoint, ON_OFF, "Toggle")]
        if command == "turn_off":
            return [MatterCall(endpoint, ON_OFF, "Off")]
        if command != "turn_on":
            raise UnsupportedCommand(command)
        transition = round(float(args.get("transition", 0)) * 10)  # tenths of a second
        level = _level_of(args, view)
        if "color_temp_kelvin" in args:
            mireds = round(1_000_000 / int(args["color_temp_kelvin"]))
            low, high = view.get(COLOR, 0x400B, 1), view.get(COLOR, 0x400C, 65279)
            calls.append(MatterCall(endpoint, COLOR, "MoveToColorTemperature", {
                "colorTemperatureMireds": max(int(low), min(int(high), mireds)), "transitionTime": transition,
                "optionsMask": 0, "optionsOverride": 0}))
        if level is not None:
            calls.append(MatterCall(endpoint, LEVEL, "MoveToLevelWithOnOff", {
                "level": level, "transitionTime": transition, "optionsMask": 0, "optionsOverride": 0}))
        else:
            calls.append(MatterCall(endpoint, ON_OFF, "On"))
        return calls
    if row.cluster == THERMOSTAT:
        if command == "set_temperature":
            cooling = _thermostat_mode(view) == "cool"
            return [MatterCall(endpoint, THERMOSTAT, write=17 if cooling else 18,
                               value=round(float(args["temperature"]) * 100))]
        if command in ("set_hvac_mode", "turn_on", "turn_off"):
            mode = args.get("hvac_mode") or ("off" if command == "turn_off" else "heat")
            if mode not in HVAC_TO_SYSTEM_MODE:
                raise UnsupportedCommand(f"hvac_mode {mode}")
            return [MatterCall(endpoint, THERMOSTAT, write=28, value=HVAC_TO_SYSTEM_MODE[mode])]
    if row.cluster == WINDOW_COVERING:
        simple = {"open_cover": "UpOrOpen", "close_cover": "DownOrClose", "stop_cover": "StopMotion"}
        if command in simple:
            return [MatterCall(endpoint, WINDOW_COVERING, simple[command])]
        if command == "set_cover_position":
            closed = (100 - int(args["position"])) * 100
            return [MatterCall(endpoint, WINDOW_COVERING, "GoToLiftPercentage", {"liftPercent100thsValue": closed})]
    if row.cluster == DOOR_LOCK and command in ("lock", "unlock"):
        pin = args.get("code")
        fields = {"PINCode": pin.encode()} if isinstance(pin, str) and pin else {}
        return [MatterCall(endpoint, DOOR_LOCK, "LockDoor" if command == "lock" else "UnlockDoor", fields)]
    if row.cluster == FAN:
        if command in ("set_percentage", "turn_on") and "percentage" in args:
            return [MatterCall(endpoint, FAN, write=2, value=int(args["percentage"]))]  # PercentSetting
        if command in ("turn_on", "turn_off", "toggle"):
            on = command == "turn_on" or (command == "toggle" and _fan_state(view) == "off")
            return [MatterCall(endpoint, FAN, write=0, value=3 if on else 0)]  # FanMode High / Off
    raise UnsupportedCommand(command)

