"""A zigbee2mqtt-shaped simulator: zigbee2mqtt's native topics on a real broker, for three devices.

It publishes what zigbee2mqtt publishes with its Home Assistant discovery off (the default), from the
shapes documented at https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html:

* ``<base>/bridge/state`` ``{"state": "online"}`` (retained), ``<base>/bridge/devices`` (retained list),
  ``<base>/bridge/event`` (``device_leave`` with ``ieee_address`` and ``friendly_name``);
* ``<base>/<friendly_name>`` the device's state JSON (retained), and ``<base>/<friendly_name>/availability``;
* it obeys ``<base>/<friendly_name>/set`` JSON (``state`` ON/OFF/TOGGLE, ``brightness``, ``color_temp``) and
  answers with the new state, as the real bridge reports a light's state after a command.

The device entries below are transcribed (fields we read, trimmed of endpoints/options) from zigbee2mqtt's own
test of ``bridge/devices``: Koenkk/zigbee2mqtt test/extensions/bridge.test.ts, "Should publish devices on
startup", commit 03847732cce9233d832d39b5ff05e586a5c7450c — the IKEA TRADFRI bulb LED1545G12 (``bulb``,
0x000b57fffec6a5b2) and the Aqara WSDCGQ11LM temperature/humidity/pressure sensor (``weather_sensor``,
0x0017880104e45522). The motion sensor (Aqara RTCGQ11LM, ``occupancy_sensor``, 0x0017880104e45523 in the same
test's configuration) uses the exposes of zigbee-herdsman-converters' ``e.occupancy()`` (binary, access 1,
value_on true, value_off false), ``e.illuminance()`` (numeric, lx) and ``e.battery()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from typing import Any

import aiomqtt

BULB_IEEE = "0x000b57fffec6a5b2"
WEATHER_IEEE = "0x0017880104e45522"
MOTION_IEEE = "0x0017880104e45523"

_LINKQUALITY = {"access": 1, "category": "diagnostic", "description": "Link quality (signal strength)",
                "label": "Linkquality", "name": "linkquality", "property": "linkquality", "type": "numeric",
                "unit": "lqi", "value_max": 255, "value_min": 0}
_BATTERY = {"access": 1, "category": "diagnostic",
            "description": "Remaining battery in %, can take up to 24 hours before reported", "label": "Battery",
            "name": "battery", "property": "battery", "type": "numeric", "unit": "%", "value_max": 100,
            "value_min": 0}
_VOLTAGE = {"access": 1, "category": "diagnostic", "description": "Voltage of the battery in millivolts",
            "label": "Voltage", "name": "voltage", "property": "voltage", "type": "numeric", "unit": "mV"}


def _numeric(prop: str, label: str, unit: str, description: str) -> dict[str, Any]:
    return {"access": 1, "description": description, "label": label, "name": prop, "property": prop,
            "type": "numeric", "unit": unit}


BULB: dict[str, Any] = {
    "definition": {
        "description": "TRADFRI bulb E26/E27, white spectrum, globe, opal, 980 lm",
        "exposes": [
            {"features": [
                {"access": 7, "description": "On/off state of this light", "label": "State", "name": "state",
                 "property": "state", "type": "binary", "value_off": "OFF", "value_on": "ON",
                 "value_toggle": "TOGGLE"},
                {"access": 7, "description": "Brightness of this light", "label": "Brightness",
                 "name": "brightness", "property": "brightness", "type": "numeric", "value_max": 254,
                 "value_min": 0},
                {"access": 7, "description": "Color temperature of this light", "label": "Color temp",
                 "name": "color_temp", "property": "color_temp", "type": "numeric", "unit": "mired",
                 "value_max": 454, "value_min": 250},
            ], "type": "light"},
            {"access": 2, "label": "Effect", "name": "effect", "property": "effect", "type": "enum",
             "values": ["blink", "breathe", "okay", "channel_change", "finish_effect", "stop_effect"]},
            {"access": 7, "category": "config", "label": "Power-on behavior", "name": "power_on_behavior",
             "property": "power_on_behavior", "type": "enum", "values": ["off", "on", "toggle", "previous"]},
            _LINKQUALITY,
        ],
        "model": "LED1545G12",
        "supports_ota": True,
        "vendor": "IKEA",
    },
    "disabled": False,
    "friendly_name": "bulb",
    "ieee_address": BULB_IEEE,
    "interview_completed": True,
    "interviewing": False,
    "model_id": "TRADFRI bulb E27 WS opal 980lm",
    "network_address": 40369,
    "power_source": "Mains (single phase)",
    "supported": True,
    "type": "Router",
}

WEATHER: dict[str, Any] = {
    "definition": {
        "description": "Temperature and humidity sensor",
        "exposes": [
            _BATTERY,
            _numeric("temperature", "Temperature", "°C", "Measured temperature value"),
            _numeric("humidity", "Humidity", "%", "Measured relative humidity"),
            _numeric("pressure", "Pressure", "hPa", "The measured atmospheric pressure"),
            _VOLTAGE,
            _LINKQUALITY,
        ],
        "model": "WSDCGQ11LM",
        "supports_ota": False,
        "vendor": "Aqara",
    },
    "disabled": False,
    "friendly_name": "weather_sensor",
    "ieee_address": WEATHER_IEEE,
    "interview_completed": True,
    "interviewing": False,
    "model_id": "lumi.weather",
    "network_address": 6539,
    "power_source": "Battery",
    "supported": True,
    "type": "EndDevice",
}

MOTION: dict[str, Any] = {
    "definition": {
        "description": "Motion sensor",
        "exposes": [
            _BATTERY,
            {"access": 1, "description": "Indicates whether the device detected occupancy", "label": "Occupancy",
             "name": "occupancy", "property": "occupancy", "type": "binary", "value_off": False,
             "value_on": True},
            _numeric("illuminance", "Illuminance", "lx", "Measured illuminance"),
            _VOLTAGE,
            _LINKQUALITY,
        ],
        "model": "RTCGQ11LM",
        "supports_ota": False,
        "vendor": "Aqara",
    },
    "disabled": False,
    "friendly_name": "occupancy_sensor",
    "ieee_address": MOTION_IEEE,
    "interview_completed": True,
    "interviewing": False,
    "model_id": "lumi.sensor_motion.aq2",
    "network_address": 6540,
    "power_source": "Battery",
    "supported": True,
    "type": "EndDevice",
}

COORDINATOR: dict[str, Any] = {"disabled": False, "friendly_name": "Coordinator", "ieee_address": "0x00124b00120144ae",
                               "interview_completed": False, "interviewing": False, "network_address": 0,
                               "supported": True, "type": "Coordinator"}

# First states: the LED1545G12 example of zigbee2mqtt's MQTT topics page, and readings of the sensors.
STATES: dict[str, dict[str, Any]] = {
    BULB_IEEE: {"state": "ON", "brightness": 215, "color_temp": 325, "linkquality": 92},
    WEATHER_IEEE: {"battery": 97, "temperature": 23.4, "humidity": 41.5, "pressure": 1012, "voltage": 3005,
                   "linkquality": 60},
    MOTION_IEEE: {"battery": 88, "occupancy": False, "illuminance": 120, "voltage": 2995, "linkquality": 70},
}


class Zigbee2MqttSim:
    """Three zigbee2mqtt devices behind one base topic, on a real broker."""

    def __init__(self, host: str, port: int, base: str = "zigbee2mqtt") -> None:
        self.host, self.port, self.base = host, port, base
        self.devices: dict[str, dict[str, Any]] = {d["ieee_address"]: copy.deepcopy(d) for d in (BULB, WEATHER,
                                                                                                   MOTION)}
        self.states: dict[str, dict[str, Any]] = copy.deepcopy(STATES)
        self.commands: list[tuple[str, dict[str, Any]]] = []  # (topic, body) of every /set received
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def client(self) -> aiomqtt.Client:
        assert self._client is not None, "start() first"
        return self._client

    async def start(self) -> None:
        self._client = aiomqtt.Client(self.host, self.port, identifier="zigbee2mqtt-sim")
        await self._client.__aenter__()
        await self._client.subscribe(f"{self.base}/#", qos=1)
        self._task = asyncio.create_task(self._serve())
        await self.publish("bridge/state", {"state": "online"}, retain=True)
        await self.publish_devices()
        for ieee in self.devices:
            await self.publish_state(ieee)
            await self.publish(f"{self.name(ieee)}/availability", {"state": "online"}, retain=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    def name(self, ieee: str) -> str:
        return str(self.devices[ieee]["friendly_name"])

    async def publish(self, rest: str, body: Any, retain: bool = False) -> None:
        payload = body if isinstance(body, bytes | str) else json.dumps(body)
        await self.client.publish(f"{self.base}/{rest}", payload, qos=1, retain=retain)

    async def publish_devices(self) -> None:
        await self.publish("bridge/devices", [COORDINATOR, *self.devices.values()], retain=True)

    async def publish_state(self, ieee: str) -> None:
        await self.publish(self.name(ieee), self.states[ieee], retain=True)

    async def rename(self, ieee: str, new_name: str) -> None:
        """As zigbee2mqtt renames: the old retained state is cleared and the device list republished."""
        old = self.name(ieee)
        await self.publish(old, b"", retain=True)
        await self.publish(f"{old}/availability", b"", retain=True)
        self.devices[ieee]["friendly_name"] = new_name
        await self.publish_devices()
        await self.publish_state(ieee)

    async def leave(self, ieee: str) -> None:
        """The device leaves the network: an event, then the shorter list."""
        name = self.name(ieee)
        del self.devices[ieee]
        await self.publish("bridge/event", {"type": "device_leave",
                                            "data": {"ieee_address": ieee, "friendly_name": name}})
        await self.publish_devices()

    async def _serve(self) -> None:
        async for message in self.client.messages:
            topic = str(message.topic)
            if not topic.endswith("/set"):
                continue
            name = topic[len(self.base) + 1 : -len("/set")]
            ieee = next((i for i, d in self.devices.items() if d["friendly_name"] == name), None)
            try:
                body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            except ValueError:
                continue
            self.commands.append((topic, copy.deepcopy(body)))
            if ieee is None or not isinstance(body, dict):
                continue
            state = self.states[ieee]
            if body.get("state") == "TOGGLE":
                body["state"] = "OFF" if state.get("state") == "ON" else "ON"
            state.update({k: v for k, v in body.items() if k in ("state", "brightness", "color_temp")})
            await self.publish_state(ieee)
