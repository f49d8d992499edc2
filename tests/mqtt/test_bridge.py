"""The bridge against a real Mosquitto: export, commands, availability, TLS with passwords."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

from qilu_hub import Hub
from qilu_hub.appliances.availability import availability
from qilu_hub.context import Context
from qilu_hub.states import UNAVAILABLE
from qilu_hub.virtual import DEFAULT_APPLIANCES
from tests.mqtt.conftest import settings_for, st, start_hub, wait_for
from tests.testbeds.mosquitto import Mosquitto

LIGHT = "light.living_room_ceiling_light"


def _json(message: Any) -> Any:
    return json.loads(message.payload)


async def test_entities_published_in_home_assistant_format(broker: Mosquitto, plain: Any, hubs: list[Hub],
                                                           tmp_path: Path) -> None:
    watcher = await plain("homeassistant/#", "qilu/#")
    hub, _ = await start_hub(tmp_path / "a", settings_for(broker, "hub_a"), DEFAULT_APPLIANCES)
    hubs.append(hub)
    config_topic = "homeassistant/light/hub_a/light_living_room_ceiling_light/config"
    message = await wait_for(lambda: watcher.last(config_topic), what="light discovery config")
    config = _json(message)
    assert message.retain is False or message.retain is True  # live or retained, both are the config
    assert config["schema"] == "json"
    assert config["command_topic"] == "qilu/hub_a/light_living_room_ceiling_light/set"
    assert config["state_topic"] == "qilu/hub_a/light_living_room_ceiling_light/state"
    # Both the hub and the appliance must be reachable: an unreachable appliance is "offline" on its own topic.
    assert config["availability"] == [{"topic": "qilu/hub_a/status"},
                                      {"topic": "qilu/hub_a/light_living_room_ceiling_light/availability"}]
    assert config["availability_mode"] == "all"
    assert config["device"]["name"] == "Ceiling Light"
    assert config["device"]["manufacturer"] == "qilu-hub"
    assert config["device"]["suggested_area"] == "Living Room"
    assert config["supported_color_modes"] == ["color_temp"]
    assert config["qilu"]["capabilities"] == ["on_off", "level", "color_temperature"]
    # Every adopted entity is announced: light, plug relay + power, motion + battery, thermostat.
    await wait_for(lambda: len([m for m in watcher.messages if str(m.topic).endswith("/config")]) >= 6,
                   what="all six configs")
    sensor = _json(watcher.last("homeassistant/sensor/hub_a/sensor_kitchen_motion_battery/config"))
    assert sensor["device_class"] == "battery" and sensor["unit_of_measurement"] == "%"
    climate = _json(watcher.last("homeassistant/climate/hub_a/climate_bedroom_thermostat/config"))
    assert climate["temperature_command_topic"] == "qilu/hub_a/climate_bedroom_thermostat/set/temperature"
    assert watcher.last("qilu/hub_a/status").payload == b"online"
    state = _json(await wait_for(lambda: watcher.last("qilu/hub_a/light_living_room_ceiling_light/state")))
    assert state["state"] == "OFF" and state["hub"] == "hub_a"

    # Attributes JSON cannot express do not stall the publisher.
    hub.states.async_set("sensor.kitchen_motion_battery", 41.0, {"odd": {1, 2}, "when": Path("/x")})
    odd = await wait_for(lambda: [_json(m) for m in watcher.on("qilu/hub_a/sensor_kitchen_motion_battery/state")
                                  if _json(m)["value"] == 41.0], what="odd attributes")
    assert odd[-1]["attributes"]["when"] == "/x"

    # A state change in the hub reaches a plain subscriber.
    hub.states.async_set("sensor.kitchen_motion_battery", 42.0)
    doc = await wait_for(lambda: [_json(m) for m in watcher.on("qilu/hub_a/sensor_kitchen_motion_battery/state")
                                  if _json(m)["value"] == 42.0], what="battery update")
    assert doc[-1]["origin"] == "hub_a"


async def test_commands_from_a_plain_client_change_devices(broker: Mosquitto, plain: Any, hubs: list[Hub],
                                                          tmp_path: Path) -> None:
    hub, bridge = await start_hub(tmp_path / "a", settings_for(broker, "hub_a"), DEFAULT_APPLIANCES)
    hubs.append(hub)
    await wait_for(lambda: LIGHT in bridge.exported(), what="export")
    results = await plain("qilu/hub_a/+/result")
    client = results.client
    await client.publish("qilu/hub_a/light_living_room_ceiling_light/set",
                         json.dumps({"state": "ON", "brightness": 128, "color_temp": 370}), qos=1)
    state = await wait_for(lambda: (s := hub.states.get(LIGHT)) is not None and s.value == "on" and s, what="on")
    assert state.attributes["brightness"] == 128
    assert state.attributes["color_temp_kelvin"] == 2703  # Home Assistant's JSON lights send mireds
    assert state.context is not None and state.context.origin == "mqtt"

    await client.publish("qilu/hub_a/switch_living_room_tv_plug/set", "ON", qos=1)
    await wait_for(lambda: st(hub, "switch.living_room_tv_plug").value == "on", what="plug on")
    await client.publish("qilu/hub_a/climate_bedroom_thermostat/set/temperature", "23.5", qos=1)
    await wait_for(lambda: st(hub, "climate.bedroom_thermostat").attributes["temperature"] == 23.5,
                   what="thermostat target")

    # Bad input: a clear error on the result topic, nothing changes, the bridge keeps going.
    await client.publish("qilu/hub_a/climate_bedroom_thermostat/set/temperature", "99", qos=1)
    await client.publish("qilu/hub_a/light_living_room_ceiling_light/set", b"\xff\xfe", qos=1)
    await client.publish("qilu/hub_a/light_living_room_ceiling_light/set", '{"state":"ON","brightness":999}', qos=1)
    errors = await wait_for(lambda: len(results.messages) >= 3 and results.messages, what="three errors")
    codes = sorted(json.loads(m.payload)["code"] for m in errors)
    assert codes == ["invalid_format", "out_of_range", "out_of_range"]
    assert st(hub, "climate.bedroom_thermostat").attributes["temperature"] == 23.5
    assert st(hub, LIGHT).attributes["brightness"] == 128
    await client.publish("qilu/hub_a/light_living_room_ceiling_light/set", "OFF", qos=1)
    await wait_for(lambda: st(hub, LIGHT).value == "off", what="off after errors")
    assert bridge.stats.command_errors == 3


async def test_last_will_marks_the_hub_offline(broker: Mosquitto, plain: Any, hubs: list[Hub],
                                               tmp_path: Path) -> None:
    watcher = await plain("qilu/hub_a/status")
    hub, bridge = await start_hub(tmp_path / "a", settings_for(broker, "hub_a"), DEFAULT_APPLIANCES)
    hubs.append(hub)
    await wait_for(lambda: watcher.last("qilu/hub_a/status") is not None
                   and watcher.last("qilu/hub_a/status").payload == b"online", what="online")
    # Cut the TCP connection without an MQTT DISCONNECT, as a crash or power loss would.
    assert bridge._client is not None
    sock = bridge._client._client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)
    await wait_for(lambda: watcher.last("qilu/hub_a/status").payload == b"offline", what="will message")
    await wait_for(lambda: watcher.last("qilu/hub_a/status").payload == b"online", what="back online")
    assert bridge.stats.connects == 2


async def test_tls_with_password(broker: Mosquitto, hubs: list[Hub], tmp_path: Path) -> None:
    assert broker.tls_port is not None
    good = settings_for(broker, "hub_tls", port=broker.tls_port, tls=True, ca_file=str(broker.certs["ca"]),
                        username=broker.username, password=broker.password)
    hub, bridge = await start_hub(tmp_path / "a", good, DEFAULT_APPLIANCES)
    hubs.append(hub)
    await wait_for(bridge.connected.is_set, what="TLS connection")
    await wait_for(lambda: LIGHT in bridge.exported(), what="export over TLS")

    wrong = settings_for(broker, "hub_bad", port=broker.tls_port, tls=True, ca_file=str(broker.certs["ca"]),
                         username=broker.username, password="wrong")
    bad_hub, bad_bridge = await start_hub(tmp_path / "b", wrong, DEFAULT_APPLIANCES)
    hubs.append(bad_hub)
    await wait_for(lambda: bad_bridge.stats.last_error is not None, what="refusal")
    assert not bad_bridge.connected.is_set()
    error = (bad_bridge.stats.last_error or "").lower()
    assert "authori" in error or "password" in error, error
    # The hub with a refused bridge still works locally.
    await bad_hub.commands.async_call(LIGHT, "turn_on")
    assert st(bad_hub, LIGHT).value == "on"

    missing_ca = settings_for(broker, "hub_noca", port=broker.tls_port, tls=True, ca_file=str(tmp_path / "nope.pem"))
    ca_hub, ca_bridge = await start_hub(tmp_path / "d", missing_ca, DEFAULT_APPLIANCES)
    hubs.append(ca_hub)
    await wait_for(lambda: ca_bridge.stats.last_error is not None, what="missing CA file reported")
    assert "TLS setup failed" in (ca_bridge.stats.last_error or "")

    untrusted = settings_for(broker, "hub_untrusted", port=broker.tls_port, tls=True,
                             username=broker.username, password=broker.password)
    other_hub, other_bridge = await start_hub(tmp_path / "c", untrusted, DEFAULT_APPLIANCES)
    hubs.append(other_hub)
    await wait_for(lambda: other_bridge.stats.last_error is not None, what="certificate refusal")
    assert not other_bridge.connected.is_set()


async def test_removed_entity_is_withdrawn_from_home_assistant(broker: Mosquitto, plain: Any, hubs: list[Hub],
                                                               tmp_path: Path) -> None:
    hub, bridge = await start_hub(tmp_path / "a", settings_for(broker, "hub_a"), DEFAULT_APPLIANCES)
    hubs.append(hub)
    await wait_for(lambda: len(bridge.exported()) == 6, what="export")
    watcher = await plain("homeassistant/sensor/hub_a/#")
    topic = "homeassistant/sensor/hub_a/sensor_living_room_tv_plug_power/config"
    await wait_for(lambda: watcher.last(topic) is not None, what="retained config")
    hub.entities.async_remove("sensor.living_room_tv_plug_power")
    # An empty retained payload deletes the entity in Home Assistant and clears the broker's copy.
    await wait_for(lambda: (m := watcher.last(topic)) is not None and m.payload == b"", what="empty config")
    assert "sensor.living_room_tv_plug_power" not in bridge.exported()
    late = await plain("homeassistant/sensor/hub_a/#")
    await asyncio.sleep(0.3)
    assert late.on(topic) == []


async def test_an_unreachable_appliance_is_offline_not_unavailable(broker: Mosquitto, plain: Any, hubs: list[Hub],
                                                                   tmp_path: Path) -> None:
    """Its own availability topic says offline; the state topic keeps the last real reading, since Home Assistant's
    numeric sensors raise errors on a state "unavailable"."""
    hub, bridge = await start_hub(tmp_path / "a", settings_for(broker, "hub_a"), DEFAULT_APPLIANCES)
    hubs.append(hub)
    battery = "sensor.kitchen_motion_battery"
    await wait_for(lambda: battery in bridge.exported() and bridge.idle, what="export")
    watcher = await plain("qilu/hub_a/sensor_kitchen_motion_battery/#")
    availability_topic = "qilu/hub_a/sensor_kitchen_motion_battery/availability"
    state_topic = "qilu/hub_a/sensor_kitchen_motion_battery/state"
    await wait_for(lambda: (m := watcher.last(availability_topic)) is not None and m.payload == b"online",
                   what="retained online")
    availability(hub).mark_unavailable([battery], Context("test"))
    await wait_for(lambda: watcher.last(availability_topic).payload == b"offline", what="offline")  # type: ignore[union-attr]
    availability(hub).mark_available([battery], Context("test"))
    await wait_for(lambda: watcher.last(availability_topic).payload == b"online", what="online again")  # type: ignore[union-attr]
    # One connection delivers in order: a state "unavailable" published while offline would have come before.
    assert all(_json(m)["value"] != UNAVAILABLE and _json(m)["state"] != UNAVAILABLE for m in watcher.on(state_topic))
    assert _json(watcher.last(state_topic))["value"] == 93.0


async def test_tls_with_client_certificate(broker: Mosquitto, hubs: list[Hub], tmp_path: Path) -> None:
    assert broker.mtls_port is not None
    with_cert = settings_for(broker, "hub_cert", port=broker.mtls_port, tls=True, ca_file=str(broker.certs["ca"]),
                             client_cert=str(broker.certs["client_cert"]), client_key=str(broker.certs["client_key"]))
    hub, bridge = await start_hub(tmp_path / "a", with_cert, DEFAULT_APPLIANCES)
    hubs.append(hub)
    await wait_for(lambda: LIGHT in bridge.exported(), what="export with a client certificate")

    without = settings_for(broker, "hub_nocert", port=broker.mtls_port, tls=True, ca_file=str(broker.certs["ca"]))
    other, other_bridge = await start_hub(tmp_path / "b", without, DEFAULT_APPLIANCES)
    hubs.append(other)
    # TLS 1.3 refuses the missing certificate after the handshake, so the client only learns it when
    # no CONNACK comes: the bridge's 10 s connect timeout.
    await wait_for(lambda: other_bridge.stats.last_error is not None, timeout=30, what="refused without a certificate")
    assert not other_bridge.connected.is_set()
