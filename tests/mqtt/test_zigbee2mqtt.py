"""zigbee2mqtt devices, announced with the discovery payloads it really sends, adopted and controlled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qilu_hub import UNAVAILABLE, Hub
from tests.mqtt.conftest import settings_for, st, start_hub, wait_for
from tests.mqtt.z2m_payloads import BULB_STATE, DISCOVERY, WEATHER_STATE
from tests.testbeds.mosquitto import Mosquitto


async def _announce(client: Any) -> None:
    await client.publish("zigbee2mqtt/bridge/state", json.dumps({"state": "online"}), qos=1, retain=True)
    for topic, payload in DISCOVERY.items():
        await client.publish(topic, json.dumps(payload), qos=1, retain=True)
    await client.publish("zigbee2mqtt/weather_sensor", json.dumps(WEATHER_STATE), qos=1, retain=True)
    await client.publish("zigbee2mqtt/bulb", json.dumps(BULB_STATE), qos=1, retain=True)


async def test_zigbee2mqtt_devices_appear_and_are_controllable(broker: Mosquitto, plain: Any, hubs: list[Hub],
                                                               tmp_path: Path) -> None:
    z2m = await plain("zigbee2mqtt/bulb/set")
    await _announce(z2m.client)  # retained before the hub starts, as after a hub restart
    hub, bridge = await start_hub(tmp_path / "a", settings_for(broker, "hub_a"))
    hubs.append(hub)

    temp = await wait_for(lambda: (s := hub.states.get("sensor.weather_sensor_temperature")) and s.value == 23.4
                          and s, what="temperature")
    assert temp.value == 23.4
    assert st(hub, "sensor.weather_sensor_humidity").value == 41.5
    assert st(hub, "sensor.weather_sensor_pressure").value == 1012.0
    await wait_for(lambda: st(hub, "sensor.weather_sensor_battery").value == 97.0, what="battery")
    entity = hub.entities.get("sensor.weather_sensor_temperature")
    assert entity is not None and entity.capabilities == ("temperature",) and entity.unit == "°C"
    battery = hub.entities.get("sensor.weather_sensor_battery")
    assert battery is not None and battery.entity_category == "diagnostic"
    # One device for the four sensors, in the common model, with the Zigbee IEEE address as a connection.
    device = hub.devices.get(entity.device_id or "")
    assert device is not None and device.manufacturer == "Aqara" and device.model == "WSDCGQ11LM"
    assert ("zigbee", "0x0017880104e45522") in device.connections
    assert {e.entity_id for e in hub.entities.for_device(device.id)} == {
        "sensor.weather_sensor_temperature", "sensor.weather_sensor_humidity",
        "sensor.weather_sensor_pressure", "sensor.weather_sensor_battery"}
    # Link quality has no capability: skipped, with the reason kept.
    assert "linkquality" in next(iter(k for k in bridge.skipped if "linkquality" in k))
    assert "no matching capability" in bridge.skipped["homeassistant/sensor/0x0017880104e45522/linkquality/config"]

    bulb = await wait_for(lambda: (s := hub.states.get("light.bulb")) and s.value == "on" and s, what="bulb")
    assert bulb.attributes["brightness"] == round(215 * 255 / 254)
    assert bulb.attributes["color_temp_kelvin"] == round(1_000_000 / 325)
    light = hub.entities.get("light.bulb")
    assert light is not None and light.capabilities == ("on_off", "level", "color_temperature")
    bulb_device = hub.devices.get(light.device_id or "")
    assert bulb_device is not None and bulb_device.model == "LED1545G12"

    # Commands go out in zigbee2mqtt's JSON schema, brightness scaled to 254 and colour temperature in mireds.
    await hub.commands.async_call("light.bulb", "turn_on", {"brightness": 128, "color_temp_kelvin": 2500})
    sent = await wait_for(lambda: z2m.on("zigbee2mqtt/bulb/set"), what="bulb command")
    assert json.loads(sent[-1].payload) == {"state": "ON", "brightness": 127, "color_temp": 400}
    assert sent[-1].qos == 1
    # The device answers on its state topic; the hub follows.
    await z2m.client.publish("zigbee2mqtt/bulb", json.dumps({"state": "ON", "brightness": 127, "color_temp": 400}))
    await wait_for(lambda: st(hub, "light.bulb").attributes["brightness"] == 128, what="bulb follows")
    await hub.commands.async_call("light.bulb", "toggle")
    await wait_for(lambda: len(z2m.on("zigbee2mqtt/bulb/set")) == 2, what="toggle")
    assert json.loads(z2m.on("zigbee2mqtt/bulb/set")[-1].payload) == {"state": "OFF"}

    # zigbee2mqtt goes offline: its devices become unavailable, and come back with it.
    await z2m.client.publish("zigbee2mqtt/bridge/state", json.dumps({"state": "offline"}), retain=True)
    await wait_for(lambda: st(hub, "light.bulb").value == UNAVAILABLE, what="unavailable")
    assert st(hub, "sensor.weather_sensor_temperature").value == UNAVAILABLE
    await z2m.client.publish("zigbee2mqtt/bridge/state", json.dumps({"state": "online"}), retain=True)
    await wait_for(lambda: st(hub, "sensor.weather_sensor_temperature").value == 23.4, what="available")

    # Garbage on a state topic is counted, not fatal.
    await z2m.client.publish("zigbee2mqtt/weather_sensor", b"not json")
    await z2m.client.publish("zigbee2mqtt/weather_sensor", json.dumps({"temperature": 19.0}))
    await wait_for(lambda: st(hub, "sensor.weather_sensor_temperature").value == 19.0, what="recovers")
    assert bridge.stats.state_errors >= 1

    # Imported devices are not exported again.
    assert "light.bulb" not in bridge.exported()

    # An empty retained config removes the entity, as in Home Assistant.
    await z2m.client.publish("homeassistant/light/0x000b57fffec6a5b2/light/config", b"", retain=True)
    await wait_for(lambda: hub.entities.get("light.bulb") is None, what="removal")
    assert hub.states.get("light.bulb") is None


async def test_import_can_be_turned_off(broker: Mosquitto, plain: Any, hubs: list[Hub], tmp_path: Path) -> None:
    z2m = await plain()
    await _announce(z2m.client)
    hub, bridge = await start_hub(tmp_path / "a", settings_for(broker, "hub_a", import_=False))
    hubs.append(hub)
    await wait_for(bridge.connected.is_set, what="connect")
    probe = await plain("homeassistant/#")  # the retained configs have surely reached the hub by now
    await wait_for(lambda: len(probe.messages) >= len(DISCOVERY), what="retained configs")
    assert bridge.imported() == {}
    assert hub.entities.get("light.bulb") is None


async def test_device_discovery_over_the_broker(broker: Mosquitto, plain: Any, hubs: list[Hub],
                                                tmp_path: Path) -> None:
    hub, bridge = await start_hub(tmp_path / "a", settings_for(broker, "hub_a"))
    hubs.append(hub)
    await wait_for(bridge.connected.is_set, what="connect")
    publisher = await plain()
    device = {
        "dev": {"ids": "ea334450945afc", "name": "Bedroom Node", "mf": "Bla electronics", "mdl": "xya"},
        "o": {"name": "bla2mqtt"},
        "cmps": {
            "t": {"p": "sensor", "device_class": "temperature", "unit_of_measurement": "°C",
                  "value_template": "{{ value_json.temperature }}", "unique_id": "temp01ae_t", "name": "Temp"},
            "h": {"p": "sensor", "device_class": "humidity", "value_template": "{{ value_json.humidity }}",
                  "unique_id": "temp01ae_h", "name": "Hum"},
        },
        "state_topic": "sensorBedroom/state",
    }
    await publisher.client.publish("homeassistant/device/bedroom/config", json.dumps(device), retain=True)
    await publisher.client.publish("sensorBedroom/state", json.dumps({"temperature": 18.5, "humidity": 55}),
                                   retain=True)  # retained: the hub may subscribe after this is sent
    await wait_for(lambda: (s := hub.states.get("sensor.bedroom_node_temp")) and s.value == 18.5, what="temp")
    await wait_for(lambda: (s := hub.states.get("sensor.bedroom_node_hum")) and s.value == 55.0, what="hum")
    # Dropping a component from the device removes just that entity.
    del device["cmps"]["h"]  # type: ignore[attr-defined]
    await publisher.client.publish("homeassistant/device/bedroom/config", json.dumps(device), retain=True)
    await wait_for(lambda: hub.entities.get("sensor.bedroom_node_hum") is None, what="component removed")
    assert hub.entities.get("sensor.bedroom_node_temp") is not None
