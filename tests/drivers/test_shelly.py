"""Shelly: the real aioshelly client against the simulator, and the driver end to end over real mDNS."""

from __future__ import annotations

import asyncio

import aiohttp
from aioshelly.common import ConnectionOptions, get_info
from aioshelly.exceptions import RpcCallError
from aioshelly.rpc_device import RpcDevice, RpcUpdateType

from qilu_hub.core import Hub
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.shelly.simulator import MDNS_TYPE, ShellySimulator
from qilu_hub.sdk.testing import MdnsAdvertiser, resolve_advert, wait_for


async def test_aioshelly_accepts_the_simulator() -> None:
    sim = ShellySimulator("plus1pm", load_watts=100.0)
    await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            info = await get_info(session, "127.0.0.1", port=sim.port)
            assert info["gen"] == 2 and info["mac"] == sim.mac
            device = await RpcDevice.create(session, None, ConnectionOptions("127.0.0.1", port=sim.port))
            updates: list[RpcUpdateType] = []
            device.subscribe_updates(lambda _dev, kind: updates.append(kind))
            await device.initialize()
            assert device.initialized and device.firmware_supported and device.gen == 2
            assert device.status["switch:0"]["output"] is False
            await device.switch_set(0, True)
            await wait_for(lambda: device.status["switch:0"]["output"] is True, what="NotifyStatus")
            assert 90 <= device.status["switch:0"]["apower"] <= 110  # the lamp draws power once on
            assert RpcUpdateType.STATUS in updates
            try:
                await device.call_rpc("Switch.Set", {"id": 7, "on": True})
                raise AssertionError("expected an RPC error")
            except RpcCallError as err:
                assert err.code == -105
            await device.shutdown()
    finally:
        await sim.stop()


async def test_aioshelly_drives_a_cover() -> None:
    sim = ShellySimulator("plus2pm", travel_s=1.0)
    await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            device = await RpcDevice.create(session, None, ConnectionOptions("127.0.0.1", port=sim.port))
            device.subscribe_updates(lambda *_: None)
            await device.initialize()
            await device.cover_set_position(0, pos=90)
            await wait_for(lambda: device.status["cover:0"]["current_pos"] == 90, what="cover travel")
            await device.cover_close(0)
            await wait_for(lambda: device.status["cover:0"]["state"] == "closed", what="closed")
            await device.shutdown()
        # HTTP RPC, as the Shelly documentation's curl examples use it.
        async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{sim.port}/rpc/Cover.GetStatus?id=0"
        ) as resp:
            assert (await resp.json())["current_pos"] == 0
    finally:
        await sim.stop()


async def test_driver_adopts_and_controls(hub_with_drivers: tuple[Hub, DriverManager],
                                          advertiser: MdnsAdvertiser) -> None:
    hub, manager = hub_with_drivers
    sim = ShellySimulator("plus1pm", advertiser=advertiser, serial=7, load_watts=60.0)
    await sim.start()
    try:
        info = await resolve_advert(MDNS_TYPE, "127.0.0.1", sim.port)
        [(driver, appliance)] = manager.identify(info)
        device_id = await manager.async_adopt(driver.manifest.name, appliance)
        device = hub.devices.get(device_id)
        assert device is not None and ("mac", "a8:03:2a:b1:00:07") in device.connections
        await wait_for(lambda: len(hub.entities.for_device(device_id)) == 4, what="4 entities")
        by_cap = {e.capabilities[0]: e.entity_id for e in hub.entities.for_device(device_id)}
        assert hub.states.get(by_cap["power"]).value == 0.0  # type: ignore[union-attr]
        await hub.commands.async_call(by_cap["on_off"], "turn_on")
        await wait_for(lambda: hub.states.get(by_cap["on_off"]).value == "on", what="relay on")  # type: ignore[union-attr]
        await wait_for(lambda: hub.states.get(by_cap["power"]).value > 50, what="power draw")  # type: ignore[union-attr]
        await hub.commands.async_call(by_cap["on_off"], "toggle")
        await wait_for(lambda: hub.states.get(by_cap["power"]).value == 0.0, what="power drops")  # type: ignore[union-attr]
        # The appliance goes away: unavailable; it returns: reconnected.
        await sim.stop()
        await wait_for(lambda: hub.states.get(by_cap["on_off"]).value == "unavailable", what="unavailable")  # type: ignore[union-attr]
        await sim.start()
        await wait_for(lambda: hub.states.get(by_cap["on_off"]).value == "off", timeout=15, what="back")  # type: ignore[union-attr]
    finally:
        await sim.stop()
        await asyncio.sleep(0)
