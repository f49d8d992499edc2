"""The units the Matter specification fixes for measured values, and the maker's references to judge a reading by.

A measurement cluster carries no unit of its own: the specification fixes it (Temperature Measurement's
MeasuredValue is 100 × °C, Relative Humidity's 100 × %, ...). A firmware that forgets the scaling (sends 21 for
21 °C) still passes a range check, and only a known condition tells 0.21 °C from 21 °C. So this module holds

* :data:`UNITS`: per measured quantity its cluster and attribute, the specification's unit and section, how a
  raw value decodes to a plain unit (°C, %, lx, kPa, m³/h, W, kWh), the raw values the unit can mean at all,
  and the other scalings a firmware is likely to have used instead;
* :func:`parse_reference`: the command line's ``--reference QUANTITY[@ENDPOINT]=VALUE[±TOLERANCE]`` (what the
  room, the bench or a calibrated meter says while the kit runs);
* :func:`judge`: one reading against the unit's limits and a reference, with the scaling that would have matched.

Section numbers are those of the Matter 1.6 specifications (as matter.js 0.17.9's generated model cites them);
docs/matter.md says where earlier versions (1.4, which the test bed's CHIP SDK implements) number them alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Decode = Callable[[float], float]


def _linear(scale: float) -> Decode:
    return lambda raw: raw * scale


def _log_lux(raw: float) -> float:
    """Illuminance: MeasuredValue = 10000 × log10(lx) + 1; 0 means too low to be measured."""
    return 0.0 if raw == 0 else 10 ** ((raw - 1) / 10000)


@dataclass(frozen=True, slots=True)
class Unit:
    """One measured quantity as the specification encodes it."""

    quantity: str  # the name a --reference uses
    cluster: int
    cluster_name: str
    attribute: int  # the measured attribute
    attribute_name: str
    plain: str  # the unit a reading is decoded to and a reference is given in
    spec_unit: str  # the raw value's unit as the specification words it
    decode: Decode  # raw value -> plain unit
    limits: tuple[int, int]  # raw values the unit can mean (the type's range narrowed by the specification)
    section: str
    default_tolerance: Callable[[float], float]  # for a reference given without one
    # other scalings a firmware may have used: (what it would be in, raw -> plain unit)
    alternatives: tuple[tuple[str, Decode], ...] = ()
    struct_field: str | None = None  # the attribute is a struct: the field that holds the value
    range_attributes: tuple[int, int] | None = (1, 2)  # MinMeasuredValue, MaxMeasuredValue
    accepted_units: frozenset[str] = field(default_factory=frozenset)  # spellings of ``plain`` on the command line

    def raw_value(self, attributes: Mapping[str, Any], endpoint: int) -> Any:
        value = attributes.get(f"{endpoint}/{self.cluster}/{self.attribute}")
        if self.struct_field is not None:
            return value.get(self.struct_field) if isinstance(value, dict) else None
        return value


def _powers(plain: str, spec_scale: float, exponents: range, names: Mapping[int, str] | None = None
            ) -> tuple[tuple[str, Decode], ...]:
    """The decimal scalings other than the specification's: 10^e of the plain unit, named."""
    found = []
    for exponent in exponents:
        scale = 10.0 ** exponent
        if math.isclose(scale, spec_scale):
            continue
        name = (names or {}).get(exponent) or (plain if exponent == 0 else f"{scale:g} {plain}")
        found.append((name, _linear(scale)))
    return tuple(found)


def _fahrenheit(scale: float) -> Decode:
    return lambda raw: (raw * scale - 32) * 5 / 9


def _kelvin(scale: float) -> Decode:
    return lambda raw: raw * scale - 273.15


# power in W and energy in kWh: a firmware off by powers of ten is in one of these
_SI_NAMES = {
    "W": {-6: "µW", -5: "10 µW", -4: "100 µW", -3: "mW", -2: "10 mW", -1: "100 mW", 1: "10 W", 2: "100 W", 3: "kW"},
    "kWh": {-9: "µWh", -8: "10 µWh", -7: "100 µWh", -6: "mWh", -5: "10 mWh", -4: "100 mWh", -3: "Wh", -2: "10 Wh",
            -1: "100 Wh"},
}
_INT64 = 2 ** 62  # power-mW and energy-mWh: int64, constrained to ±2^62 by the specification

UNITS: dict[str, Unit] = {unit.quantity: unit for unit in (
    Unit("temperature", 0x0402, "Temperature Measurement", 0, "MeasuredValue", "°C", "0.01 °C", _linear(0.01),
         (-27315, 32767), "Application Cluster Specification § 2.3.4 (MeasuredValue = 100 × °C; "
         "MinMeasuredValue at least -27315, absolute zero)", lambda _v: 2.0,
         (*_powers("°C", 0.01, range(-3, 1)), ("°F", _fahrenheit(1)), ("0.1 °F", _fahrenheit(0.1)),
          ("0.01 °F", _fahrenheit(0.01)), ("0.01 K", _kelvin(0.01)), ("0.1 K", _kelvin(0.1))),
         accepted_units=frozenset({"°C", "C", "degC", "℃"})),
    Unit("humidity", 0x0405, "Relative Humidity Measurement", 0, "MeasuredValue", "%", "0.01 %", _linear(0.01),
         (0, 10000), "Application Cluster Specification § 2.6.4 (MeasuredValue = 100 × relative humidity in %, "
         "0 to 10000)", lambda _v: 10.0, _powers("%", 0.01, range(-3, 1)),
         accepted_units=frozenset({"%", "%RH", "RH"})),
    Unit("illuminance", 0x0400, "Illuminance Measurement", 0, "MeasuredValue", "lx", "10000 × log10(lx) + 1",
         _log_lux, (0, 65534), "Application Cluster Specification § 2.2.5 (MeasuredValue = 10000 × log10(lx) + 1, "
         "1 to 0xFFFE for 1 lx to 3.576 Mlx; 0: too low to measure)", lambda v: max(1.0, abs(v) * 0.5),
         (("lx (not logarithmic)", _linear(1)), ("0.1 lx (not logarithmic)", _linear(0.1)),
          ("10 lx (not logarithmic)", _linear(10))),
         accepted_units=frozenset({"lx", "lux"})),
    Unit("pressure", 0x0403, "Pressure Measurement", 0, "MeasuredValue", "kPa", "0.1 kPa", _linear(0.1),
         (-32767, 32767), "Application Cluster Specification § 2.4.5 (MeasuredValue = 10 × kPa)", lambda _v: 2.0,
         _powers("kPa", 0.1, range(-3, 2), {-3: "Pa", -2: "0.01 kPa"}),
         accepted_units=frozenset({"kPa"})),
    Unit("flow", 0x0404, "Flow Measurement", 0, "MeasuredValue", "m³/h", "0.1 m³/h", _linear(0.1), (0, 65534),
         "Application Cluster Specification § 2.5.4 (MeasuredValue = 10 × m³/h)",
         lambda v: max(0.1, abs(v) * 0.2), _powers("m³/h", 0.1, range(-3, 2), {-3: "l/h"}),
         accepted_units=frozenset({"m³/h", "m3/h"})),
    Unit("power", 0x0090, "Electrical Power Measurement", 8, "ActivePower", "W", "mW", _linear(0.001),
         (-_INT64, _INT64), "Application Cluster Specification § 2.13.6.9 (ActivePower in mW)",
         lambda v: max(1.0, abs(v) * 0.1), _powers("W", 0.001, range(-6, 4), _SI_NAMES["W"]),
         range_attributes=None, accepted_units=frozenset({"W"})),
    Unit("energy", 0x0091, "Electrical Energy Measurement", 1, "CumulativeEnergyImported", "kWh", "mWh",
         _linear(1e-6), (0, _INT64), "Application Cluster Specification § 2.12.5.2.1 and § 2.12.6.2 (energy in mWh)",
         lambda v: max(0.01, abs(v) * 0.05), _powers("kWh", 1e-6, range(-9, 1), _SI_NAMES["kWh"]),
         struct_field="0", range_attributes=None, accepted_units=frozenset({"kWh"})),
    Unit("battery", 0x002F, "Power Source", 12, "BatPercentRemaining", "%", "half percent", _linear(0.5),
         (0, 200), "Core Specification § 11.7.7.13 (BatPercentRemaining in half percent, 0 to 200)",
         lambda _v: 10.0, (("%", _linear(1)), ("0.1 %", _linear(0.1)), ("0.01 %", _linear(0.01))),
         range_attributes=None, accepted_units=frozenset({"%"})),
)}
BY_CLUSTER = {unit.cluster: unit for unit in UNITS.values()}
# A reference outside these (in the plain unit) cannot be a reading of the quantity
PLAIN_LIMITS = {"temperature": (-273.15, 327.67), "humidity": (0.0, 100.0), "illuminance": (0.0, 3.576e6),
                "battery": (0.0, 100.0), "flow": (0.0, 6553.4), "energy": (0.0, _INT64 * 1e-6)}


class BadReference(ValueError):
    """A --reference the kit cannot use; the message says why and how one is written."""


@dataclass(frozen=True, slots=True)
class Reference:
    """What the maker knows a quantity to be while the kit runs, in its plain unit."""

    quantity: str
    value: float
    tolerance: float
    endpoint: int | None = None  # None: every endpoint that measures the quantity

    def text(self) -> str:
        unit = UNITS[self.quantity].plain
        where = "" if self.endpoint is None else f" (endpoint {self.endpoint})"
        return f"{_number(self.value)} ± {_number(self.tolerance)} {unit}{where}"


_FORM = "QUANTITY[@ENDPOINT]=VALUE[±TOLERANCE], e.g. temperature=21.5±1.5 or humidity@2=45±10"
_NUMBER = re.compile(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*)$")
_TOLERANCE_MARKS = ("±", "+/-", "+-")


def _number(value: float) -> str:
    return f"{value:.6g}"


def _amount(text: str, what: str, unit: Unit, argument: str) -> float:
    match = _NUMBER.match(text.strip())
    if match is None:
        raise BadReference(f"--reference {argument!r}: the {what} {text.strip()!r} is not a number ({_FORM})")
    written = match.group(2).strip()
    if written and written not in unit.accepted_units:
        raise BadReference(f"--reference {argument!r}: {unit.quantity} is given in {unit.plain} (what the kit decodes "
                           f"{unit.cluster_name} to), not {written!r}")
    value = float(match.group(1))
    if not math.isfinite(value):
        raise BadReference(f"--reference {argument!r}: the {what} is not a finite number")
    return value


def parse_reference(argument: str) -> Reference:
    """``QUANTITY[@ENDPOINT]=VALUE[±TOLERANCE]``, VALUE and TOLERANCE in the quantity's plain unit (which may be
    written after them: ``21.5±1.5°C``); ``+/-`` or ``+-`` for ``±``. Without a tolerance the quantity's default."""
    name, equals, rest = argument.partition("=")
    if not equals or not rest.strip():
        raise BadReference(f"--reference {argument!r}: give {_FORM}")
    quantity, at, endpoint_text = name.strip().partition("@")
    unit = UNITS.get(quantity.lower())
    if unit is None:
        raise BadReference(f"--reference {argument!r}: no quantity {quantity!r} (one of {', '.join(UNITS)})")
    endpoint = None
    if at:
        if not endpoint_text.isdigit() or int(endpoint_text) > 0xFFFE:
            raise BadReference(f"--reference {argument!r}: the endpoint {endpoint_text!r} is not an endpoint number")
        endpoint = int(endpoint_text)
    mark = next((m for m in _TOLERANCE_MARKS if m in rest), None)
    value_text, _, tolerance_text = rest.partition(mark) if mark else (rest, "", "")
    value = _amount(value_text, "value", unit, argument)
    low, high = PLAIN_LIMITS.get(unit.quantity, (-math.inf, math.inf))
    if not low <= value <= high:
        raise BadReference(f"--reference {argument!r}: {unit.quantity} {_number(value)} {unit.plain} is outside what "
                           f"the quantity can be ({_number(low)} to {_number(high)} {unit.plain})")
    if mark:
        tolerance = _amount(tolerance_text, "tolerance", unit, argument)
        if tolerance < 0:
            raise BadReference(f"--reference {argument!r}: the tolerance must not be negative")
    else:
        tolerance = unit.default_tolerance(value)
    return Reference(unit.quantity, value, tolerance, endpoint)


def parse_references(arguments: list[str] | None) -> list[Reference]:
    """Every ``--reference``; one quantity and endpoint given twice is refused (which one would count?)."""
    references = [parse_reference(argument) for argument in arguments or []]
    seen: set[tuple[str, int | None]] = set()
    for reference in references:
        key = (reference.quantity, reference.endpoint)
        if key in seen:
            where = "" if reference.endpoint is None else f"@{reference.endpoint}"
            raise BadReference(f"--reference {reference.quantity}{where} is given twice")
        seen.add(key)
    return references


@dataclass(slots=True)
class Judgement:
    """One reading judged: ``problem`` is why it fails (None: it does not); ``note`` what was found."""

    note: str
    problem: str | None = None
    judged_scale: bool = False  # compared with a reference


def outside_limits(unit: Unit, name: str, raw: Any) -> str | None:
    """Why ``raw`` (an attribute of ``unit``'s cluster) cannot be a value in the specification's unit, or None."""
    if not isinstance(raw, int) or isinstance(raw, bool):
        return None  # null or of another type: attributes.types and measurement.range speak of it
    low, high = unit.limits
    if low <= raw <= high:
        return None
    return (f"{name} {raw} is outside what {unit.spec_unit} can mean for {unit.cluster_name} ({low} to {high}: "
            f"{unit.section})")


def judge(unit: Unit, endpoint: int, raw: Any, reference: Reference | None) -> Judgement:
    """A reading in ``unit``'s specified encoding, against ``reference`` when there is one."""
    where = f"endpoint {endpoint} {unit.quantity}"
    if raw is None:
        return Judgement(f"{where}: no reading yet (null), not judged")
    if not isinstance(raw, (int, float)) or isinstance(raw, bool):
        return Judgement(f"{where}: {type(raw).__name__} {raw!r} is no number, not judged")
    decoded = unit.decode(raw)
    reads = f"{raw} reads as {_number(decoded)} {unit.plain}"
    limit = outside_limits(unit, unit.attribute_name, raw)
    if limit is not None:
        return Judgement(f"{where}: {reads}", f"{where}: {limit}")
    if reference is None:
        return Judgement(f"{where}: {reads} in the specification's unit ({unit.spec_unit}); its scale is not judged "
                         f"without --reference {unit.quantity}=VALUE±TOLERANCE")
    if abs(decoded - reference.value) <= reference.tolerance:
        return Judgement(f"{where}: {reads}, within the reference {reference.text()}", judged_scale=True)
    matching = sorted(((abs(decode(raw) - reference.value), name, decode(raw)) for name, decode in unit.alternatives
                       if abs(decode(raw) - reference.value) <= reference.tolerance))
    if matching:
        _, name, value = matching[0]
        hint = (f"is the value in {name} instead of {unit.spec_unit}? ({raw} in {name} would be {_number(value)} "
                f"{unit.plain})")
    else:
        hint = ("no other usual scaling of it matches either: the sensor or the reference is off, or the unit is "
                "another one")
    problem = (f"{where}: {reads} (the specification's unit is {unit.spec_unit}); the reference is "
               f"{reference.text()}: {hint}")
    return Judgement(f"{where}: {reads}", problem, judged_scale=True)
