"""Shelly Gen2+ devices over aioshelly's RpcDevice (WebSocket RPC with NotifyStatus pushes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp
from aioshelly.common import ConnectionOptions
from aioshelly.rpc_device import RpcDevice, RpcUpdateType

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

MAX_CHANNELS = 4
_COVER_STATES = {"open": "open", "closed": "closed", "opening": "opening", "closing": "closing",
                 "stopped": "open", "calibrating": "opening"}


def _present(key: str) -> Callable[[Any], bool]:
    return lambda status: isinstance(status, dict) and key in status


def _output(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda status: "on" if status[key]["output"] else "off"


def _kwh(key: str) -> Callable[[dict[str, Any]], float]:
    return lambda status: round(status[key]["aenergy"]["total"] / 1000.0, 4)  # Shelly counts Wh


def _cover_state(key: str) -> Callable[[dict[str, Any]], str]:
    def value(status: dict[str, Any]) -> str:
        cover = status[key]
        if cover["state"] in ("opening", "closing"):
            return str(cover["state"])
        return "closed" if cover.get("current_pos") == 0 else _COVER_STATES.get(cover["state"], "open")

    return value


def _switch(i: int) -> list[EntityDescription]:
    k = f"switch:{i}"
    return [
        EntityDescription(k, f"Switch {i}" if i else "Switch", ("on_off",), value=_output(k), exists=_present(k)),
        EntityDescription(f"{k}/apower", "Power" if not i else f"Power {i}", ("power",), value=f"{k}/apower",
                          exists=_present(k)),
        EntityDescription(f"{k}/aenergy", "Energy" if not i else f"Energy {i}", ("energy",),
                          value=_kwh(k), exists=_present(k)),
        EntityDescription(f"{k}/voltage", "Voltage" if not i else f"Voltage {i}", ("voltage",), value=f"{k}/voltage",
                          exists=_present(k), entity_category="diagnostic"),
    ]


def _cover(i: int) -> list[EntityDescription]:
    k = f"cover:{i}"
    return [
        EntityDescription(k, "Cover" if not i else f"Cover {i}", ("cover_position",),
                          value=_cover_state(k),
                          attributes={"current_position": f"{k}/current_pos"}, exists=_present(k)),
        EntityDescription(f"{k}/apower", "Cover Power" if not i else f"Cover Power {i}", ("power",),
                          value=f"{k}/apower", exists=_present(k)),
    ]


DESCRIPTIONS: tuple[EntityDescription, ...] = tuple(
    d for i in range(MAX_CHANNELS) for d in (*_switch(i), *_cover(i))
)


class ShellyConnection(DeviceConnection):
    def __init__(self, context: DeviceContext, appliance: DiscoveredAppliance) -> None:
        self.context = context
        self.appliance = appliance
        self.session: aiohttp.ClientSession | None = None
        self.device: RpcDevice | None = None
        self.publisher = EntityPublisher(context, f"shelly:{appliance.key}", DESCRIPTIONS)

    async def async_start(self) -> None:
        data = self.appliance.data
        self.session = aiohttp.ClientSession()
        options = ConnectionOptions(data["host"], port=int(data["port"]))
        self.device = await RpcDevice.create(self.session, None, options)
        self.device.subscribe_updates(self._on_update)
        await self.device.initialize()
        self.context.update_device(name=self.appliance.title, identifiers=self.appliance.identifiers,
                                   sw_version=self.device.firmware_version or None)
        status = self.device.status
        self.publisher.register(status)
        self.publisher.publish(status)

    def _on_update(self, device: RpcDevice, update_type: RpcUpdateType) -> None:
        if update_type is RpcUpdateType.DISCONNECTED:
            self.report_lost("Shelly WebSocket closed")
        elif update_type in (RpcUpdateType.STATUS, RpcUpdateType.INITIALIZED):
            self.publisher.publish(device.status)

    async def async_stop(self) -> None:
        if self.device is not None:
            with contextlib.suppress(Exception):
                await self.device.shutdown()
        if self.session is not None:
            await self.session.close()

    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        assert self.device is not None
        key = self.publisher.key_of(entity.entity_id)
        if key is None or "/" in key:
            raise CommandError("not_supported", f"{entity.entity_id} takes no commands")
        component, _, raw_id = key.partition(":")
        channel = int(raw_id)
        device = self.device
        if component == "switch":
            if command == "toggle":
                await device.call_rpc("Switch.Toggle", {"id": channel})
            else:
                await device.switch_set(channel, command == "turn_on")
        elif command == "open_cover":
            await device.cover_open(channel)
        elif command == "close_cover":
            await device.cover_close(channel)
        elif command == "stop_cover":
            await device.cover_stop(channel)
        elif command == "set_cover_position":
            await device.cover_set_position(channel, pos=args["position"])
        else:
            raise CommandError("not_supported", f"{command} is not supported by {key}")
        await asyncio.sleep(0)  # the NotifyStatus push updates the state


class ShellyDriver(Driver):
    manifest = MANIFEST

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        if not isinstance(info, MdnsInfo):
            return None
        device_id = info.properties.get("id") or info.name.split(".", 1)[0]
        mac = device_id.rsplit("-", 1)[-1]
        if len(mac) != 12:
            return None
        app = info.properties.get("app", "Shelly")
        return DiscoveredAppliance(
            key=mac.lower(), title=f"Shelly {app}", identifiers=(("shelly", device_id),),
            connections=(("mac", mac),), manufacturer="Shelly", model=app,
            data={"host": info.host, "port": info.port},
        )

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        return ShellyConnection(context, appliance)
