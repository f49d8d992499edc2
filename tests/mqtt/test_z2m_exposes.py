"""zigbee2mqtt exposes → capabilities, states and ``/set`` bodies (the pure half of native support).

Expose shapes follow https://www.zigbee2mqtt.io/guide/usage/exposes.html and zigbee2mqtt's device pages:
a cover "(state, position)" whose ``/set`` takes ``{"state": "OPEN"|"CLOSE"|"STOP"}`` and ``{"position": 0..100}``
(https://zigbee2mqtt.io/devices/TS0601_cover_4.html), a lock ``state`` LOCK/UNLOCK with ``lock_state``, and a
thermostat with ``occupied_heating_setpoint``, ``local_temperature`` and ``system_mode``. Binary sensors use the
exposes' ``value_on``/``value_off``: zigbee-herdsman-converters' ``contact`` is on (open) when the value is false.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from qilu_hub.capabilities import CommandError
from qilu_hub.mqtt.z2m_exposes import (
    MISSING,
    Z2mError,
    command_body,
    parse_bridge_devices,
    parse_device,
    parse_online,
    read_state,
)

IEEE = "0x00158d0001a2b3c4"


def _device(*exposes: dict[str, Any], name: str = "thing") -> dict[str, Any]:
    return {"ieee_address": IEEE, "friendly_name": name, "type": "EndDevice",
            "definition": {"vendor": "Acme", "model": "M1", "exposes": list(exposes)}}


def _binary(prop: str, on: Any, off: Any, access: int = 1, **extra: Any) -> dict[str, Any]:
    return {"access": access, "name": prop, "property": prop, "type": "binary", "value_on": on, "value_off": off,
            **extra}


def _numeric(prop: str, unit: str | None = None, access: int = 1, **extra: Any) -> dict[str, Any]:
    body = {"access": access, "name": prop, "property": prop, "type": "numeric", **extra}
    if unit is not None:
        body["unit"] = unit
    return body


COVER = {"type": "cover", "features": [
    {"access": 3, "name": "state", "property": "state", "type": "enum", "values": ["OPEN", "CLOSE", "STOP"]},
    _numeric("position", "%", 7, value_min=0, value_max=100)]}
LOCK = {"type": "lock", "features": [
    _binary("state", "LOCK", "UNLOCK", 3),
    {"access": 1, "name": "lock_state", "property": "lock_state", "type": "enum",
     "values": ["not_fully_locked", "locked", "unlocked"]}]}
CLIMATE = {"type": "climate", "features": [
    _numeric("occupied_heating_setpoint", "°C", 7, value_min=5, value_max=30, value_step=0.5),
    _numeric("local_temperature", "°C", 5),
    {"access": 7, "name": "system_mode", "property": "system_mode", "type": "enum", "values": ["off", "heat", "auto"]}]}
# With an endpoint, the feature keeps its name and its property gets the suffix (state → state_l2).
SWITCH_L2 = {"type": "switch", "endpoint": "l2", "features": [
    dict(_binary("state_l2", "ON", "OFF", 7, value_toggle="TOGGLE", endpoint="l2"), name="state")]}


def _only(entry: dict[str, Any]) -> Any:
    device = parse_device(entry)
    assert device is not None and len(device.entities) == 1, device
    return device.entities[0]


def test_sensors_keep_their_units_or_are_skipped_with_a_reason() -> None:
    device = parse_device(_device(
        _numeric("temperature", "°F"), _numeric("energy", "kWh"), _numeric("power", "W"),
        _numeric("illuminance"),  # a raw illuminance without lx: not the illuminance capability
        _binary("contact", False, True), _binary("water_leak", True, False),
        {"access": 1, "name": "action", "property": "action", "type": "enum", "values": ["single"]}))
    assert device is not None
    by_key = {e.key: e for e in device.entities}
    assert {k: e.capabilities for k, e in by_key.items()} == {
        "temperature": ("temperature",), "energy": ("energy",), "power": ("power",), "contact": ("contact",),
        "water_leak": ("moisture",)}
    assert "unit None" in device.skipped["illuminance"] and "no matching capability" in device.skipped["action"]
    doc = {"temperature": 68, "energy": 1.5, "contact": False, "water_leak": False}
    assert read_state(by_key["temperature"], doc, {}) == 20.0
    assert read_state(by_key["energy"], doc, {}) == 1.5
    assert read_state(by_key["contact"], doc, {}) == "on"  # false = open
    assert read_state(by_key["water_leak"], doc, {}) == "off"
    assert read_state(by_key["power"], doc, {}) is MISSING  # not in this message: no update


def test_cover_lock_climate_and_switch_endpoints() -> None:
    cover = _only(_device(COVER))
    attrs: dict[str, Any] = {}
    assert cover.capabilities == ("cover_position",)
    assert read_state(cover, {"state": "OPEN", "position": 40}, attrs) == "open" and attrs["current_position"] == 40
    assert command_body(cover, "set_cover_position", {"position": 70}, "open") == {"position": 70}
    assert command_body(cover, "stop_cover", {}, "open") == {"state": "STOP"}

    lock = _only(_device(LOCK))
    assert read_state(lock, {"state": "LOCK"}, {}) == "locked"
    assert command_body(lock, "unlock", {}, "locked") == {"state": "UNLOCK"}

    climate = _only(_device(CLIMATE))
    attrs = {}
    assert read_state(climate, {"occupied_heating_setpoint": 21, "local_temperature": 19.5,
                                "system_mode": "heat"}, attrs) == "heat"
    assert attrs == {"temperature": 21.0, "current_temperature": 19.5, "hvac_modes": "off,heat,auto"}
    assert command_body(climate, "set_temperature", {"temperature": 22.5}, "heat") == {
        "occupied_heating_setpoint": 22.5}
    with pytest.raises(CommandError, match=r"range 5\.\.30"):  # the catalogue allows 35; this valve does not
        command_body(climate, "set_temperature", {"temperature": 32}, "heat")
    with pytest.raises(CommandError, match="modes are off, heat, auto"):
        command_body(climate, "set_hvac_mode", {"hvac_mode": "cool"}, "heat")

    switch = _only(_device(SWITCH_L2))
    assert switch.key == "switch_l2" and switch.capabilities == ("on_off",)
    assert read_state(switch, {"state_l2": "ON", "state_l1": "OFF"}, {}) == "on"
    assert command_body(switch, "toggle", {}, "on") == {"state_l2": "TOGGLE"}


def test_read_only_exposes_are_not_commanded() -> None:
    switch = _only(_device({"type": "switch", "features": [_binary("state", "ON", "OFF", access=1)]}))
    with pytest.raises(CommandError, match="cannot be set"):
        command_body(switch, "turn_on", {}, "off")


def test_bridge_state_both_forms() -> None:
    assert parse_online(b'{"state":"online"}') is True and parse_online(b"online") is True
    assert parse_online(b'{"state":"offline"}') is False and parse_online(b"offline") is False
    assert parse_online(b"[1]") is None and parse_online(b"{bad") is None and parse_online(b"") is None


@pytest.mark.parametrize(("entry", "message"), [
    ({"ieee_address": "0x12", "friendly_name": "x"}, "16 hex digits"),
    ({"ieee_address": IEEE, "friendly_name": "a/+/b"}, "cannot be a topic level"),
    ({"ieee_address": IEEE, "friendly_name": "bridge"}, "cannot be a topic level"),
    ({"ieee_address": IEEE, "friendly_name": "hall/availability"}, "cannot be a topic level"),
    ({"ieee_address": IEEE, "friendly_name": "x", "definition": []}, "definition must be a JSON object"),
    ({"ieee_address": IEEE, "friendly_name": "x", "definition": {"exposes": [{"type": "numeric"}]}},
     "needs a property"),
    ({"ieee_address": IEEE, "friendly_name": "x",
      "definition": {"exposes": [_numeric("battery", "%", value_min="low")]}}, "must be numbers"),
    ({"ieee_address": IEEE, "friendly_name": "x",
      "definition": {"exposes": [_numeric(f"p{i}") for i in range(600)]}}, "more than 512 exposes"),
])
def test_malformed_entries_are_refused_with_the_reason(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(Z2mError, match=message):
        parse_device(entry)


def test_a_list_with_a_broken_entry_keeps_that_device() -> None:
    good = _device(_numeric("temperature", "°C"), name="good")
    broken = dict(_device(name="broken"), ieee_address="0x00158d0001a2b3c5", definition={"exposes": 3})
    devices, problems, unreadable = parse_bridge_devices(json.dumps([good, broken]).encode())
    assert [d.friendly_name for d in devices] == ["good"]
    assert unreadable == {"0x00158d0001a2b3c5"} and "exposes must be a list" in next(iter(problems.values()))
    _, _, unreadable = parse_bridge_devices(json.dumps([good, {"friendly_name": "who"}]).encode())
    assert unreadable is None  # an entry that cannot be identified: remove nothing on this list
    with pytest.raises(Z2mError, match="same friendly_name"):
        parse_bridge_devices(json.dumps([good, dict(good, ieee_address="0x00158d0001a2b3c6")]).encode())


def test_colour_light_and_fan() -> None:
    # The Hue Go (7146060PH) colour features as zigbee2mqtt's bridge.test.ts lists them: color_xy and color_hs,
    # both with the property "color".
    xy = {"access": 7, "name": "color_xy", "property": "color", "type": "composite",
          "features": [_numeric("x", access=7), _numeric("y", access=7)]}
    hs = {"access": 7, "name": "color_hs", "property": "color", "type": "composite",
          "features": [_numeric("hue", access=7), _numeric("saturation", access=7)]}
    light = _only(_device({"type": "light", "features": [
        _binary("state", "ON", "OFF", 7, value_toggle="TOGGLE"),
        _numeric("brightness", access=7, value_min=0, value_max=254), xy, hs]}))
    assert light.capabilities == ("on_off", "level", "color")
    attrs: dict[str, Any] = {}
    assert read_state(light, {"state": "ON", "brightness": 254, "color": {"x": 0.3, "y": 0.4, "hue": 120,
                                                                          "saturation": 50}}, attrs) == "on"
    assert attrs == {"brightness": 255, "xy_color": [0.3, 0.4], "hs_color": [120.0, 50.0]}
    assert command_body(light, "turn_on", {"hs_color": [30, 80], "brightness_pct": 50}, "off") == {
        "state": "ON", "brightness": 127, "color": {"hue": 30, "saturation": 80}}
    with pytest.raises(CommandError, match="no colour temperature"):
        command_body(light, "turn_on", {"color_temp_kelvin": 3000}, "off")

    # A fan's features are named state and mode, with the properties fan_state and fan_mode.
    fan = _only(_device({"type": "fan", "features": [
        dict(_binary("fan_state", "ON", "OFF", 7), name="state"),
        {"access": 7, "name": "mode", "property": "fan_mode", "type": "enum",
         "values": ["off", "low", "medium", "high", "on", "auto", "smart"]}]}))
    assert fan.capabilities == ("fan",)
    attrs = {}
    assert read_state(fan, {"fan_state": "ON", "fan_mode": "medium"}, attrs) == "on" and attrs["percentage"] == 67
    assert command_body(fan, "set_percentage", {"percentage": 30}, "on") == {"fan_mode": "low"}
    assert command_body(fan, "set_percentage", {"percentage": 0}, "on") == {"fan_state": "OFF"}
    assert command_body(fan, "turn_on", {"percentage": 100}, "off") == {"fan_mode": "high"}
