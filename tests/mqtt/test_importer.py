"""Discovery payloads from others → capabilities, state readers and command payloads."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qilu_hub.mqtt.importer import (
    DiscoveryError,
    command_messages,
    expand_abbreviations,
    parse_device_discovery,
    parse_discovery,
    read_source,
)
from qilu_hub.mqtt.template import MISSING, TemplateError
from tests.mqtt.z2m_payloads import DISCOVERY

PREFIX = "homeassistant"
BULB = "homeassistant/light/0x000b57fffec6a5b2/light/config"
TEMP = "homeassistant/sensor/0x0017880104e45522/temperature/config"


def test_zigbee2mqtt_sensor() -> None:
    spec = parse_discovery(PREFIX, TEMP, DISCOVERY[TEMP])
    assert spec.capabilities == ("temperature",)
    assert spec.object_id == "weather_sensor_temperature"
    assert spec.device_identifiers == [("mqtt", "zigbee2mqtt_0x0017880104e45522")]
    assert spec.device_connections == [("zigbee", "0x0017880104e45522")]
    assert spec.model == "WSDCGQ11LM" and spec.manufacturer == "Aqara"
    assert spec.availability[0][0] == "zigbee2mqtt/bridge/state"
    source = spec.sources[0]
    assert read_source(spec, source, b'{"temperature": 22.1, "humidity": 50}', None, {}) == 22.1
    assert read_source(spec, source, b'{"humidity": 50}', None, {}) is MISSING


def test_zigbee2mqtt_json_light() -> None:
    spec = parse_discovery(PREFIX, BULB, DISCOVERY[BULB])
    assert spec.capabilities == ("on_off", "level", "color_temperature")
    assert spec.name == "bulb"  # "name": null → the device's main feature
    attrs: dict[str, object] = {}
    value = read_source(spec, spec.sources[0], b'{"state":"ON","brightness":254,"color_temp":250}', "off", attrs)
    assert value == "on" and attrs == {"brightness": 255, "color_temp_kelvin": 4000}
    [(topic, payload)] = command_messages(spec, "turn_on", {"brightness_pct": 50.0}, "off")
    assert topic == "zigbee2mqtt/bulb/set" and json.loads(payload) == {"state": "ON", "brightness": 127}
    [(_, payload)] = command_messages(spec, "toggle", {}, "off")
    assert json.loads(payload) == {"state": "ON"}


def test_tasmota_style_abbreviated_switch() -> None:
    # Tasmota's Home Assistant discovery (SetOption19) uses abbreviations, a ~ base and a POWER JSON field.
    payload = {
        "name": "Kitchen Plug", "~": "tasmota_ABC123/", "cmd_t": "~cmnd/POWER", "stat_t": "~tele/STATE",
        "val_tpl": "{{value_json.POWER}}", "pl_off": "OFF", "pl_on": "ON", "avty_t": "~tele/LWT",
        "pl_avail": "Online", "pl_not_avail": "Offline", "uniq_id": "ABC123_RL_1",
        "dev": {"ids": ["ABC123"], "cns": [["mac", "A4:CF:12:AB:C1:23"]], "mf": "Tasmota", "mdl": "Sonoff Basic"},
    }
    spec = parse_discovery(PREFIX, "homeassistant/switch/ABC123_RL_1/config", payload)
    assert spec.capabilities == ("on_off",)
    assert spec.options["command_topic"] == "tasmota_ABC123/cmnd/POWER"
    assert spec.sources[0].topic == "tasmota_ABC123/tele/STATE"
    assert spec.availability[0][0] == "tasmota_ABC123/tele/LWT"
    assert spec.availability[0][2:] == ("Online", "Offline")
    assert ("mac", "A4:CF:12:AB:C1:23") in spec.device_connections
    assert read_source(spec, spec.sources[0], b'{"POWER":"ON","Uptime":"1T"}', None, {}) == "on"
    assert command_messages(spec, "turn_off", {}, "on") == [("tasmota_ABC123/cmnd/POWER", "OFF")]


def test_esphome_style_sensor_and_binary_sensor() -> None:
    # ESPHome's MQTT component: abbreviated keys, plain-text states, one availability topic per node.
    temp = parse_discovery(PREFIX, "homeassistant/sensor/livingroom/temperature/config", {
        "dev_cla": "temperature", "unit_of_meas": "°C", "stat_cla": "measurement", "name": "Temperature",
        "stat_t": "livingroom/sensor/temperature/state", "avty_t": "livingroom/status",
        "uniq_id": "ESPsensortemperature", "dev": {"ids": "240ac4d3e1f0", "name": "livingroom",
                                                    "sw": "esphome v2024.2.0", "mdl": "esp32dev", "mf": "espressif"},
    })
    assert temp.capabilities == ("temperature",)
    assert temp.device_identifiers == [("mqtt", "240ac4d3e1f0")]
    assert read_source(temp, temp.sources[0], b"21.37", None, {}) == 21.37
    motion = parse_discovery(PREFIX, "homeassistant/binary_sensor/livingroom/pir/config", {
        "dev_cla": "motion", "name": "PIR", "stat_t": "livingroom/binary_sensor/pir/state",
        "pl_on": "ON", "pl_off": "OFF", "uniq_id": "ESPbinary_sensorpir", "dev": {"ids": "240ac4d3e1f0"},
    })
    assert motion.capabilities == ("motion",)
    assert read_source(motion, motion.sources[0], b"ON", None, {}) == "on"
    assert read_source(motion, motion.sources[0], b"garbage", None, {}) is MISSING


def test_device_discovery_with_components() -> None:
    payload = {
        "dev": {"ids": "ea334450945afc", "name": "Kitchen", "mf": "Bla electronics", "mdl": "xya"},
        "o": {"name": "bla2mqtt"},
        "cmps": {
            "t": {"p": "sensor", "device_class": "temperature", "unit_of_measurement": "°C",
                  "value_template": "{{ value_json.temperature }}", "unique_id": "temp01ae_t"},
            "h": {"p": "sensor", "device_class": "humidity", "value_template": "{{ value_json.humidity }}",
                  "unique_id": "temp01ae_h"},
            "x": {"p": "sensor", "device_class": "signal_strength", "unique_id": "temp01ae_x"},
        },
        "state_topic": "sensorBedroom/state",
        "qos": 2,
    }
    entries = dict(parse_device_discovery(PREFIX, "homeassistant/device/kitchen/config", payload))
    temp = entries["homeassistant/device/kitchen/t"]
    assert not isinstance(temp, DiscoveryError)
    assert temp.capabilities == ("temperature",) and temp.sources[0].topic == "sensorBedroom/state"
    assert temp.device_identifiers == [("mqtt", "ea334450945afc")]
    assert isinstance(entries["homeassistant/device/kitchen/x"], DiscoveryError)


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("homeassistant/sensor/x/config", {"state_topic": "a", "device_class": "signal_strength"}, "no matching"),
    ("homeassistant/sensor/x/config", {"device_class": "temperature"}, "state_topic is required"),
    ("homeassistant/sensor/x/config", {"state_topic": "a/#", "device_class": "temperature"}, "wildcards"),
    ("homeassistant/switch/x/config", {"state_topic": "a", "command_topic": "b",
                                       "value_template": "{{ states('switch.other') }}"}, "unsupported template"),
    ("homeassistant/switch/x/config", {"command_topic": "b", "command_template": "{{ value * 2 }}"},
     "command_template"),
    ("homeassistant/vacuum/x/config", {"command_topic": "b"}, "not imported"),
    ("homeassistant/light/x/config", {"command_topic": "b", "schema": "template"}, "schema"),
    ("homeassistant/light/x/config", {"command_topic": "b", "brightness_scale": 0}, "brightness_scale"),
    ("elsewhere/light/x/config", {"command_topic": "b"}, "not a discovery topic"),
])
def test_unadoptable_payloads_say_why(topic: str, payload: dict[str, object], reason: str) -> None:
    with pytest.raises(DiscoveryError, match=reason):
        parse_discovery(PREFIX, topic, payload)


def test_abbreviation_expansion_and_base_topic() -> None:
    data = expand_abbreviations({"~": "home/dev", "stat_t": "~/state", "cmd_t": "set/~", "dev": {"mf": "X"},
                                 "avty": [{"t": "~/avail"}]})
    assert data["state_topic"] == "home/dev/state"
    assert data["command_topic"] == "set/home/dev"
    assert data["device"] == {"manufacturer": "X"}
    assert data["availability"] == [{"topic": "home/dev/avail"}]


def test_default_schema_light_and_cover_and_lock() -> None:
    light = parse_discovery(PREFIX, "homeassistant/light/l/config", {
        "command_topic": "l/set", "state_topic": "l/state", "brightness_command_topic": "l/bri/set",
        "brightness_state_topic": "l/bri", "brightness_scale": 100, "unique_id": "l1"})
    assert light.capabilities == ("on_off", "level")
    attrs: dict[str, object] = {}
    assert read_source(light, light.sources[1], b"50", "on", attrs) is MISSING
    assert attrs == {"brightness": 128}
    assert command_messages(light, "turn_on", {"brightness": 255}, "off") == [("l/set", "ON"), ("l/bri/set", "100")]
    cover = parse_discovery(PREFIX, "homeassistant/cover/c/config", {
        "command_topic": "c/set", "state_topic": "c/state", "position_topic": "c/pos",
        "set_position_topic": "c/pos/set", "unique_id": "c1"})
    assert command_messages(cover, "set_cover_position", {"position": 40}, "open") == [("c/pos/set", "40")]
    assert command_messages(cover, "close_cover", {}, "open") == [("c/set", "CLOSE")]
    lock = parse_discovery(PREFIX, "homeassistant/lock/k/config", {
        "command_topic": "k/set", "state_topic": "k/state", "unique_id": "k1"})
    assert read_source(lock, lock.sources[0], b"LOCKED", None, {}) == "locked"
    assert command_messages(lock, "unlock", {}, "locked") == [("k/set", "UNLOCK")]


_KEYS = ["name", "uniq_id", "unique_id", "stat_t", "state_topic", "cmd_t", "command_topic", "val_tpl",
         "value_template", "schema", "brightness", "dev", "device", "ids", "identifiers", "avty_t", "~",
         "payload_on", "payload_off", "unit_of_meas", "dev_cla", "cmps", "p", "options", "platform"]
_VALUES: Any = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.sampled_from(
        ["x/state", "~/set", "ON", "json", "{{ value_json.a }}", "{{ value | int }}", "", "light", "sensor"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["light", "switch", "sensor", "binary_sensor", "cover", "fan", "climate", "lock", "device"]),
       st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=8), st.binary(max_size=30))
def test_any_discovery_payload_is_adopted_or_refused_with_a_reason(component: str, payload: dict[str, Any],
                                                                   message: bytes) -> None:
    topic = f"homeassistant/{component}/node/obj/config"
    try:
        if component == "device":
            specs = [s for _, s in parse_device_discovery("homeassistant", topic, payload)
                     if not isinstance(s, DiscoveryError)]
        else:
            specs = [parse_discovery("homeassistant", topic, payload)]
    except DiscoveryError as err:
        assert str(err)
        return
    for spec in specs:
        for source in spec.sources:
            with contextlib.suppress(TemplateError):
                read_source(spec, source, message, None, {})


@pytest.mark.parametrize("junk", [True, 3])
def test_device_identifiers_or_connections_that_are_not_lists_are_ignored(junk: object) -> None:
    # found by the property test below: TypeError from iterating a bool
    spec = parse_discovery(PREFIX, f"{PREFIX}/sensor/n/o/config",
                           {"name": "T", "uniq_id": "t1", "stat_t": "t/s", "dev_cla": "temperature",
                            "dev": {"ids": junk, "cns": junk, "name": "D"}})
    assert spec.unique_id == "t1"


@pytest.mark.parametrize("availability", [1e400, 7, True, "topic"])
def test_availability_that_is_not_a_list_is_ignored(availability: object) -> None:
    # found by fuzz/targets/mqtt_discovery.py: TypeError escaped parse_discovery, past the bridge's handler
    spec = parse_discovery(PREFIX, f"{PREFIX}/sensor/n/o/config",
                           {"name": "T", "uniq_id": "t1", "stat_t": "t/s", "dev_cla": "temperature",
                            "avty": availability})
    assert spec.availability == []
    with_base = parse_discovery(PREFIX, f"{PREFIX}/sensor/n/o/config",  # "~" took another path (fuzz, too)
                                {"~": "base", "name": "T", "uniq_id": "t1", "stat_t": "~/s", "dev_cla": "temperature",
                                 "avty": availability})
    assert with_base.availability == [] and with_base.sources[0].topic == "base/s"
