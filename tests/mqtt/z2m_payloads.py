"""Discovery payloads zigbee2mqtt publishes for two real devices.

Transcribed from zigbee2mqtt's own expectations of its Home Assistant extension,
test/extensions/homeassistant.test.ts ("Should discover devices and groups",
Koenkk/zigbee2mqtt at commit 0018ca8f809708d22221c9d557b3208ba2e5c057): the Aqara
temperature/humidity/pressure sensor WSDCGQ11LM (friendly name ``weather_sensor``)
and the IKEA TRADFRI bulb LED1545G12 (friendly name ``bulb``). The ``origin.sw``
version is left out. State payloads follow zigbee2mqtt's MQTT topic documentation
(https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html), where the
LED1545G12 example is ``{"state": "ON", "brightness": 215, "color_temp": 325}``.
"""

from __future__ import annotations

from typing import Any

ORIGIN = {"name": "Zigbee2MQTT", "url": "https://www.zigbee2mqtt.io"}
AVAILABILITY = [{"topic": "zigbee2mqtt/bridge/state", "value_template": "{{ value_json.state }}"}]
WEATHER_DEVICE = {
    "identifiers": ["zigbee2mqtt_0x0017880104e45522"],
    "name": "weather_sensor",
    "model": "Temperature and humidity sensor",
    "model_id": "WSDCGQ11LM",
    "manufacturer": "Aqara",
    "via_device": "zigbee2mqtt_bridge_0x00124b00120144ae",
}


def _weather(prop: str, unit: str, device_class: str, **extra: Any) -> dict[str, Any]:
    payload = {
        "unit_of_measurement": unit,
        "device_class": device_class,
        "state_class": "measurement",
        "value_template": "{{ value_json[\"" + prop + "\"] }}",
        "state_topic": "zigbee2mqtt/weather_sensor",
        "object_id": f"weather_sensor_{prop}",
        "default_entity_id": f"sensor.weather_sensor_{prop}",
        "unique_id": f"0x0017880104e45522_{prop}_zigbee2mqtt",
        "origin": ORIGIN,
        "device": WEATHER_DEVICE,
        "availability": AVAILABILITY,
        "enabled_by_default": True,
    }
    payload.update(extra)
    return payload


DISCOVERY: dict[str, dict[str, Any]] = {
    "homeassistant/sensor/0x0017880104e45522/temperature/config": _weather("temperature", "°C", "temperature"),
    "homeassistant/sensor/0x0017880104e45522/humidity/config": _weather("humidity", "%", "humidity"),
    "homeassistant/sensor/0x0017880104e45522/pressure/config": _weather("pressure", "hPa", "atmospheric_pressure"),
    "homeassistant/sensor/0x0017880104e45522/battery/config": _weather("battery", "%", "battery",
                                                                       entity_category="diagnostic"),
    "homeassistant/sensor/0x0017880104e45522/linkquality/config": {
        "icon": "mdi:signal",
        "enabled_by_default": False,
        "entity_category": "diagnostic",
        "unit_of_measurement": "lqi",
        "state_class": "measurement",
        "value_template": '{{ value_json["linkquality"] }}',
        "state_topic": "zigbee2mqtt/weather_sensor",
        "name": "Linkquality",
        "object_id": "weather_sensor_linkquality",
        "default_entity_id": "sensor.weather_sensor_linkquality",
        "unique_id": "0x0017880104e45522_linkquality_zigbee2mqtt",
        "origin": ORIGIN,
        "device": WEATHER_DEVICE,
        "availability": AVAILABILITY,
    },
    "homeassistant/light/0x000b57fffec6a5b2/light/config": {
        "availability": AVAILABILITY,
        "brightness": True,
        "brightness_scale": 254,
        "supported_color_modes": ["color_temp"],
        "min_mireds": 250,
        "max_mireds": 454,
        "command_topic": "zigbee2mqtt/bulb/set",
        "device": {
            "identifiers": ["zigbee2mqtt_0x000b57fffec6a5b2"],
            "manufacturer": "IKEA",
            "model": "TRADFRI bulb E26/E27, white spectrum, globe, opal, 980 lm",
            "model_id": "LED1545G12",
            "name": "bulb",
            "via_device": "zigbee2mqtt_bridge_0x00124b00120144ae",
        },
        "effect": True,
        "effect_list": ["blink", "breathe", "okay", "channel_change", "finish_effect", "stop_effect"],
        "name": None,
        "schema": "json",
        "state_topic": "zigbee2mqtt/bulb",
        "object_id": "bulb",
        "default_entity_id": "light.bulb",
        "unique_id": "0x000b57fffec6a5b2_light_zigbee2mqtt",
        "origin": ORIGIN,
    },
}

WEATHER_STATE = {"temperature": 23.4, "humidity": 41.5, "pressure": 1012.0, "battery": 97, "linkquality": 120,
                 "voltage": 3005}
BULB_STATE = {"state": "ON", "brightness": 215, "color_temp": 325, "linkquality": 90}
