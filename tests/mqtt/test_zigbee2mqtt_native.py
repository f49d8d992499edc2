"""zigbee2mqtt read natively (its HA discovery off, the default): a simulator on a real Mosquitto, the real hub.

Payload shapes and device entries: see tests/testbeds/zigbee2mqtt_sim.py (zigbee2mqtt's documentation and its
test/extensions/bridge.test.ts fixtures).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hass_client import HomeAssistantClient
from hass_client.exceptions import FailedCommand

from qilu_hub import UNAVAILABLE, Hub, Scopes
from qilu_hub.api import ApiServer
from qilu_hub.capabilities import CommandError
from qilu_hub.mqtt import MqttBridge
from qilu_hub.mqtt.zigbee2mqtt import UNIQUE_PREFIX, Zigbee2Mqtt
from tests.mqtt.conftest import settings_for, st, wait_for
from tests.mqtt.z2m_payloads import DISCOVERY
from tests.testbeds.mosquitto import Mosquitto
from tests.testbeds.zigbee2mqtt_sim import BULB_IEEE, MOTION, MOTION_IEEE, WEATHER_IEEE, Zigbee2MqttSim

LIGHT = "light.bulb"
TEMPERATURE = "sensor.weather_sensor_temperature"
OCCUPANCY = "binary_sensor.occupancy_sensor_occupancy"


@dataclass
class Env:
    hub: Hub
    bridge: MqttBridge
    api: ApiServer
    sim: Zigbee2MqttSim
    token: str

    @property
    def z2m(self) -> Zigbee2Mqtt:
        assert self.bridge.zigbee2mqtt is not None
        return self.bridge.zigbee2mqtt

    @property
    def ws_url(self) -> str:
        return self.api.url.replace("http", "ws", 1) + "/api/websocket"


@pytest.fixture
async def env(broker: Mosquitto, tmp_path: Path) -> AsyncIterator[Env]:
    sim = Zigbee2MqttSim("127.0.0.1", broker.port)
    await sim.start()  # retained before the hub starts, as after a hub restart
    hub = Hub(tmp_path / "hub", {"hub": {"name": "Home"}}, recorder=False)
    bridge = MqttBridge(settings_for(broker, "hub_a"))
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(bridge)
    hub.add_component(api)
    await hub.async_start()
    _, token = hub.tokens.create("admin", Scopes(admin=True))
    environment = Env(hub, bridge, api, sim, token)
    await wait_for(lambda: (s := hub.states.get(LIGHT)) and s.value == "on", what="bulb adopted")
    try:
        yield environment
    finally:
        await hub.async_stop()
        await sim.stop()


def _device_of(hub: Hub, entity_id: str) -> Any:
    entity = hub.entities.get(entity_id)
    assert entity is not None, entity_id
    device = hub.devices.get(entity.device_id or "")
    assert device is not None
    return device


async def test_devices_become_entities_that_obey(env: Env) -> None:
    hub, sim = env.hub, env.sim
    bulb = st(hub, LIGHT)
    assert bulb.attributes["brightness"] == round(215 * 255 / 254)
    assert bulb.attributes["color_temp_kelvin"] == round(1_000_000 / 325)
    light = hub.entities.get(LIGHT)
    assert light is not None and light.capabilities == ("on_off", "level", "color_temperature")
    device = _device_of(hub, LIGHT)
    assert (device.manufacturer, device.model, device.name) == ("IKEA", "LED1545G12", "bulb")
    assert ("zigbee", BULB_IEEE) in device.connections and ("zigbee2mqtt", BULB_IEEE) in device.identifiers

    # Sensors with their units; battery voltage arrives in mV and is read in V; link quality has no capability.
    await wait_for(lambda: st(hub, TEMPERATURE).value == 23.4, what="temperature")
    assert hub.entities.get(TEMPERATURE).unit == "°C"  # type: ignore[union-attr]
    assert st(hub, "sensor.weather_sensor_humidity").value == 41.5
    assert st(hub, "sensor.weather_sensor_pressure").value == 1012.0
    assert st(hub, "sensor.weather_sensor_voltage").value == pytest.approx(3.005)
    battery = hub.entities.get("sensor.weather_sensor_battery")
    assert battery is not None and battery.entity_category == "diagnostic" and battery.unit == "%"
    assert "no matching capability" in env.z2m.skipped()[f"{WEATHER_IEEE}/linkquality"]
    assert hub.entities.get("sensor.weather_sensor_linkquality") is None
    assert st(hub, OCCUPANCY).value == "off"
    assert st(hub, "sensor.occupancy_sensor_illuminance").value == 120.0
    assert _device_of(hub, OCCUPANCY).model == "RTCGQ11LM"
    # The coordinator is zigbee2mqtt itself, not a device of the home.
    assert set(env.z2m.devices()) == {BULB_IEEE, WEATHER_IEEE, MOTION_IEEE}
    assert "light.bulb" not in env.bridge.exported()  # mirrored from the broker: never exported back

    # Motion: the sensor's state JSON moves the binary sensor.
    sim.states[MOTION_IEEE]["occupancy"] = True
    await sim.publish_state(MOTION_IEEE)
    await wait_for(lambda: st(hub, OCCUPANCY).value == "on", what="motion")

    # A command through Home Assistant's WebSocket API, by HA's own client library: zigbee2mqtt's /set JSON with
    # brightness scaled to the bulb's 254 and colour temperature in mired; the simulated bulb answers.
    async with HomeAssistantClient(env.ws_url, env.token) as client:
        await client.call_service("light", "turn_on", {"brightness": 128, "color_temp_kelvin": 2500},
                                  {"entity_id": LIGHT})
        await wait_for(lambda: sim.commands, what="the /set command")
        assert sim.commands[-1] == ("zigbee2mqtt/bulb/set", {"state": "ON", "brightness": 127, "color_temp": 400})
        await wait_for(lambda: st(hub, LIGHT).attributes.get("color_temp_kelvin") == 2500, what="bulb answers")
        assert st(hub, LIGHT).attributes["brightness"] == round(127 * 255 / 254)

        # Out of this bulb's own range (250..454 mired = 2203..4000 K): refused, nothing published.
        with pytest.raises(FailedCommand, match=r"range 2203\.\.4000 K"):
            await client.call_service("light", "turn_on", {"color_temp_kelvin": 6500}, {"entity_id": LIGHT})
    assert len(sim.commands) == 1

    await hub.commands.async_call(LIGHT, "toggle")
    await wait_for(lambda: len(sim.commands) == 2, what="toggle")
    assert sim.commands[-1][1] == {"state": "TOGGLE"}
    await wait_for(lambda: st(hub, LIGHT).value == "off", what="bulb off")
    with pytest.raises(CommandError, match="not supported"):
        await hub.commands.async_call(TEMPERATURE, "turn_on")


async def test_rename_offline_and_leave(env: Env) -> None:
    hub, sim = env.hub, env.sim
    light = hub.entities.get(LIGHT)
    assert light is not None
    device_id = light.device_id

    # Renamed in zigbee2mqtt: the same device and entity (identity is the IEEE address), new topics.
    await sim.rename(BULB_IEEE, "kitchen/ceiling")
    await wait_for(lambda: env.z2m.devices()[BULB_IEEE] == "kitchen/ceiling", what="rename")
    assert hub.entities.get(LIGHT) is light and light.device_id == device_id
    assert hub.devices.get(device_id or "").name == "kitchen/ceiling"  # type: ignore[union-attr]
    assert hub.entities.get("light.kitchen_ceiling") is None
    await hub.commands.async_call(LIGHT, "turn_off")
    await wait_for(lambda: sim.commands, what="command after rename")
    assert sim.commands[-1] == ("zigbee2mqtt/kitchen/ceiling/set", {"state": "OFF"})
    await wait_for(lambda: st(hub, LIGHT).value == "off", what="state from the new topic")

    # zigbee2mqtt offline (JSON form), then the legacy plain string: everything unavailable, attributes kept.
    await sim.publish("bridge/state", {"state": "offline"}, retain=True)
    await wait_for(lambda: st(hub, LIGHT).value == UNAVAILABLE, what="bridge offline")
    assert st(hub, TEMPERATURE).value == UNAVAILABLE and st(hub, OCCUPANCY).value == UNAVAILABLE
    with pytest.raises(CommandError, match="offline"):
        await hub.commands.async_call(LIGHT, "turn_on")
    await sim.publish("bridge/state", "online", retain=True)
    await wait_for(lambda: st(hub, TEMPERATURE).value == 23.4, what="bridge back (plain string)")
    await sim.publish("bridge/state", "offline", retain=True)
    await wait_for(lambda: st(hub, TEMPERATURE).value == UNAVAILABLE, what="bridge offline (plain string)")
    await sim.publish("bridge/state", {"state": "online"}, retain=True)
    await wait_for(lambda: st(hub, TEMPERATURE).value == 23.4, what="bridge back")

    # One device's own availability topic: only its entities go.
    await sim.publish("weather_sensor/availability", {"state": "offline"}, retain=True)
    await wait_for(lambda: st(hub, TEMPERATURE).value == UNAVAILABLE, what="device offline")
    assert st(hub, OCCUPANCY).value == "off" and st(hub, LIGHT).value == "off"
    await sim.publish("weather_sensor/availability", {"state": "online"}, retain=True)
    await wait_for(lambda: st(hub, TEMPERATURE).value == 23.4, what="device back")

    # Disabled in zigbee2mqtt: kept (with the household's names and areas), but unavailable; enabled: back.
    sim.devices[MOTION_IEEE]["disabled"] = True
    await sim.publish_devices()
    await wait_for(lambda: st(hub, OCCUPANCY).value == UNAVAILABLE, what="disabled")
    assert hub.entities.get(OCCUPANCY) is not None
    sim.devices[MOTION_IEEE]["disabled"] = False
    await sim.publish_devices()
    await wait_for(lambda: st(hub, OCCUPANCY).value == "off", what="enabled again")

    # It leaves the network: its entities and its device are removed.
    weather_device = _device_of(hub, TEMPERATURE).id
    await sim.leave(WEATHER_IEEE)
    await wait_for(lambda: hub.entities.get(TEMPERATURE) is None, what="leave")
    assert hub.states.get(TEMPERATURE) is None and hub.devices.get(weather_device) is None
    assert hub.entities.get("sensor.weather_sensor_battery") is None
    assert st(hub, OCCUPANCY).value == "off"  # the others stay


async def test_malformed_bridge_devices_lose_nothing(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    hub, sim = env.hub, env.sim
    before = {e.entity_id for e in hub.entities.all()}
    bad_entry = dict(sim.devices[BULB_IEEE], definition={"exposes": "nonsense"})
    payloads: list[tuple[bytes | str | list[Any], str]] = [
        (b"{not json", "not JSON"),
        ({"devices": []}, "must be a JSON list"),  # type: ignore[list-item]
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b"[" + b" " * (17 * 1024 * 1024) + b"]", "bytes, more than"),
        ([{"friendly_name": "ghost"}, {"ieee_address": WEATHER_IEEE}, bad_entry], "that device is kept"),
    ]
    with caplog.at_level(logging.WARNING, logger="qilu_hub.mqtt.zigbee2mqtt"):
        for payload, message in payloads:
            caplog.clear()
            await sim.publish("bridge/devices", payload)
            await wait_for(lambda m=message: any(m in r.getMessage() for r in caplog.records),  # type: ignore[misc]
                           what=f"logged {message!r}")
            assert {e.entity_id for e in hub.entities.all()} == before
            assert set(env.z2m.devices()) == {BULB_IEEE, WEATHER_IEEE, MOTION_IEEE}
    assert any("ieee_address must be 0x" in why for why in env.z2m.problems.values())
    # A list without the weather sensor but with a broken entry for it removes nothing; the hub still commands.
    await hub.commands.async_call(LIGHT, "turn_off")
    await wait_for(lambda: sim.commands, what="still commanded")
    await sim.publish_devices()  # the good list again: nothing changes
    await sim.publish("bulb", b"\xff not json")
    await sim.publish("bulb", {"state": "ON"})
    await wait_for(lambda: st(hub, LIGHT).value == "on", what="state after garbage")
    assert env.bridge.stats.state_errors >= 1
    assert {e.entity_id for e in hub.entities.all()} == before


async def test_seen_through_discovery_and_natively_is_one_device(broker: Mosquitto, plain: Any, hubs: list[Hub],
                                                                 tmp_path: Path) -> None:
    # zigbee2mqtt's HA discovery is on too, and the hub hears it first: it imports the sensor from discovery.
    publisher = await plain()
    for topic, config in DISCOVERY.items():
        await publisher.client.publish(topic, json.dumps(config), qos=1, retain=True)
    await publisher.client.publish("zigbee2mqtt/weather_sensor", json.dumps({"temperature": 23.4}), retain=True)
    hub = Hub(tmp_path / "hub", {"hub": {"name": "Home"}}, recorder=False)
    bridge = MqttBridge(settings_for(broker, "hub_a"))
    hub.add_component(bridge)
    await hub.async_start()
    hubs.append(hub)
    await wait_for(lambda: (s := hub.states.get(TEMPERATURE)) and s.value == 23.4, what="imported from discovery")
    assert TEMPERATURE in bridge.imported().values()

    # Then zigbee2mqtt's native topics: the device is claimed by IEEE address, read natively, and stays one device.
    sim = Zigbee2MqttSim("127.0.0.1", broker.port)
    await sim.start()
    try:
        await wait_for(lambda: bridge.imported() == {}, what="discovery entities dropped")
        await wait_for(lambda: (e := hub.entities.get(TEMPERATURE)) and e.unique_id.startswith(UNIQUE_PREFIX),
                       what="the same entity id, read natively")
        await wait_for(lambda: (s := hub.states.get(TEMPERATURE)) and s.value == 23.4, what="native state")
        probe_topic = "homeassistant/sensor/0x0017880104e45522/temperature/config"
        assert "natively" in bridge.skipped[probe_topic]
        # Configs that arrive again (a zigbee2mqtt restart republishes them) are skipped, not adopted.
        del bridge.skipped[probe_topic]
        await publisher.client.publish(probe_topic, json.dumps(DISCOVERY[probe_topic]), qos=1)
        await wait_for(lambda: "natively" in bridge.skipped.get(probe_topic, ""), what="skipped again")
        assert bridge.imported() == {}
        weather = [d for d in hub.devices.all() if ("zigbee", WEATHER_IEEE) in d.connections]
        assert len(weather) == 1
        ids = {e.entity_id for e in hub.entities.all()}
        assert not any(i.endswith("_2") for i in ids), ids
        assert all(e.unique_id.startswith(UNIQUE_PREFIX) for e in hub.entities.for_device(weather[0].id))
        await wait_for(lambda: (s := hub.states.get(LIGHT)) and s.value == "on", what="the bulb, natively")
    finally:
        await sim.stop()


async def test_native_reading_can_be_turned_off(broker: Mosquitto, hubs: list[Hub], tmp_path: Path) -> None:
    sim = Zigbee2MqttSim("127.0.0.1", broker.port)
    await sim.start()
    try:
        hub = Hub(tmp_path / "hub", {"hub": {"name": "Home"}}, recorder=False)
        bridge = MqttBridge(settings_for(broker, "hub_a", zigbee2mqtt=False))
        hub.add_component(bridge)
        await hub.async_start()
        hubs.append(hub)
        await wait_for(bridge.connected.is_set, what="connect")
        assert bridge.zigbee2mqtt is None and hub.entities.get(LIGHT) is None
    finally:
        await sim.stop()


async def test_changes_while_the_hub_was_away_and_bridge_events(broker: Mosquitto, tmp_path: Path) -> None:
    sim = Zigbee2MqttSim("127.0.0.1", broker.port)
    await sim.start()
    directory = tmp_path / "hub"

    async def start() -> tuple[Hub, MqttBridge]:
        hub = Hub(directory, {"hub": {"name": "Home"}}, recorder=False)
        bridge = MqttBridge(settings_for(broker, "hub_a"))
        hub.add_component(bridge)
        await hub.async_start()
        return hub, bridge

    try:
        hub, _ = await start()
        await wait_for(lambda: hub.states.get(OCCUPANCY) is not None, what="motion sensor adopted")
        await hub.async_stop()
        # The motion sensor is removed from zigbee2mqtt while the hub is stopped.
        del sim.devices[MOTION_IEEE]
        await sim.publish_devices()
        hub, bridge = await start()
        try:
            await wait_for(lambda: hub.entities.get(OCCUPANCY) is None, what="stale device removed on restart")
            assert not [d for d in hub.devices.all() if ("zigbee", MOTION_IEEE) in d.connections]
            assert hub.entities.get(LIGHT) is not None

            # A device that finished its interview is adopted from the event, before the list follows.
            new_ieee = "0x00158d0001a2b3c4"
            definition = copy.deepcopy(MOTION["definition"])
            await sim.publish("bridge/event", {"type": "device_interview", "data": {
                "friendly_name": new_ieee, "ieee_address": new_ieee, "status": "successful", "supported": True,
                "definition": definition}})
            await wait_for(lambda: hub.entities.get(f"binary_sensor.{new_ieee}_occupancy") is not None,
                           what="adopted from device_interview")
            # A device_renamed event moves the topics at once.
            await sim.publish("bridge/event", {"type": "device_renamed",
                                               "data": {"from": new_ieee, "to": "hall_motion",
                                                        "homeassistant_rename": False}})
            assert bridge.zigbee2mqtt is not None
            await wait_for(lambda: bridge.zigbee2mqtt.devices().get(new_ieee) == "hall_motion",  # type: ignore[union-attr]
                           what="renamed by event")
            # Retained, as zigbee2mqtt keeps states: the hub may subscribe to the new topic after this is sent.
            await sim.publish("hall_motion", {"occupancy": True}, retain=True)
            await wait_for(lambda: st(hub, f"binary_sensor.{new_ieee}_occupancy").value == "on", what="new topic")
        finally:
            await hub.async_stop()
    finally:
        await sim.stop()


async def test_broker_restart_marks_unavailable_and_restores(env: Env, broker: Mosquitto) -> None:
    hub = env.hub
    await wait_for(lambda: st(hub, TEMPERATURE).value == 23.4, what="temperature")
    broker.stop()
    await wait_for(lambda: st(hub, TEMPERATURE).value == UNAVAILABLE, what="unavailable without the broker")
    assert st(hub, LIGHT).value == UNAVAILABLE and st(hub, LIGHT).attributes["brightness"] == 216  # kept
    with pytest.raises(CommandError, match="not connected"):
        await hub.commands.async_call(LIGHT, "turn_off")
    broker.start()  # same store: the hub's session and zigbee2mqtt's retained messages survive
    await wait_for(lambda: st(hub, TEMPERATURE).value == 23.4 and st(hub, LIGHT).value == "on", timeout=20,
                   what="known states back with the connection")
    assert env.bridge.stats.sessions_resumed >= 1
