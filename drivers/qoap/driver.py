"""The generic QOAP driver: adopts any appliance that implements the open profile, with no appliance code.

The appliance describes itself (``/qoap/description``, or the description characteristic over
BLE); the driver turns each described entity into an :class:`EntityDescription` and follows state
over the msgpack WebSocket (IP) or GATT notifications (BLE, in :mod:`qilu_hub.drivers.qoap.ble`).

Identity (profile 1.1, §8): the first connection after adoption challenges the appliance and pins
its public key (``learned_data``, kept with the adoption); every later connection checks it, and a
move to another address is followed without asking only when the appliance there signs a challenge
with that key (:meth:`QoapDriver.async_prove_identity`). A 1.0 appliance has no key: its moves wait
for the household's confirmation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import aiohttp
import msgpack

from qilu_hub.sdk import (
    BleInfo,
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
    merged_attributes,
)

from . import profile
from .ble import QoapBleConnection, identify_ble
from .identity import IdentityError, async_challenge, base_url
from .manifest import MANIFEST

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)
IDENTITY_KEY = "identity_key"  # in the adoption's data: the public key pinned at adoption (base64)


def descriptions_from(description: Mapping[str, Any]) -> list[EntityDescription]:
    """Entity descriptions for a /qoap/description document (already validated)."""
    out = []
    for entity in description["entities"]:
        key = entity["key"]
        names = tuple(entity["capabilities"])
        attrs = {name: f"{key}/attributes/{name}" for name in merged_attributes(names)}
        out.append(EntityDescription(key=key, name=entity["name"], capabilities=names, value=f"{key}/state",
                                     attributes=attrs, unit=entity.get("unit"),
                                     device_class=entity.get("device_class")))
    return out


class QoapConnection(DeviceConnection):
    def __init__(self, context: DeviceContext, appliance: DiscoveredAppliance) -> None:
        self.context = context
        self.appliance = appliance
        self.base = base_url(str(appliance.data["host"]), int(appliance.data["port"]))
        self.session: aiohttp.ClientSession | None = None
        self.publisher: EntityPublisher | None = None
        self.cache: dict[str, dict[str, Any]] = {}

    async def async_start(self) -> None:
        self.session = aiohttp.ClientSession(timeout=HTTP_TIMEOUT)
        async with self.session.get(self.base + profile.DESCRIPTION_PATH) as resp:
            resp.raise_for_status()
            description = await resp.json()
        errors = profile.description_errors(description)
        if errors:
            raise ValueError(f"invalid QOAP description: {'; '.join(errors[:3])}")
        if description["device"]["id"] != self.appliance.key:
            raise ValueError(f"appliance answers as {description['device']['id']!r}, not {self.appliance.key!r}")
        await self._check_identity(description["profile"]["version"])
        self.context.update_device(name=self.appliance.title, identifiers=self.appliance.identifiers,
                                   sw_version=description["device"].get("sw_version") or None)
        self.publisher = EntityPublisher(self.context, f"qoap:{self.appliance.key}", descriptions_from(description))
        self.publisher.register()
        ws = await self.session.ws_connect(f"{self.base}{profile.WS_PATH}?format=msgpack", heartbeat=20)
        first = await ws.receive(timeout=5)
        self._on_message(first.data)
        self.context.spawn(self._listen(ws), f"qoap-ws-{self.appliance.key}")

    async def _check_identity(self, version: str) -> None:
        """Check the key pinned at adoption, or pin one now (the first connection after adoption)."""
        assert self.session is not None
        pinned = self.appliance.data.get(IDENTITY_KEY)
        if pinned is None and not profile.has_identity(version):
            return  # profile 1.0: no key; moves need the household's confirmation
        host, port = str(self.appliance.data["host"]), int(self.appliance.data["port"])
        try:
            proof = await async_challenge(self.session, host, port, self.appliance.key,
                                          pinned=str(pinned) if pinned is not None else None)
        except IdentityError as err:
            # Someone else holds the address now, or the firmware was replaced: not the appliance adopted.
            raise ValueError(f"{self.appliance.key} at {host}:{port} failed the identity check: {err}") from None
        if pinned is None:
            self.learned_data = {IDENTITY_KEY: proof.key}

    async def _listen(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    self._on_message(msg.data)
        finally:
            self.report_lost("WebSocket closed")

    def _on_message(self, data: bytes) -> None:
        message = msgpack.unpackb(data)
        if message.get("type") == "snapshot":
            self.cache = dict(message["entities"])
        elif message.get("type") == "state":
            self.cache[message["entity"]] = {"state": message["state"], "attributes": message.get("attributes", {})}
        else:
            return
        assert self.publisher is not None
        self.publisher.publish(self.cache)

    async def async_stop(self) -> None:
        await self.context.async_cancel_tasks()
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.session.close()

    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        assert self.session is not None and self.publisher is not None
        key = self.publisher.key_of(entity.entity_id)
        if key is None:
            raise CommandError("not_found", f"{entity.entity_id} is not part of this appliance")
        async with self.session.post(self.base + profile.COMMAND_PATH,
                                     json={"entity": key, "command": command, "args": args}) as resp:
            body = await resp.json(content_type=None)
        if resp.status >= 400 or not body.get("ok"):
            error = body.get("error") or {}
            raise CommandError(str(error.get("code", "driver_error")), str(error.get("message", body)))
        # The WebSocket brings the change too; applying the reply at once makes the command's effect immediate.
        self.cache[key] = body["state"]
        self.publisher.publish(self.cache)


class QoapDriver(Driver):
    manifest = MANIFEST

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        if isinstance(info, BleInfo):
            return identify_ble(info)
        if not isinstance(info, MdnsInfo) or profile.txt_errors(info.properties):
            return None
        props = info.properties
        device_id = props["id"]
        return DiscoveredAppliance(
            key=device_id, title=props.get("name") or props["model"], identifiers=(("qoap", device_id),),
            manufacturer=props["mf"], model=props["model"],
            data={"host": info.host, "port": info.port, "pv": props["pv"]},
        )

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        if "address" in appliance.data:  # adopted from a BLE advert
            return QoapBleConnection(context, appliance)
        return QoapConnection(context, appliance)

    async def async_prove_identity(self, context: DeviceContext, adopted: DiscoveredAppliance,
                                   claimed: DiscoveredAppliance) -> tuple[bool, str]:
        """Proved when the appliance at the claimed address signs a fresh challenge, bound to that address,
        with the key pinned at adoption (§8). Without a pinned key (profile 1.0, BLE): not proved."""
        pinned = adopted.data.get(IDENTITY_KEY)
        if pinned is None:
            return False, ("adopted without an identity key (QOAP 1.0 or BLE): confirm the address change")
        host, port = claimed.data.get("host"), claimed.data.get("port")
        if host is None or port is None:
            return False, "the claimed address is not an IP endpoint"
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            try:
                proof = await async_challenge(session, str(host), int(port), adopted.key, pinned=str(pinned))
            except IdentityError as err:
                return False, f"not proved: {err}"
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                return False, f"the claimed address did not answer: {type(err).__name__}: {err}"
        return True, f"signed a challenge at {proof.address} with the key pinned at adoption"


