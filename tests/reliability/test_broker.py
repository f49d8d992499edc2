"""The MQTT broker is killed (SIGKILL, nothing saved) again and again: the bridge comes back every time."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt

from qilu_hub.virtual import DEFAULT_APPLIANCES
from tests.mqtt.conftest import settings_for, st, start_hub, wait_for
from tests.testbeds.mosquitto import Mosquitto

LIGHT = "light.living_room_ceiling_light"


async def _retained_light_state(port: int) -> dict[str, object]:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe("qilu/hub_k/light_living_room_ceiling_light/state")
        async with asyncio.timeout(10):
            async for message in client.messages:
                return json.loads(message.payload)  # type: ignore[arg-type]
    raise AssertionError("no retained state")


async def test_broker_killed_repeatedly_bridge_recovers_each_time(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker", tls=False, persistence=False)
    broker.start()
    settings = settings_for(broker, "hub_k", reconnect_min=0.1, reconnect_max=0.5)
    hub, bridge = await start_hub(tmp_path / "hub", settings, DEFAULT_APPLIANCES)
    try:
        await wait_for(lambda: len(bridge.exported()) == 6, what="export")
        for round_ in range(3):
            assert broker.process is not None
            broker.process.kill()  # a crash: no persistence, every retained message is gone
            broker.process.wait()
            broker.process = None
            await wait_for(lambda: not bridge.connected.is_set(), what=f"outage noticed ({round_})")
            await hub.commands.async_call(LIGHT, "turn_on", {"brightness": 10 + round_})  # hub works offline
            broker.start()
            await wait_for(bridge.connected.is_set, timeout=15, what=f"reconnect ({round_})")
            state = await _retained_light_state(broker.port)  # re-announced, with the change made offline
            assert state["state"] == "ON" and state["brightness"] == 10 + round_, state
            async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                await client.publish("qilu/hub_k/light_living_room_ceiling_light/set", '{"state": "OFF"}', qos=1)
            await wait_for(lambda: st(hub, LIGHT).value == "off", what=f"command after reconnect ({round_})")
        assert bridge.stats.connects == 4
    finally:
        await hub.async_stop()
        broker.stop()
