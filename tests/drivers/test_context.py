"""DeviceContext: a connection reaches its own appliance's entities, device, bind key, tasks and folder, and no
further (it used to get the whole Hub)."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from qilu_hub.appliances.bind_keys import BindKey, BindKeys
from qilu_hub.core import Hub
from qilu_hub.sdk import DeviceContext

KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    hub = Hub(tmp_path, {}, recorder=False)
    yield hub
    hub.storage.close()


def context_for(hub: Hub, key: str) -> DeviceContext:
    device = hub.devices.async_get_or_create(source="acme", name=f"Plug {key}", identifiers=[("acme", key)])
    return DeviceContext(hub, "acme", device.id, key)


def test_entities_and_states_are_the_appliances_own(hub: Hub) -> None:
    mine, other = context_for(hub, "k1"), context_for(hub, "k2")
    relay = mine.entity("acme:k1:relay", ("on_off",), "Relay")
    assert relay.device_id == mine.device_id
    assert mine.entity("acme:k1:relay", ("on_off",), "Relay").entity_id == relay.entity_id  # found again
    assert mine.state_value(relay.entity_id) is None
    mine.set_state(relay.entity_id, "on", {"reason": "test"})
    state = hub.states.get(relay.entity_id)
    assert state is not None and state.value == "on" and state.context.origin == "driver.acme"
    assert mine.state_value(relay.entity_id) == "on"
    theirs = other.entity("acme:k2:relay", ("on_off",), "Relay")
    with pytest.raises(KeyError):
        mine.set_state(theirs.entity_id, "off")  # another appliance's entity
    with pytest.raises(KeyError):
        mine.state_value(theirs.entity_id)
    assert hub.states.get(theirs.entity_id) is None


def test_update_device_adds_what_the_connection_learnt(hub: Hub) -> None:
    ctx = context_for(hub, "k1")
    ctx.update_device(name="Plug", identifiers=[("acme", "k1"), ("serial", "SN-9")], sw_version="2.1")
    device = hub.devices.get(ctx.device_id)
    assert device is not None and ("serial", "SN-9") in device.identifiers and device.sw_version == "2.1"
    assert len(hub.devices) == 1  # merged into the appliance's device, not a new one


def test_bind_key_is_this_appliances(hub: Hub) -> None:
    BindKeys(hub.storage).set("acme", "k1", BindKey(KEY))
    assert context_for(hub, "k1").bind_key() == BindKey(KEY)
    assert context_for(hub, "k2").bind_key() is None


def test_data_dir_is_private_and_per_driver(hub: Hub) -> None:
    path = context_for(hub, "k1").data_dir()
    assert path.is_dir() and path.name == "acme" and path.is_relative_to(hub.config_dir)
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


async def test_spawned_tasks_are_cancelled_together(hub: Hub) -> None:
    ctx = context_for(hub, "k1")
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = ctx.spawn(forever(), "reader")
    done = ctx.spawn(asyncio.sleep(0), "short")
    await started.wait()
    await done
    await ctx.async_cancel_tasks()
    assert task.cancelled()
