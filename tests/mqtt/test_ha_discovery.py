"""The demo as Home Assistant takes it: every MQTT discovery config validated with Home Assistant 2024.3's own
schemas, and the states of the HA-compatible API checked with its own entity rules.

One demo (its simulated appliances on loopback, adopted through the driver manager, the virtual ones, the example
scenes) runs against a private Mosquitto for the whole module. A plain MQTT client collects the retained
configs; ``tests/mqtt/ha_discovery_check.py`` runs them through Home Assistant's code in the separate venv that
``scripts/ha-venv.sh`` makes (``scripts/test.sh`` runs it). hass-client reads the same entities over the
WebSocket API, and what it shows must agree with what Home Assistant names the MQTT entities.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import pytest_asyncio
from hass_client import HomeAssistantClient

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer
from qilu_hub.drivers.demo import DemoAppliances
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.mqtt import MqttBridge
from qilu_hub.presentation import BINARY_SENSOR_DEVICE_CLASSES, FEATURES, SENSOR_DEVICE_CLASSES
from qilu_hub.scenes.manager import from_config as scenes_from_config
from qilu_hub.setup import load_hub_config
from qilu_hub.virtual import VirtualAppliances
from tests.mqtt.conftest import wait_for
from tests.testbeds.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
HA_PYTHON = ROOT / ".cache" / "ha-venv" / "bin" / "python"
CHECK = Path(__file__).with_name("ha_discovery_check.py")
HUB_ID = "demo"
EXPECTED_DRIVERS = {"qoap": 3, "shelly": 2, "wled": 1, "bthome": 2, "xiaomi": 1}

pytestmark = [
    pytest.mark.skipif(not HA_PYTHON.exists(), reason="no Home Assistant venv: run `bash scripts/ha-venv.sh`"),
    pytest.mark.asyncio(loop_scope="module"),
]


def home_assistant_check(request: dict[str, Any]) -> dict[str, Any]:
    """Run the checker with Home Assistant's Python; its answer as JSON."""
    done = subprocess.run([str(HA_PYTHON), str(CHECK)], input=json.dumps(request), capture_output=True, text=True,
                          timeout=180, check=False)
    if done.returncode != 0:
        raise AssertionError(f"the Home Assistant checker failed:\n{done.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@dataclass
class Demo:
    hub: Hub
    bridge: MqttBridge
    broker: Mosquitto
    token: str
    configs: dict[str, dict[str, Any]]  # discovery topic -> config, as retained on the broker
    availability: dict[str, bytes]  # availability topic -> retained payload

    @property
    def ws_url(self) -> str:
        api = self.hub.components["api"]
        assert isinstance(api, ApiServer)
        return api.url.replace("http", "ws", 1) + "/api/websocket"


async def _retained(port: int, *filters: str, expect: int) -> dict[str, bytes]:
    """The retained messages on ``filters``: a fresh subscriber receives them at once, so collecting ends with the
    ``expect``-th, or when none has come for a second (fewer than expected: the assertions say which lack)."""
    found: dict[str, bytes] = {}
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for topic_filter in filters:
            await client.subscribe(topic_filter, qos=1)
        messages = aiter(client.messages)
        while len(found) < expect:
            try:
                message = await asyncio.wait_for(anext(messages), 1.0)
            except TimeoutError:
                break
            if message.payload:
                found[str(message.topic)] = bytes(message.payload)  # type: ignore[arg-type]
    return found


def _running(hub: Hub) -> dict[str, int]:
    manager = hub.components["drivers"]
    counts: dict[str, int] = {}
    for record in manager.status():  # type: ignore[attr-defined]
        if record["state"] == "running":
            counts[record["driver"]] = counts.get(record["driver"], 0) + 1
    return counts


def _demo_hub(directory: Path) -> Hub:
    """The demo's components, as ``build_hub(demo=True)`` assembles them, but adopting only this demo's own
    simulators (DemoAppliances without a discovery component): loopback mDNS is shared with every other demo
    or test on the machine, and a neighbour's appliances coming and going must not change what is checked."""
    config = load_hub_config(directory)
    hub = Hub(directory, config, recorder=False)
    demo_appliances = DemoAppliances(ble_interval=0.2)
    hub.add_component(demo_appliances.fleet_closer())
    hub.add_component(DriverManager(entry_points_group=None, retry_initial=0.1))
    hub.add_component(VirtualAppliances())
    hub.add_component(demo_appliances)
    hub.add_component(scenes_from_config(directory, config))
    hub.add_component(MqttBridge())
    hub.add_component(ApiServer("127.0.0.1", 0))
    return hub


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    base = tmp_path_factory.mktemp("ha_discovery")
    broker = Mosquitto(base / "broker")
    broker.start()
    directory = base / "demo"
    directory.mkdir()
    (directory / "configuration.yaml").write_text(
        f"hub: {{bind: 127.0.0.1, port: 0}}\n"
        f"mqtt: {{enabled: true, host: 127.0.0.1, port: {broker.port}, hub_id: {HUB_ID}}}\n")
    (directory / "configuration.yaml").chmod(0o600)
    scenes = directory / "scenes"  # the example scenes, as `qilu-hub demo` installs them
    scenes.mkdir()
    for example in (resources.files("qilu_hub.scene_files") / "examples").iterdir():
        if example.name.endswith(".yaml"):
            (scenes / example.name).write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    hub = _demo_hub(directory)
    await hub.async_start()
    try:
        bridge = hub.components["mqtt"]
        assert isinstance(bridge, MqttBridge)
        await wait_for(lambda: _running(hub) == EXPECTED_DRIVERS, timeout=60, what=f"{EXPECTED_DRIVERS} running")
        await wait_for(lambda: any(e.domain == "scene" for e in hub.entities.all()), timeout=20, what="scenes")

        def exportable() -> set[str]:
            with_state = set(hub.states.entity_ids())
            return {e.entity_id for e in hub.entities.all() if not e.disabled and e.entity_id in with_state}

        # A running driver has not necessarily written its entities' first states: under load the bridge could be
        # idle with the light, cover and fan not yet exported (seen once), and the configs below would lack them.
        await wait_for(lambda: {e.entity_id for e in hub.entities.all() if not e.disabled} <= exportable(),
                       timeout=60, what="a state for every enabled entity")

        await wait_for(lambda: bridge.idle and exportable() <= set(bridge.exported()), timeout=20,
                       what="every entity exported")
        count = len(bridge.exported())
        configs = await _retained(broker.port, f"homeassistant/+/{HUB_ID}/+/config", expect=count)
        availability = await _retained(broker.port, f"qilu/{HUB_ID}/+/availability", expect=count)
        _, token = hub.tokens.create("ha-check", Scopes(admin=True))
        yield Demo(hub, bridge, broker, token, {t: json.loads(p) for t, p in configs.items()}, availability)
    finally:
        await hub.async_stop()
        broker.stop()


def _tables() -> dict[str, Any]:
    return {"features": {domain: [enum, dict(members)] for domain, (enum, members) in FEATURES.items()},
            "device_classes": {"sensor": sorted(SENSOR_DEVICE_CLASSES),
                               "binary_sensor": sorted(BINARY_SENSOR_DEVICE_CLASSES)}}


async def test_every_demo_config_is_accepted_by_home_assistant(demo: Demo) -> None:
    request = {"prefix": "homeassistant", "configs": [[t, json.dumps(c)] for t, c in sorted(demo.configs.items())],
               "tables": _tables()}
    answer = home_assistant_check(request)
    assert answer["version"].startswith("2024.3.")
    refused = [f"{r['topic']}: {r['error']}" for r in answer["results"] if r["error"]]
    assert not refused, "Home Assistant would refuse:\n" + "\n".join(refused)
    assert answer["tables"] == []
    results = {r["topic"]: r["config"] for r in answer["results"]}
    components = {r["component"] for r in answer["results"]}
    assert {"light", "sensor", "binary_sensor", "switch", "climate", "cover", "fan", "scene"} <= components

    lights = [c for t, c in results.items() if t.startswith("homeassistant/light/")]
    assert len(lights) == 2 and all(c["color_mode"] and c["supported_color_modes"] for c in lights)
    energy = [c for c in results.values() if c.get("device_class") == "energy"]
    assert energy and all(c["state_class"] == "total_increasing" for c in energy)
    assert [t for t in demo.configs if t.startswith("homeassistant/scene/")]  # scenes as scenes, not sensors

    for topic, config in demo.configs.items():
        component = topic.split("/")[1]
        # The entity id Home Assistant makes: no domain twice, and the same as ours.
        assert not config["object_id"].startswith(f"{component}_"), topic
        assert f"{component}.{config['object_id']}" == config["qilu"]["entity_id"], topic
        # has_entity_name: the device's name once, in the device block; the entity's own part, or null.
        device = config.get("device")
        if device is not None and config["name"] is not None:
            assert not config["name"].casefold().startswith(device["name"].casefold()), topic
        # Per-entity availability, retained "online" while the appliance answers.
        own = [a["topic"] for a in config["availability"] if a["topic"] != f"qilu/{HUB_ID}/status"]
        assert config["availability_mode"] == "all" and len(own) == 1, topic
        assert demo.availability.get(own[0]) == b"online", own[0]

    devices = [c["device"] for c in demo.configs.values() if "device" in c]
    assert any("sw_version" in d for d in devices) and any("connections" in d for d in devices)
    assert all(d.get("manufacturer") and d.get("model") for d in devices)


async def test_api_shows_what_home_assistant_shows(demo: Demo) -> None:
    """hass-client's states carry the names, units and classes Home Assistant gives the MQTT entities, and pass
    Home Assistant's own rules for sensor units, state classes and light colour modes."""
    async with HomeAssistantClient(demo.ws_url, demo.token) as client:
        states = {s["entity_id"]: s for s in await client.get_states()}
    registered = {e.entity_id for e in demo.hub.entities.all()}
    for entity_id, state in states.items():
        if entity_id in registered:
            assert state["attributes"].get("friendly_name"), entity_id
    numeric = [s for e, s in states.items() if e in registered and e.startswith("sensor.")
               and s["state"].replace(".", "", 1).lstrip("-").isdigit()]
    assert len(numeric) >= 15
    for state in numeric:
        attributes = state["attributes"]
        assert attributes.get("unit_of_measurement") and attributes.get("device_class"), state["entity_id"]
        assert attributes.get("state_class") in ("measurement", "total_increasing"), state["entity_id"]
    energy = [s for s in states.values() if s["attributes"].get("device_class") == "energy"]
    assert energy and all(s["attributes"]["state_class"] == "total_increasing" for s in energy)

    answer = home_assistant_check({"states": {e: s["attributes"] for e, s in states.items() if e in registered}})
    assert answer["states"] == {}

    # The friendly name Home Assistant gives each MQTT entity (device name + entity name, or either alone) is the
    # one our API shows.
    for config in demo.configs.values():
        device_name = (config.get("device") or {}).get("name")
        name = config["name"]
        ha_name = name if device_name is None else device_name if name is None else f"{device_name} {name}"
        entity_id = config["qilu"]["entity_id"]
        assert states[entity_id]["attributes"]["friendly_name"] == ha_name, entity_id


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
