"""WLED lights over the ``wled`` client library (JSON API for commands, WebSocket for pushes)."""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp
from wled import WLED, Device

from qilu_hub.sdk import (
    CommandError,
    Context,
    DeviceConnection,
    DeviceContext,
    DiscoveredAppliance,
    DiscoveryInfo,
    Driver,
    Entity,
    EntityDescription,
    EntityPublisher,
    MdnsInfo,
)

from .manifest import MANIFEST

STRIP_VOLTS = 5.0  # WLED reports current in mA; its strips run at 5 V

DESCRIPTIONS = (
    EntityDescription("light", "Light", ("on_off", "level", "color"), value="state",
                      attributes={"brightness": "brightness", "rgb_color": "rgb_color"}),
    EntityDescription("power", "Power", ("power",), value="power"),
)


def _as_data(device: Device) -> dict[str, Any]:
    state = device.state
    segment = state.segments.get(state.main_segment_id) or next(iter(state.segments.values()), None)
    rgb = None
    if segment is not None and segment.color is not None and segment.color.primary is not None:
        rgb = list(segment.color.primary[:3])
    return {
        "state": "on" if state.on else "off",
        "brightness": state.brightness if state.on else 0,
        "rgb_color": rgb,
        "power": round(device.info.leds.power * STRIP_VOLTS / 1000.0, 2),
    }


class WledConnection(DeviceConnection):
    def __init__(self, context: DeviceContext, appliance: DiscoveredAppliance) -> None:
        self.context = context
        self.appliance = appliance
        self.session: aiohttp.ClientSession | None = None
        self.client: WLED | None = None
        self.publisher = EntityPublisher(context, f"wled:{appliance.key}", DESCRIPTIONS)

    async def async_start(self) -> None:
        self.session = aiohttp.ClientSession()
        self.client = WLED(self.appliance.data["host"], session=self.session)
        device = await self.client.update()
        # The firmware version, for the device registry (and Home Assistant's device page over MQTT).
        self.context.update_device(name=self.appliance.title, identifiers=self.appliance.identifiers,
                                   sw_version=device.info.version or None)
        self.publisher.register(device)
        self.publisher.publish(_as_data(device))
        await self.client.connect()
        self.context.spawn(self._listen(), f"wled-ws-{self.appliance.key}")

    async def _listen(self) -> None:
        assert self.client is not None
        try:
            await self.client.listen(lambda device: self.publisher.publish(_as_data(device)))
        finally:
            self.report_lost("WLED WebSocket closed")

    async def async_stop(self) -> None:
        await self.context.async_cancel_tasks()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.disconnect()
        if self.session is not None:
            await self.session.close()

    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        client = self.client
        assert client is not None
        if self.publisher.key_of(entity.entity_id) != "light":
            raise CommandError("not_supported", f"{entity.entity_id} takes no commands")
        current = self.publisher.entities["light"]
        if command == "toggle":
            command = "turn_off" if self.context.state_value(current.entity_id) == "on" else "turn_on"
        if command == "turn_off":
            await client.master(on=False)
            return
        brightness = args.get("brightness")
        if "brightness_pct" in args:
            brightness = round(args["brightness_pct"] * 2.55)
        transition = round(args["transition"] * 10) if "transition" in args else None
        if "rgb_color" in args:
            r, g, b = args["rgb_color"]
            await client.segment(0, color_primary=(int(r), int(g), int(b)), on=True)
        await client.master(on=True, brightness=brightness, transition=transition)


class WledDriver(Driver):
    manifest = MANIFEST

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        if not isinstance(info, MdnsInfo) or info.port != 80:
            return None  # the wled client only speaks to port 80
        mac = info.properties.get("mac", "")
        if len(mac) != 12:
            return None
        name = info.name.split(".", 1)[0]
        return DiscoveredAppliance(
            key=mac.lower(), title=f"WLED {name.removeprefix('wled-')}", identifiers=(("wled", mac.lower()),),
            connections=(("mac", mac),), manufacturer="WLED", model="WLED", data={"host": info.host},
        )

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        return WledConnection(context, appliance)
