"""The QOAP BLE flavour (docs/appliance-profile.md §7): identify adverts and follow an appliance over GATT.

The connection reads the description and state characteristics (framed msgpack), registers the
described entities, follows state notifications and writes commands, waiting for each result
indication. A dropped link is reported lost; the driver manager marks the entities unavailable and
reconnects with backoff (and at once when discovery hears the appliance again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
from typing import Any

import msgpack
from bleak import BleakClient
from bleak_retry_connector import clear_cache

from qilu_hub.sdk import (
    BleInfo,
    CommandError,
    Context,
    DeviceConnection,
    DeviceContext,
    DiscoveredAppliance,
    Entity,
    EntityPublisher,
)

from . import profile
from .framing import MAX_FRAMES, Reassembler, encode_frames

_LOGGER = logging.getLogger(__name__)

SERVICE_DATA_LENGTH = 10  # pv major, pv minor, 8 bytes of SHA-256(id)
DEFAULT_FRAME = 20  # ATT_MTU 23 - 3: what every link supports when the MTU is unknown


def id_hash(device_id: str) -> str:
    """The advert's identity: the first 8 bytes of SHA-256 of the appliance id, in hex."""
    return hashlib.sha256(device_id.encode()).digest()[:8].hex()


def identify_ble(info: BleInfo) -> DiscoveredAppliance | None:
    """A QOAP BLE advert as an appliance keyed by its id hash (the address where the advert lacks it)."""
    uuid = profile.BLE_SERVICE_UUID
    if uuid not in info.service_uuids and uuid not in info.service_data:
        return None
    data = info.service_data.get(uuid, b"")
    if len(data) >= SERVICE_DATA_LENGTH:
        if data[0] != 1:
            return None  # another major version: this hub cannot speak it
        pv, ident = f"{data[0]}.{data[1]}", data[2:SERVICE_DATA_LENGTH].hex()
        key = f"qoap-ble-{ident}"
    else:
        # Service UUID without (valid) service data: still ours, but only the address identifies it.
        pv, ident = "1.0", ""
        key = f"qoap-ble-{info.address.lower().replace(':', '')}"
    identifiers = (("qoap-ble", ident),) if ident else ()
    return DiscoveredAppliance(
        key=key, title=info.name or "QOAP appliance", identifiers=identifiers,
        connections=(("ble", info.address.lower()),),
        data={"address": info.address, "id_hash": ident, "pv": pv},
    )


class QoapBleConnection(DeviceConnection):
    """One QOAP appliance over GATT."""

    def __init__(self, context: DeviceContext, appliance: DiscoveredAppliance) -> None:
        self.context = context
        self.appliance = appliance
        self.address: str = appliance.data["address"]
        self.client: BleakClient | None = None
        self.publisher: EntityPublisher | None = None
        self.cache: dict[str, dict[str, Any]] = {}
        self._state_frames = Reassembler()
        self._result_frames = Reassembler()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self._stopping = False
        self._linked = True  # False once the link dropped: late notifications must not undo "unavailable"

    # -- lifecycle ----------------------------------------------------------------------
    async def async_start(self) -> None:
        from .driver import descriptions_from  # the driver module imports this one

        self.client = await self.context.async_connect_ble(self.address, self.appliance.title, self._on_disconnect)
        missing = [uuid for uuid in profile.BLE_CHAR_UUIDS if self.client.services.get_characteristic(uuid) is None]
        if missing:
            # A cached GATT table from before a firmware update (or from before the appliance finished
            # publishing it) would fail every retry the same way: drop it so the next attempt reads it afresh.
            await clear_cache(self.address)
            raise ConnectionError(f"GATT table lacks QOAP characteristics {missing}")
        description = msgpack.unpackb(await self._read_message(profile.BLE_DESCRIPTION_CHAR_UUID))
        errors = profile.description_errors(description)
        if errors:
            raise ValueError(f"invalid QOAP description: {'; '.join(errors[:3])}")
        device = description["device"]
        expected = self.appliance.data.get("id_hash")
        if expected and id_hash(device["id"]) != expected:
            raise ValueError(f"appliance answers as {device['id']!r}, whose hash is not the advertised {expected}")
        # Now the real id is known: record it on the device, so the IP flavour of the same appliance merges.
        self.context.update_device(
            name=device["name"], identifiers=[*self.appliance.identifiers, ("qoap", device["id"])],
            connections=self.appliance.connections, manufacturer=device["manufacturer"], model=device["model"],
            sw_version=device.get("sw_version"))
        self.publisher = EntityPublisher(self.context, f"qoap:{device['id']}", descriptions_from(description))
        self.publisher.register()
        await self.client.start_notify(profile.BLE_STATE_CHAR_UUID, self._on_state_frame)
        await self.client.start_notify(profile.BLE_COMMAND_CHAR_UUID, self._on_result_frame)
        # Read after subscribing, so no change falls between the snapshot and the first notification.
        state = msgpack.unpackb(await self._read_message(profile.BLE_STATE_CHAR_UUID))
        if not isinstance(state, dict) or not isinstance(state.get("entities"), dict):
            raise ValueError("state characteristic does not hold {'entities': {...}}")
        self.cache.update(state["entities"])
        self.publisher.publish(self.cache)

    def _on_disconnect(self, _client: BleakClient) -> None:
        self._linked = False
        if not self._stopping:
            self._fail_pending(ConnectionError("BLE link dropped"))
            self.report_lost("BLE link dropped")

    async def async_stop(self) -> None:
        self._stopping = True
        self._fail_pending(ConnectionError("connection stopped"))
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.disconnect()

    def _fail_pending(self, err: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(err)
        self._pending.clear()

    # -- GATT messages ------------------------------------------------------------------
    async def _read_message(self, uuid: str) -> bytes:
        """Read a framed characteristic: each read returns the appliance's next frame (§7.2)."""
        assert self.client is not None
        frames = Reassembler()
        for _ in range(2 * MAX_FRAMES):  # at most one message to skip to its start, then one to read
            message = frames.feed(bytes(await self.client.read_gatt_char(uuid)))
            if message is not None:
                return message
        raise ValueError(f"characteristic {uuid} never completed a message")

    def _on_state_frame(self, _char: Any, data: bytearray) -> None:
        message = self._state_frames.feed(bytes(data))
        if message is None:
            return
        try:
            update = msgpack.unpackb(message)
            if (not isinstance(update, dict) or update.get("type") != "state"
                    or not isinstance(update.get("entity"), str)):
                raise ValueError(f"not a state message: {update!r}")
        except ValueError as err:  # msgpack's errors are ValueErrors: a bad notification is dropped, not fatal
            _LOGGER.warning("%s: dropped a state notification: %s", self.appliance.title, err)
            return
        self._apply(update["entity"], {"state": update.get("state"), "attributes": update.get("attributes") or {}})

    def _on_result_frame(self, _char: Any, data: bytearray) -> None:
        message = self._result_frames.feed(bytes(data))
        if message is None:
            return
        try:
            result = msgpack.unpackb(message)
        except ValueError as err:
            _LOGGER.warning("%s: dropped a command result: %s", self.appliance.title, err)
            return
        request_id = result.get("id") if isinstance(result, dict) else None
        future = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if future is not None and not future.done():
            future.set_result(result)

    def _apply(self, key: str, snapshot: dict[str, Any]) -> None:
        if not self._linked or self.publisher is None or key not in self.publisher.entities:
            return
        self.cache[key] = snapshot
        self.publisher.publish({key: snapshot})

    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        assert self.client is not None and self.publisher is not None
        key = self.publisher.key_of(entity.entity_id)
        if key is None:
            raise CommandError("not_found", f"{entity.entity_id} is not part of this appliance")
        request_id = next(self._ids) % 0x10000
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        payload = msgpack.packb({"id": request_id, "entity": key, "command": command, "args": args})
        try:
            async with self._write_lock:  # frames of two commands must not interleave
                for frame in encode_frames(payload, self._frame_size()):
                    await self.client.write_gatt_char(profile.BLE_COMMAND_CHAR_UUID, frame, response=True)
            result = await future  # the driver manager bounds the wait (command_timeout)
        finally:
            self._pending.pop(request_id, None)
        if not result.get("ok"):
            error = result.get("error") or {}
            raise CommandError(str(error.get("code", "driver_error")), str(error.get("message", result)))
        if isinstance(result.get("state"), dict):
            self._apply(key, result["state"])

    def _frame_size(self) -> int:
        """ATT_MTU - 3 of the command characteristic (BlueZ reports the MTU per characteristic)."""
        assert self.client is not None
        char = self.client.services.get_characteristic(profile.BLE_COMMAND_CHAR_UUID)
        try:
            return max(DEFAULT_FRAME, int(char.max_write_without_response_size)) if char is not None else DEFAULT_FRAME
        except Exception:  # some backends cannot tell; the minimum MTU always works
            return DEFAULT_FRAME
