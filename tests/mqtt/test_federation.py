"""Two hubs on one broker see and control each other's devices, without loops."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from qilu_hub import CommandError, Hub
from qilu_hub.virtual import DEFAULT_APPLIANCES, VirtualAppliance, VirtualEntity
from tests.mqtt.conftest import settings_for, st, start_hub, wait_for
from tests.testbeds.mosquitto import Mosquitto

PORCH = (
    VirtualAppliance("VL-0100", "Porch Light", "Porch", "Virtual Light", (
        VirtualEntity("light", "Porch Light", ("on_off", "level"), "off", {"brightness": 0}),
    )),
    VirtualAppliance("VT-0101", "Hall Thermostat", "Hall", "Virtual Thermostat", (
        VirtualEntity("climate", "Hall Thermostat", ("thermostat",), "heat",
                      {"temperature": 20.0, "current_temperature": 19.0}),
    )),
)


async def _quiet(recorder: Any, seconds: float = 0.5) -> int:
    """Wait until no message arrived for ``seconds``; returns the count."""
    count = -1
    while count != len(recorder.messages):
        count = len(recorder.messages)
        await asyncio.sleep(seconds)
    return count


async def test_two_hubs_federate_through_one_broker(broker: Mosquitto, plain: Any, hubs: list[Hub],
                                                    tmp_path: Path) -> None:
    watcher = await plain("#")
    hub_a, bridge_a = await start_hub(tmp_path / "a", settings_for(broker, "hub_a"), DEFAULT_APPLIANCES[:2])
    hubs.append(hub_a)
    hub_b, bridge_b = await start_hub(tmp_path / "b", settings_for(broker, "hub_b"), PORCH)
    hubs.append(hub_b)

    # Each sees the other's devices, namespaced by hub id.
    await wait_for(lambda: hub_a.states.get("light.hub_b_porch_light"), what="A sees B's light")
    await wait_for(lambda: hub_b.states.get("light.hub_a_living_room_ceiling_light"), what="B sees A's light")
    await wait_for(lambda: hub_a.states.get("climate.hub_b_hall_thermostat")
                   and st(hub_a, "climate.hub_b_hall_thermostat").value == "heat", what="thermostat state")
    mirror = hub_a.entities.get("light.hub_b_porch_light")
    assert mirror is not None and mirror.capabilities == ("on_off", "level")
    mirror_device = hub_a.devices.get(mirror.device_id or "")
    assert mirror_device is not None and mirror_device.name == "Porch Light"
    assert st(hub_a, "climate.hub_b_hall_thermostat").attributes["temperature"] == 20.0
    # Nobody re-exports what it imported: hub_a announces only its own entities.
    await _quiet(watcher)
    a_configs = {str(m.topic) for m in watcher.messages if str(m.topic).startswith("homeassistant/")
                 and "/hub_a/" in str(m.topic)}
    assert len(a_configs) == 3  # ceiling light, TV plug relay and power
    assert not any("hub_b" in topic for topic in a_configs)
    assert set(bridge_a.exported()) == {"light.living_room_ceiling_light", "switch.living_room_tv_plug",
                                        "sensor.living_room_tv_plug_power"}

    # A command from hub A to B's device, through the ordinary command API of hub A.
    before = await _quiet(watcher)
    await hub_a.commands.async_call("light.hub_b_porch_light", "turn_on", {"brightness": 200})
    await wait_for(lambda: st(hub_b, "light.porch_light").value == "on", what="B's light on")
    local = st(hub_b, "light.porch_light")
    assert local.attributes["brightness"] == 200
    assert local.context is not None and local.context.origin == "mqtt:hub_a"  # who asked, kept in B
    mirrored = await wait_for(lambda: (s := hub_a.states.get("light.hub_b_porch_light")) and s.value == "on"
                              and s, what="A's mirror follows")
    assert mirrored.attributes["brightness"] == 200
    # The origin survives the round trip: A's mirror knows the change started at hub_a.
    assert mirrored.context is not None and mirrored.context.origin == "mqtt:hub_a"

    # No loop: the command, B's answer to A, and one state message; then silence.
    after = await _quiet(watcher, 0.7)
    extra = watcher.messages[before:after]
    assert sorted(str(m.topic) for m in extra) == ["qilu/hub_a/_reply", "qilu/hub_b/light_porch_light/call",
                                                   "qilu/hub_b/light_porch_light/state"]
    call = json.loads(next(m for m in extra if str(m.topic).endswith("/call")).payload)
    assert call["origin"] == "hub_a" and call["command"] == "turn_on"
    assert all(m.qos == 1 for m in extra if not str(m.topic).endswith("/state"))

    # A local change in B reaches A with B as origin.
    await hub_b.commands.async_call("climate.hall_thermostat", "set_temperature", {"temperature": 22.5})
    await wait_for(lambda: st(hub_a, "climate.hub_b_hall_thermostat").attributes["temperature"] == 22.5,
                   what="thermostat mirrored")
    thermostat_context = st(hub_a, "climate.hub_b_hall_thermostat").context
    assert thermostat_context is not None and thermostat_context.origin == "mqtt:hub_b"
    # And B controls A's plug.
    await hub_b.commands.async_call("switch.hub_a_living_room_tv_plug", "turn_on")
    await wait_for(lambda: st(hub_a, "switch.living_room_tv_plug").value == "on", what="A's plug on")

    # Validation happens in the commanding hub before anything is sent.
    sent = await _quiet(watcher)
    with pytest.raises(CommandError) as invalid:
        await hub_a.commands.async_call("light.hub_b_porch_light", "turn_on", {"brightness": 300})
    assert invalid.value.code == "out_of_range"
    await asyncio.sleep(0.2)
    assert len(watcher.messages) == sent

    # A refusal inside B reaches the caller in A with B's reason.
    porch = hub_b.entities.get("light.porch_light")
    assert porch is not None
    porch.disabled = True
    with pytest.raises(CommandError) as refused:
        await hub_a.commands.async_call("light.hub_b_porch_light", "turn_off")
    assert refused.value.code == "not_allowed" and "hub_b" in refused.value.message
    porch.disabled = False

    # A hub drops echoes of its own commands (a misbehaving relay replaying them).
    await watcher.client.publish("qilu/hub_b/light_porch_light/call",
                                 json.dumps({"command": "turn_off", "args": {}, "origin": "hub_b"}), qos=1)
    await wait_for(lambda: bridge_b.stats.echoes_ignored >= 1, what="echo dropped")
    assert st(hub_b, "light.porch_light").value == "on"

    # Hub B goes away: its devices become unavailable in A.
    hubs.remove(hub_b)
    await hub_b.async_stop()
    await wait_for(lambda: st(hub_a, "light.hub_b_porch_light").value == "unavailable",
                   what="B offline")
    with pytest.raises(CommandError) as offline:
        await hub_a.commands.async_call("light.hub_b_porch_light", "turn_off")
    assert offline.value.code == "unavailable"


async def test_federation_can_be_turned_off(broker: Mosquitto, hubs: list[Hub], tmp_path: Path) -> None:
    hub_b, bridge_b = await start_hub(tmp_path / "b", settings_for(broker, "hub_b"), PORCH)
    hubs.append(hub_b)
    await wait_for(lambda: len(bridge_b.exported()) == 2, what="B exported")
    hub_a, bridge_a = await start_hub(tmp_path / "a", settings_for(broker, "hub_a", federation=False),
                                      DEFAULT_APPLIANCES[:1])
    hubs.append(hub_a)
    hub_c, _ = await start_hub(tmp_path / "c", settings_for(broker, "hub_c"), ())
    hubs.append(hub_c)
    await wait_for(lambda: hub_c.states.get("light.hub_b_porch_light"), what="C federates")
    await wait_for(lambda: hub_c.states.get("light.hub_a_living_room_ceiling_light"), what="C sees A")
    assert bridge_a.imported() == {}
    assert not any(e.entity_id.startswith("light.hub_b") for e in hub_a.entities.all())
