"""The open profile end to end: simulated appliances advertised over real mDNS, adopted with no appliance code."""

from __future__ import annotations

import aiohttp
import msgpack
import pytest

from qilu_hub.capabilities import CommandError
from qilu_hub.core import Hub
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.qoap import profile
from qilu_hub.drivers.qoap.driver import QoapDriver
from qilu_hub.drivers.qoap.simulator import QoapSimulator
from qilu_hub.sdk.testing import MdnsAdvertiser, resolve_advert, wait_for


async def adopt_sim(manager: DriverManager, sim: QoapSimulator) -> str:
    info = await resolve_advert(profile.MDNS_TYPE, sim.host, sim.port)
    [(driver, appliance)] = manager.identify(info)
    assert driver.manifest.name == "qoap" and appliance.key == sim.device_id
    return await manager.async_adopt("qoap", appliance)


def entity(hub: Hub, device_id: str, capability: str) -> str:
    return next(e.entity_id for e in hub.entities.for_device(device_id) if capability in e.capabilities)


async def test_washing_machine_adopted_runs_a_cycle(hub_with_drivers: tuple[Hub, DriverManager],
                                                    advertiser: MdnsAdvertiser) -> None:
    hub, manager = hub_with_drivers
    sim = QoapSimulator("washing_machine", advertiser=advertiser, tick=0.2)
    await sim.start()
    try:
        device_id = await adopt_sim(manager, sim)
        device = hub.devices.get(device_id)
        assert device is not None and device.manufacturer == "Qilu Appliances" and device.model == "QWM-90"
        await wait_for(lambda: len(hub.entities.for_device(device_id)) == 3, what="3 entities")
        cycle = entity(hub, device_id, "operational_state")
        power = entity(hub, device_id, "power")
        await wait_for(lambda: hub.states.get(cycle) is not None, what="initial state")
        assert hub.states.get(cycle).value == "stopped"  # type: ignore[union-attr]
        await hub.commands.async_call(cycle, "start", {"program": "quick"})
        assert hub.states.get(cycle).value == "running"  # type: ignore[union-attr]
        # The cycle progresses and the heater draws power: pushed over the msgpack WebSocket.
        await wait_for(lambda: hub.states.get(cycle).attributes["remaining_s"] < 900, what="cycle progress")  # type: ignore[union-attr]
        assert hub.states.get(power).value == 2000.0  # type: ignore[union-attr]
        with pytest.raises(CommandError) as err:
            await hub.commands.async_call(cycle, "start", {"program": "boil_everything"})
        assert err.value.code == "invalid_format"  # the appliance's own refusal reaches the caller
    finally:
        await sim.stop()


async def test_air_conditioner_and_restart_recovery(hub_with_drivers: tuple[Hub, DriverManager],
                                                    advertiser: MdnsAdvertiser) -> None:
    hub, manager = hub_with_drivers
    sim = QoapSimulator("air_conditioner", advertiser=advertiser, restart_delay=0.3)
    await sim.start()
    try:
        device_id = await adopt_sim(manager, sim)
        await wait_for(lambda: len(hub.entities.for_device(device_id)) == 3, what="entities")
        climate = entity(hub, device_id, "thermostat")
        power = entity(hub, device_id, "power")
        await hub.commands.async_call(climate, "set_hvac_mode", {"hvac_mode": "cool"})
        await hub.commands.async_call(climate, "set_temperature", {"temperature": 20})
        state = hub.states.get(climate)
        assert state is not None and state.value == "cool" and state.attributes["temperature"] == 20.0
        await wait_for(lambda: hub.states.get(power).value > 400, what="compressor power")  # type: ignore[union-attr]
        await sim.restart()
        rec = manager.get(sim.device_id)
        assert rec is not None
        await wait_for(lambda: rec.restarts >= 1 and rec.state == "running", what="reconnect after restart")
        assert hub.states.get(climate).value == "cool"  # type: ignore[union-attr]
    finally:
        await sim.stop()


async def test_http_msgpack_and_errors() -> None:
    sim = QoapSimulator("fridge")
    await sim.start()
    try:
        base = f"http://127.0.0.1:{sim.port}"
        async with aiohttp.ClientSession() as session:
            headers = {"Accept": profile.MSGPACK_CONTENT_TYPE}
            async with session.get(base + profile.DESCRIPTION_PATH, headers=headers) as resp:
                assert resp.content_type == profile.MSGPACK_CONTENT_TYPE
                assert profile.description_errors(msgpack.unpackb(await resp.read())) == []
            body = msgpack.packb({"entity": "super_cool", "command": "turn_on"})
            async with session.post(base + profile.COMMAND_PATH, data=body,
                                    headers={**headers, "Content-Type": profile.MSGPACK_CONTENT_TYPE}) as resp:
                assert resp.status == 200 and msgpack.unpackb(await resp.read())["state"]["state"] == "on"
            async with session.post(base + profile.COMMAND_PATH, json={"entity": "nope", "command": "x"}) as resp:
                assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
        assert sim.appliance.entities["power"].state == 160.0  # super cool draws more
    finally:
        await sim.stop()


def test_txt_and_description_validators() -> None:
    sim = QoapSimulator("fridge")
    assert profile.txt_errors(sim.txt()) == []
    assert profile.description_errors(sim.description()) == []
    assert "TXT key 'pv' is missing" in profile.txt_errors({"id": "abcd", "model": "m", "mf": "x", "caps": "on_off"})
    assert any("unknown capability" in e for e in profile.txt_errors({**sim.txt(), "caps": "teleport"}))
    bad = sim.description()
    bad["entities"].append(dict(bad["entities"][0]))
    assert any("repeated" in e for e in profile.description_errors(bad))
    assert profile.state_errors(["temperature"], "warm", {}) != []
    assert QoapDriver().identify(
        __import__("qilu_hub.discovery.models", fromlist=["MdnsInfo"]).MdnsInfo(
            profile.MDNS_TYPE, "x", "x.local.", ("127.0.0.1",), 1, {"id": "abcd"})) is None
