"""Broker restarts: acknowledged commands survive, and reconnecting does not flood the broker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiomqtt

from qilu_hub import Hub
from qilu_hub.virtual import DEFAULT_APPLIANCES
from tests.mqtt.conftest import settings_for, st, start_hub, wait_for
from tests.testbeds.mosquitto import Mosquitto

LIGHT = "light.living_room_ceiling_light"
PLUG = "switch.living_room_tv_plug"


async def test_broker_restart_keeps_acknowledged_commands(broker: Mosquitto, hubs: list[Hub],
                                                          tmp_path: Path) -> None:
    # A slow first retry gives the test a window in which the broker is up and the hub is not.
    settings = settings_for(broker, "hub_a", reconnect_min=1.5, reconnect_max=3.0)
    hub, bridge = await start_hub(tmp_path / "a", settings, DEFAULT_APPLIANCES)
    hubs.append(hub)
    await wait_for(lambda: len(bridge.exported()) == 6, what="export")
    await asyncio.sleep(0.3)
    published_before = bridge.stats.published

    broker.stop()
    await wait_for(lambda: not bridge.connected.is_set(), what="hub notices the broker is gone")
    # Changes while disconnected are kept as "dirty", only the latest per entity.
    for level in (10, 20, 30):
        hub.states.async_set("sensor.living_room_tv_plug_power", float(level))
    broker.start()

    # A plain client publishes commands at QoS 1 while the hub is still away; the broker acknowledges them.
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        watcher_task_messages: list[aiomqtt.Message] = []
        await client.subscribe("qilu/hub_a/#", qos=1)
        assert not bridge.connected.is_set(), "the hub reconnected too early for this test to mean anything"
        await client.publish("qilu/hub_a/light_living_room_ceiling_light/set",
                             json.dumps({"state": "ON", "brightness": 77}), qos=1)
        await client.publish("qilu/hub_a/switch_living_room_tv_plug/set", "ON", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                if not message.retain:  # live traffic only; retained copies came with the subscription
                    watcher_task_messages.append(message)

        collector = asyncio.create_task(collect())
        try:
            # Delivered from the hub's persistent session once it is back.
            await wait_for(lambda: st(hub, LIGHT).value == "on", what="queued light command")
            assert st(hub, LIGHT).attributes["brightness"] == 77
            await wait_for(lambda: st(hub, PLUG).value == "on", what="queued plug command")
            assert bridge.stats.connects == 2
            assert bridge.stats.sessions_resumed == 1  # Mosquitto kept the session across its restart
            await asyncio.sleep(1.0)
        finally:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)

    # No storm: the broker kept the session and retained messages, so no configs are re-sent;
    # only the status and the entities that changed (power, light, plug) are published.
    topics = [str(m.topic) for m in watcher_task_messages]
    assert not any(t.startswith("homeassistant/") for t in topics)
    state_topics = sorted({t for t in topics if t.endswith("/state")})
    assert state_topics == ["qilu/hub_a/light_living_room_ceiling_light/state",
                            "qilu/hub_a/sensor_living_room_tv_plug_power/state",
                            "qilu/hub_a/switch_living_room_tv_plug/state"]
    power = [json.loads(m.payload) for m in watcher_task_messages
             if str(m.topic) == "qilu/hub_a/sensor_living_room_tv_plug_power/state"]
    # Only the latest value per entity went out, not the history 10, 20 (then the plug's own reading).
    assert power and all(p["value"] not in (10.0, 20.0) for p in power)
    assert bridge.stats.published - published_before <= 1 + 4  # status + a few states, not 12 retained messages


async def test_fresh_broker_gets_everything_again(tmp_path: Path, hubs: list[Hub]) -> None:
    # Without persistence the restarted broker has lost the session and retained messages: re-announce all.
    broker = Mosquitto(tmp_path / "broker", tls=False, persistence=False)
    broker.start()
    try:
        hub, bridge = await start_hub(tmp_path / "a", settings_for(broker, "hub_a"), DEFAULT_APPLIANCES)
        hubs.append(hub)
        await wait_for(lambda: len(bridge.exported()) == 6, what="export")
        broker.restart()
        await wait_for(lambda: bridge.stats.connects == 2 and bridge.connected.is_set(), what="reconnect")
        assert bridge.stats.sessions_resumed == 0
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("homeassistant/+/hub_a/+/config")
            seen: set[str] = set()

            async def collect() -> None:
                async for message in client.messages:
                    seen.add(str(message.topic))

            collector = asyncio.create_task(collect())
            try:
                await wait_for(lambda: len(seen) == 6, what="configs retained again")
            finally:
                collector.cancel()
                await asyncio.gather(collector, return_exceptions=True)
    finally:
        broker.stop()


async def test_unreachable_broker_does_not_hurt_the_hub(tmp_path: Path, hubs: list[Hub]) -> None:
    from tests.testbeds.mosquitto import free_port

    hub, bridge = await start_hub(tmp_path / "a", settings_for_port(free_port()), DEFAULT_APPLIANCES)
    hubs.append(hub)
    await wait_for(lambda: bridge.stats.last_error is not None, what="connection refused")
    await hub.commands.async_call(LIGHT, "turn_on")
    assert st(hub, LIGHT).value == "on"


def settings_for_port(port: int) -> Any:
    from qilu_hub.mqtt import MqttSettings

    return MqttSettings(host="127.0.0.1", port=port, hub_id="hub_x", reconnect_min=0.1, reconnect_max=0.5)


async def test_imported_devices_unavailable_while_the_broker_is_away(broker: Mosquitto, hubs: list[Hub],
                                                                     tmp_path: Path) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.publish("homeassistant/switch/plug1/config", json.dumps({
            "name": "Plug", "command_topic": "plug1/set", "state_topic": "plug1/state", "unique_id": "plug1",
            "device": {"identifiers": ["plug1"], "name": "Garage"}}), qos=1, retain=True)
        await client.publish("plug1/state", "ON", qos=1, retain=True)
    hub, bridge = await start_hub(tmp_path / "a", settings_for(broker, "hub_a"))
    hubs.append(hub)
    await wait_for(lambda: (s := hub.states.get("switch.garage_plug")) and s.value == "on", what="plug")
    broker.stop()
    await wait_for(lambda: st(hub, "switch.garage_plug").value == "unavailable", what="unavailable")
    broker.start()
    await wait_for(lambda: st(hub, "switch.garage_plug").value == "on", what="restored")
    assert bridge.stats.sessions_resumed == 1
