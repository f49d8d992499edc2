"""Fixtures for MQTT tests: a private Mosquitto per test, hubs wired to it, a plain aiomqtt client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from qilu_hub import Hub, State
from qilu_hub.mqtt import MqttBridge, MqttSettings
from qilu_hub.virtual import VirtualAppliance, VirtualAppliances
from tests.testbeds.mosquitto import Mosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    instance = Mosquitto(tmp_path / "broker")
    instance.start()
    yield instance
    instance.stop()


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; the timeout only bounds a failing test."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def st(hub: Hub, entity_id: str) -> State:
    """The entity's state, which the test expects to exist."""
    state = hub.states.get(entity_id)
    assert state is not None, f"{entity_id} has no state"
    return state


def settings_for(broker: Mosquitto, hub_id: str, **overrides: Any) -> MqttSettings:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": broker.port, "hub_id": hub_id,
                              "reconnect_min": 0.2, "reconnect_max": 2.0}
    values.update(overrides)
    return MqttSettings(**values)


async def start_hub(directory: Path, settings: MqttSettings,
                    appliances: tuple[VirtualAppliance, ...] | None = None) -> tuple[Hub, MqttBridge]:
    hub = Hub(directory, {"hub": {"name": settings.hub_id}}, recorder=False)
    if appliances is not None:
        hub.add_component(VirtualAppliances(appliances, animate=False))
    bridge = MqttBridge(settings)
    hub.add_component(bridge)
    await hub.async_start()
    return hub, bridge


@pytest.fixture
async def hubs() -> AsyncIterator[list[Hub]]:
    """Hubs a test started; stopped at the end even when the test fails."""
    started: list[Hub] = []
    yield started
    for hub in started:
        await hub.async_stop()


class Recorder:
    """A plain aiomqtt client that records every message it receives."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[aiomqtt.Message] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.client.messages:
            self.messages.append(message)

    def on(self, topic: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if str(m.topic) == topic]

    def last(self, topic: str) -> aiomqtt.Message | None:
        found = self.on(topic)
        return found[-1] if found else None

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def plain(broker: Mosquitto) -> AsyncIterator[Callable[..., Any]]:
    """Factory of plain clients (not our code) connected to the broker's plain listener."""
    stack: list[tuple[aiomqtt.Client, Recorder]] = []

    async def connect(*subscriptions: str, **kwargs: Any) -> Recorder:
        client = aiomqtt.Client("127.0.0.1", broker.port, **kwargs)
        await client.__aenter__()
        recorder = Recorder(client)
        for topic in subscriptions:
            await client.subscribe(topic, qos=1)
        stack.append((client, recorder))
        return recorder

    yield connect
    for client, recorder in reversed(stack):
        await recorder.close()
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)
