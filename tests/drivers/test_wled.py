"""WLED: the real wled client against the simulator (port 80 on a free loopback address), and the driver end
to end."""

from __future__ import annotations

import asyncio

import aiohttp
from wled import WLED

from qilu_hub.core import Hub
from qilu_hub.drivers.fleet import free_loopback_host
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.wled.simulator import MDNS_TYPE, WledSimulator
from qilu_hub.sdk.testing import MdnsAdvertiser, resolve_advert, wait_for


async def test_wled_client_accepts_the_simulator() -> None:
    host = free_loopback_host(80)  # any fixed address could be held by a demo or test beside this one
    sim = WledSimulator(host)
    await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            client = WLED(host, session=session)
            device = await client.update()
            assert device.info.name == "WLED" and str(device.info.version) == "0.14.4"
            assert len(device.effects) == 16 and device.state.on is False
            await client.master(on=True, brightness=255)
            await client.segment(0, color_primary=(255, 255, 255))
            device = await client.update()
            assert device.state.on and device.state.brightness == 255
            assert device.state.segments[0].color is not None
            assert device.state.segments[0].color.primary[:3] == (255, 255, 255)
            assert device.info.leds.power > 3000  # 60 LEDs at full white draw amps
            await client.connect()
            pushed: list[bool] = []
            listener = asyncio.create_task(client.listen(lambda d: pushed.append(d.state.on)))
            await asyncio.sleep(0.1)
            await client.master(on=False)
            await wait_for(lambda: False in pushed, what="WebSocket push")
            await client.disconnect()
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
    finally:
        await sim.stop()


async def test_driver_adopts_and_controls(hub_with_drivers: tuple[Hub, DriverManager],
                                          advertiser: MdnsAdvertiser) -> None:
    hub, manager = hub_with_drivers
    host = free_loopback_host(80)
    sim = WledSimulator(host, advertiser=advertiser, serial=12)
    await sim.start()
    try:
        info = await resolve_advert(MDNS_TYPE, host, 80)
        [(driver, appliance)] = manager.identify(info)
        device_id = await manager.async_adopt(driver.manifest.name, appliance)
        await wait_for(lambda: len(hub.entities.for_device(device_id)) == 2, what="entities")
        light = next(e.entity_id for e in hub.entities.for_device(device_id) if e.domain == "light")
        power = next(e.entity_id for e in hub.entities.for_device(device_id) if e.domain == "sensor")
        # commands wait for the connection to be up: until then the light is "unavailable (starting)"
        await wait_for(lambda: (s := hub.states.get(light)) is not None and s.value != "unavailable", what="state")
        await hub.commands.async_call(light, "turn_on", {"brightness": 200, "rgb_color": [0, 0, 255]})
        await wait_for(lambda: hub.states.get(light).value == "on", what="on")  # type: ignore[union-attr]
        await wait_for(lambda: hub.states.get(light).attributes.get("rgb_color") == [0, 0, 255], what="blue")  # type: ignore[union-attr]
        assert hub.states.get(light).attributes["brightness"] == 200  # type: ignore[union-attr]
        assert hub.states.get(power).value > 0  # type: ignore[union-attr]
        assert sim.state["on"] and sim.state["seg"][0]["col"][0] == [0, 0, 255]
        await hub.commands.async_call(light, "turn_off")
        await wait_for(lambda: hub.states.get(light).value == "off", what="off")  # type: ignore[union-attr]
    finally:
        await sim.stop()
