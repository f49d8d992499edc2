"""Our entities in Home Assistant's discovery format, and HA-format commands translated back."""

from __future__ import annotations

import json

import pytest

from qilu_hub.capabilities import CommandError
from qilu_hub.context import Context
from qilu_hub.model import Device, Entity, Provenance
from qilu_hub.mqtt.export import ExportTopics, discovery_config, parse_ha_command, state_document
from qilu_hub.states import State

TOPICS = ExportTopics("homeassistant", "qilu", "hub_a")


def _light() -> Entity:
    return Entity("light.kitchen", "virtual:1:light", "dev1", ("on_off", "level", "color_temperature"), "Kitchen Light")


def test_light_config_and_state() -> None:
    entity = _light()
    device = Device("dev1", "Kitchen Light", manufacturer="ACME", model="L1", via_device_id="bridge1")
    device.connections[("ble", "aa:bb:cc:dd:ee:ff")] = Provenance("test", 0.0, 0.0)
    config = discovery_config(entity, device, "Kitchen", TOPICS)
    assert TOPICS.config(entity) == "homeassistant/light/hub_a/light_kitchen/config"
    assert config["unique_id"] == "qilu_hub_a_virtual:1:light"
    assert config["object_id"] == "kitchen"  # Home Assistant makes light.kitchen of it, not light.light_kitchen
    assert config["name"] is None  # the device's main feature: Home Assistant names it after the device
    assert config["device"]["name"] == "Kitchen Light"
    assert config["device"]["identifiers"] == ["qilu_hub_a_dev1"]
    assert config["device"]["via_device"] == "qilu_hub_a_bridge1"
    assert config["device"]["connections"] == [["bluetooth", "aa:bb:cc:dd:ee:ff"]]
    assert config["color_mode"] is True and config["supported_color_modes"] == ["color_temp"]
    assert (config["min_mireds"], config["max_mireds"]) == (83, 1000) and config["brightness_scale"] == 255
    json.dumps(config)  # serialisable
    state = State("light.kitchen", "on", {"brightness": 10, "color_temp_kelvin": 2700}, 1.0, 2.0,
                  Context("mqtt:hub_b"))
    doc = state_document(entity, state, "hub_a")
    assert doc["state"] == "ON" and doc["brightness"] == 10 and doc["color_temp"] == 370  # mireds
    assert doc["color_mode"] == "color_temp"
    assert doc["origin"] == "hub_b" and doc["hub"] == "hub_a"
    unknown = State("light.kitchen", "unknown", {}, 1.0, 2.0, None)
    assert state_document(entity, unknown, "hub_a")["state"] is None  # "None" to Home Assistant: no state yet


def test_ha_commands_translate() -> None:
    light = _light()
    assert parse_ha_command(light, None, b'{"state":"ON","brightness":3,"color_temp":250}') == (
        "turn_on", {"brightness": 3, "color_temp_kelvin": 4000})
    with pytest.raises(CommandError):
        parse_ha_command(light, None, b'{"state":"ON","color_temp":0}')
    assert parse_ha_command(light, None, b"OFF") == ("turn_off", {})
    switch = Entity("switch.x", "u", None, ("on_off",), "X")
    assert parse_ha_command(switch, None, b"toggle") == ("toggle", {})
    climate = Entity("climate.x", "c", None, ("thermostat",), "X")
    assert parse_ha_command(climate, "temperature", b"21.5") == ("set_temperature", {"temperature": 21.5})
    assert parse_ha_command(climate, "mode", b"cool") == ("set_hvac_mode", {"hvac_mode": "cool"})


@pytest.mark.parametrize(("field", "payload", "code"), [
    (None, b"MAYBE", "invalid_format"),
    ("temperature", b"warm", "invalid_format"),
    ("temperature", b"nan", "invalid_format"),
    ("speed", b"1", "not_supported"),
    (None, b"\xff", "invalid_format"),
])
def test_bad_ha_commands(field: str | None, payload: bytes, code: str) -> None:
    climate = Entity("switch.x", "c", None, ("on_off",), "X")
    with pytest.raises(CommandError) as info:
        parse_ha_command(climate, field, payload)
    assert info.value.code == code
