"""The BLE flavour of the conformance kit (docs/appliance-profile.md §7): checks a QOAP appliance over GATT
through bleak's BlueZ backend and bleak-retry-connector, the stack the hub's driver uses.

The description, state and command checks are the shared ones (checks.py) over :class:`BleLink`; the
checks here are the ones only GATT has: the advertisement, the GATT table, framing, re-subscribing and
reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

import msgpack
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak_retry_connector import clear_cache

from qilu_hub import capabilities as caps
from qilu_hub.discovery.connect import async_connect
from qilu_hub.drivers.qoap import profile
from qilu_hub.drivers.qoap.ble import SERVICE_DATA_LENGTH, id_hash
from qilu_hub.drivers.qoap.framing import MAX_FRAMES, Reassembler, encode_frames

from .checks import CheckFn, Fail, KitBase, Progress, Skip, out_of_range, plans_for, round_trip, state_problems
from .results import CheckResult, Report

# What each characteristic must offer (§7); more is allowed.
REQUIRED_PROPERTIES = {
    profile.BLE_DESCRIPTION_CHAR_UUID: ("read",),
    profile.BLE_STATE_CHAR_UUID: ("read", "notify"),
    profile.BLE_COMMAND_CHAR_UUID: ("write", "indicate"),
}
CHAR_NAMES = {profile.BLE_DESCRIPTION_CHAR_UUID: "description", profile.BLE_STATE_CHAR_UUID: "state",
              profile.BLE_COMMAND_CHAR_UUID: "command"}
DEFAULT_FRAME = 20  # ATT_MTU 23 - 3
SMALL_FRAME = 8  # the fragmentation check's frames: several per command whatever the MTU


class BleLink:
    """One GATT connection behind the shared checks' :class:`~qilu_hub.firmware_tests.checks.Link`."""

    def __init__(self, client: BleakClient, bound: float) -> None:
        self.client = client
        self.bound = bound
        self.states: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.results: asyncio.Queue[Any] = asyncio.Queue()
        self._state_frames = Reassembler()
        self._result_frames = Reassembler()
        self._ids = itertools.count(1)
        self.dropped = False  # the appliance's side ended the link

    async def open(self) -> None:
        """Subscribe to command results: every command check needs them."""
        await self.client.start_notify(profile.BLE_COMMAND_CHAR_UUID, self._on_result_frame)

    def on_disconnect(self, _client: BleakClient) -> None:
        self.dropped = True

    @property
    def frame_size(self) -> int:
        """ATT_MTU - 3, as BlueZ reports it for the command characteristic (the driver's rule, §7.2)."""
        char = self.client.services.get_characteristic(profile.BLE_COMMAND_CHAR_UUID)
        try:
            return max(DEFAULT_FRAME, int(char.max_write_without_response_size)) if char is not None else DEFAULT_FRAME
        except Exception:  # some backends cannot tell; the minimum MTU always works
            return DEFAULT_FRAME

    # -- reads ------------------------------------------------------------------------------
    async def read_message(self, uuid: str) -> Any:
        frames = Reassembler()
        for _ in range(2 * MAX_FRAMES):  # at most one message to skip to its start, then one to read
            message = frames.feed(bytes(await self.client.read_gatt_char(uuid)))
            if message is not None:
                try:
                    return msgpack.unpackb(message)
                except ValueError as err:
                    raise Fail(f"{CHAR_NAMES[uuid]} characteristic does not hold msgpack: {err}") from None
        raise Fail(f"{CHAR_NAMES[uuid]} characteristic never completed a framed message in {2 * MAX_FRAMES} reads")

    async def read_description(self) -> Any:
        return await self.read_message(profile.BLE_DESCRIPTION_CHAR_UUID)

    async def read_state(self) -> Any:
        return await self.read_message(profile.BLE_STATE_CHAR_UUID)

    # -- notifications ----------------------------------------------------------------------
    async def subscribe(self) -> None:
        self._state_frames = Reassembler()
        await self.client.start_notify(profile.BLE_STATE_CHAR_UUID, self._on_state_frame)

    async def unsubscribe(self) -> None:
        if self.client.is_connected:
            await self.client.stop_notify(profile.BLE_STATE_CHAR_UUID)

    def _on_state_frame(self, _char: Any, data: bytearray) -> None:
        message = self._state_frames.feed(bytes(data))
        if message is None:
            return
        with contextlib.suppress(ValueError):  # not msgpack: never heard, so the check reports it missing
            update = msgpack.unpackb(message)
            if isinstance(update, dict) and update.get("type") == "state":
                self.states.put_nowait(update)

    def _on_result_frame(self, _char: Any, data: bytearray) -> None:
        message = self._result_frames.feed(bytes(data))
        if message is not None:
            with contextlib.suppress(ValueError):
                self.results.put_nowait(msgpack.unpackb(message))

    async def next_state(self, timeout: float) -> dict[str, Any] | None:
        if self.dropped:
            raise ConnectionError("the appliance dropped the link")
        try:
            return await asyncio.wait_for(self.states.get(), timeout)
        except TimeoutError:
            return None

    # -- commands ---------------------------------------------------------------------------
    def new_id(self) -> int:
        return next(self._ids) % 0x10000

    async def write_frames(self, frames: list[bytes]) -> None:
        for frame in frames:
            await self.client.write_gatt_char(profile.BLE_COMMAND_CHAR_UUID, frame, response=True)

    def forget_results(self) -> None:
        while not self.results.empty():
            self.results.get_nowait()

    async def wait_result(self, request_id: int | None, timeout: float) -> dict[str, Any] | None:
        """The result for ``request_id`` (None: a result without an id), or None when none came in time."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                result = await asyncio.wait_for(self.results.get(), left)
            except TimeoutError:
                return None
            if isinstance(result, dict) and result.get("id") == request_id:
                return result
        return None

    async def command(self, key: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
        request_id = self.new_id()
        payload = msgpack.packb({"id": request_id, "entity": key, "command": command, "args": args})
        self.forget_results()
        await self.write_frames(encode_frames(payload, self.frame_size))
        result = await self.wait_result(request_id, self.bound)
        if result is None:
            why = f"no result indication for id {request_id} within {self.bound:g} s"
            return {"ok": False, "error": {"code": "no_result", "message": why}}
        return result


class BleConformanceKit(KitBase):
    """The BLE flavour's run against the appliance at ``address``, heard on ``adapter``."""

    def __init__(self, address: str, *, adapter: str = "hci0", profile_name: str = "qoap", bound: float = 2.0,
                 scan_timeout: float = 10.0, progress: Progress | None = None) -> None:
        super().__init__(f"BLE {address.upper()} via {adapter}", profile_name, bound, progress)
        self.address = address.upper()
        self.adapter = adapter
        self.scan_timeout = scan_timeout
        self.device: BLEDevice | None = None
        self.advert: AdvertisementData | None = None
        self.advert_hash: str | None = None  # 16 hex digits from valid service data
        self.advert_pv: str | None = None
        self.ble: BleLink | None = None

    def checks(self) -> list[tuple[str, str, CheckFn]]:
        return [
            ("ble.advertised", "Advertises the QOAP service UUID (and its service data)", self.check_advertised),
            ("gatt.services", "QOAP service has its characteristics with the right properties", self.check_gatt),
            ("description.valid", "Description is valid in the common model", self.check_description),
            ("state.readable", "Every declared entity and attribute is readable", self.check_state),
            ("commands.round_trip", "Every command is indicated as done and its state notified",
             self.check_commands),
            ("bad_input.rejected", "Bad commands get the profile's error results", self.check_bad_input),
            ("framing.fragmented", "A command in many small frames is reassembled", self.check_fragmented),
            ("framing.oversize", "A message longer than 128 frames is refused", self.check_oversize),
            ("notify.resubscribe", "State notifications resume after re-subscribing", self.check_resubscribe),
            ("link.reconnect", "The appliance accepts a new connection after a disconnect", self.check_reconnect),
        ]

    async def run(self) -> Report:
        try:
            await self.run_checks()
        finally:
            if self.ble is not None:
                with contextlib.suppress(Exception):
                    await self.ble.client.disconnect()
        return self.report

    def _ble(self) -> BleLink:
        if self.ble is None:
            raise Skip("no GATT connection to the appliance")
        if self.ble.dropped:
            raise Skip("the appliance dropped the link in an earlier check")
        return self.ble

    def _link(self) -> BleLink:
        return self._ble()

    # -- transport checks -------------------------------------------------------------------
    async def check_advertised(self, result: CheckResult) -> None:
        found = asyncio.Event()

        def heard(device: BLEDevice, advert: AdvertisementData) -> None:
            if device.address.upper() == self.address:
                self.device, self.advert = device, advert
                found.set()

        scanner = BleakScanner(heard, scanning_mode="active", bluez={"adapter": self.adapter})
        try:
            await scanner.start()
        except Exception as err:  # no system bus, no BlueZ, no such adapter, adapter off: say where to look
            raise Fail(f"cannot scan on {self.adapter} ({type(err).__name__}: {err}); is bluetoothd running, "
                       f"the adapter present and powered (bluetoothctl list; bluetoothctl power on)?") from None
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(found.wait(), self.scan_timeout)
        finally:
            await scanner.stop()
        if self.advert is None:
            raise Fail(f"{self.address} was not heard on {self.adapter} within {self.scan_timeout:g} s")
        uuid = profile.BLE_SERVICE_UUID
        uuids = [u.lower() for u in self.advert.service_uuids]
        data = self.advert.service_data.get(uuid)
        if uuid not in uuids and data is None:
            raise Fail(f"advert lacks the QOAP service UUID {uuid} (in its UUID list or as service data key); "
                       f"it lists {uuids or 'no UUIDs'}")
        if data is None:
            result.message = "service UUID advertised, no service data (the hub keys it by address)"
            return
        if len(data) != SERVICE_DATA_LENGTH:
            raise Fail(f"service data is {len(data)} bytes ({data.hex()}); §7.1 wants {SERVICE_DATA_LENGTH}: "
                       "version major, minor, then 8 bytes of SHA-256(id)")
        if data[0] != 1:
            raise Fail(f"service data names profile version {data[0]}.{data[1]}; this hub speaks 1.x")
        self.advert_pv, self.advert_hash = f"{data[0]}.{data[1]}", data[2:].hex()
        name = f" as {self.advert.local_name!r}" if self.advert.local_name else " (no local name)"
        result.message = f"pv {self.advert_pv}, id hash {self.advert_hash}{name}"

    async def _connect(self) -> BleLink:
        """A new GATT connection through bleak-retry-connector, as the hub's driver makes it."""
        if self.device is None:
            raise Skip("the appliance was not heard advertising")
        link: BleLink | None = None

        def dropped(client: BleakClient) -> None:
            if link is not None:
                link.on_disconnect(client)

        client = await async_connect(self.device, self.advert.local_name if self.advert else None,
                                     max_attempts=2, disconnected_callback=dropped)
        link = BleLink(client, self.bound)
        return link

    async def check_gatt(self, result: CheckResult) -> None:
        link = await self._connect()
        client = link.client
        service = client.services.get_service(profile.BLE_SERVICE_UUID)
        if service is None:
            await clear_cache(self.address)  # the next run must not reuse a table without it
            await client.disconnect()
            raise Fail(f"no primary service {profile.BLE_SERVICE_UUID}")
        missing = []
        for uuid, needed in REQUIRED_PROPERTIES.items():
            char = service.get_characteristic(uuid)
            if char is None:
                missing.append(uuid)
                continue
            lacking = [p for p in needed if p not in char.properties]
            if lacking:
                result.details.append(f"{CHAR_NAMES[uuid]} characteristic {uuid} lacks {', '.join(lacking)} "
                                      f"(has {', '.join(char.properties) or 'nothing'})")
        if missing:
            await clear_cache(self.address)
            await client.disconnect()
            raise Fail(f"missing characteristics: {', '.join(f'{CHAR_NAMES[u]} {u}' for u in missing)}")
        await link.open()
        self.ble = self.link = link  # usable even when a property is wrong: later checks say what else works
        if result.details:
            raise Fail(result.details[0])
        result.message = f"3 characteristics, frames of {link.frame_size} bytes"

    def agree(self, description: dict[str, Any], result: CheckResult) -> None:
        if self.advert_hash is None:
            return
        device_id = description["device"]["id"]
        if id_hash(device_id) != self.advert_hash:
            result.details.append(f"advertised id hash {self.advert_hash} is not SHA-256({device_id!r})[:8] "
                                  f"= {id_hash(device_id)}")
        version = description["profile"]["version"]
        if self.advert_pv != version:
            result.details.append(f"advert says profile {self.advert_pv}, the description {version}")

    async def check_bad_input(self, result: CheckResult) -> None:
        self._need("description.valid")
        assert self.description is not None
        link = self._ble()
        entities = self.description["entities"]
        entity = next((e for e in entities if caps.merged_commands(e["capabilities"])), entities[0])
        key = entity["key"]
        commands = caps.merged_commands(entity["capabilities"])
        command = next(iter(commands), "turn_on")

        def request(**body: Any) -> tuple[int, bytes]:
            request_id = link.new_id()
            return request_id, msgpack.packb({"id": request_id, **body})

        cases: list[tuple[str, int | None, bytes, str]] = [
            ("not msgpack", None, b"\xc1", "invalid_format"),  # 0xc1 is never used in msgpack
            ("not a map", None, msgpack.packb([1, 2, 3]), "invalid_format"),
            ("unknown entity", *request(entity="no_such_entity", command="turn_on", args={}), "not_found"),
            ("unknown command", *request(entity=key, command="self_destruct", args={}), "not_supported"),
            ("unknown argument", *request(entity=key, command=command, args={"no_such_argument": "x" * 30}),
             "invalid_format"),
        ]
        typed = next(((c.name, a) for c in commands.values() for a in c.args), None)
        if typed is not None:
            cases.append(("wrong argument type", *request(entity=key, command=typed[0],
                                                           args={typed[1]: {"a": "map"}}), "invalid_format"))
        wide = out_of_range(entity)
        if wide is not None:
            cases.append(("argument out of range", *request(entity=key, command=wide[0], args=wide[1]),
                          "out_of_range"))
        for label, request_id, payload, code in cases:
            link.forget_results()
            await link.write_frames(encode_frames(payload, link.frame_size))
            answer = await link.wait_result(request_id, self.bound)
            if answer is None:
                result.details.append(f"{label}: no result with id {request_id} within {self.bound:g} s")
            elif answer.get("ok") is not False:
                result.details.append(f"{label}: answered ok={answer.get('ok')!r}, expected a refusal")
            elif (answer.get("error") or {}).get("code") != code:
                result.details.append(f"{label}: error {answer.get('error')!r}, expected code {code!r}")
            if link.dropped or not link.client.is_connected:
                raise Fail(f"the appliance dropped the link after {label} (crashed?)")
        if result.details:
            raise Fail(f"{len(result.details)} of {len(cases)} bad commands: {result.details[0]}")
        await link.read_description()  # still answering
        result.message = f"{len(cases)} bad commands refused with the right codes; link still up"

    def _any_command(self) -> tuple[str, str, dict[str, Any]]:
        self._need("description.valid")
        assert self.description is not None
        for entity in self.description["entities"]:
            for plan in plans_for(entity["capabilities"]):
                return entity["key"], plan.command, plan.args
        raise Skip("the appliance declares no commands")

    async def check_fragmented(self, result: CheckResult) -> None:
        key, command, args = self._any_command()
        link = self._ble()
        # A stray first frame of a message that never ends: the appliance must start afresh at the next frame 0.
        link.forget_results()
        await link.write_frames([bytes([0]) + msgpack.packb({"id": link.new_id()})[:3]])
        request_id = link.new_id()
        frames = encode_frames(msgpack.packb({"id": request_id, "entity": key, "command": command, "args": args}),
                               SMALL_FRAME)
        await link.write_frames(frames)
        answer = await link.wait_result(request_id, self.bound)
        if answer is None:
            raise Fail(f"{key}.{command} in {len(frames)} frames of {SMALL_FRAME} bytes (after a stray partial "
                       f"message) got no result with id {request_id} within {self.bound:g} s")
        if not answer.get("ok"):
            raise Fail(f"{key}.{command} in {len(frames)} frames was refused: {answer.get('error')!r}")
        result.message = f"{len(frames)} frames of {SMALL_FRAME} bytes reassembled after a stray partial message"

    async def check_oversize(self, result: CheckResult) -> None:
        key, command, args = self._any_command()
        link = self._ble()
        size = link.frame_size
        link.forget_results()
        # Frames 0-127, none marked last: the message cannot end within the framing's 128 frames.
        await link.write_frames([bytes([seq]) + b"\x00" * (size - 1) for seq in range(MAX_FRAMES)])
        answer = await link.wait_result(None, self.bound)
        if answer is None:
            raise Fail(f"128 frames without an end got no invalid_format result (id null) within {self.bound:g} s")
        if answer.get("ok") is not False or (answer.get("error") or {}).get("code") != "invalid_format":
            raise Fail(f"128 frames without an end answered {answer!r}, expected an invalid_format refusal")
        if link.dropped:
            raise Fail("the appliance dropped the link after an oversize message")
        after = await link.command(key, command, args)
        if not after.get("ok"):
            raise Fail(f"after the oversize message {key}.{command} fails: {after.get('error')!r}")
        result.message = f"{MAX_FRAMES} x {size} bytes refused; the next command works"

    async def check_resubscribe(self, result: CheckResult) -> None:
        self._need("commands.round_trip")  # commands.round_trip subscribed and unsubscribed already
        assert self.description is not None
        link = self._ble()
        await link.subscribe()
        # Left subscribed: link.reconnect drops the connection anyway.
        state = await link.read_state()
        for entity in self.description["entities"]:
            snap = state["entities"].get(entity["key"], {})
            plan = next((p for p in plans_for(entity["capabilities"]) if not p.expect(snap)), None)
            if plan is not None:
                problem = await round_trip(link, entity["key"], plan, self.bound)
                if problem:
                    raise Fail(f"after unsubscribing and subscribing again, {entity['key']}.{plan.command}: {problem}")
                result.message = f"{entity['key']}.{plan.command} notified after re-subscribing"
                return
        raise Skip("no command would change the state")

    async def check_reconnect(self, result: CheckResult) -> None:
        self._need("description.valid")
        assert self.description is not None
        if self.ble is None:
            raise Skip("no GATT connection to the appliance")
        if self.ble.client.is_connected:  # else the appliance dropped it: a reconnect is due all the same
            await self.ble.client.disconnect()
        self.ble = self.link = None
        started = time.monotonic()
        try:
            link = await self._connect()
        except Skip:
            raise
        except Exception as err:
            raise Fail(f"no new connection after a disconnect: {type(err).__name__}: {err}") from None
        if link.client.services.get_characteristic(profile.BLE_COMMAND_CHAR_UUID) is None:
            raise Fail("after reconnecting the GATT table lacks the command characteristic")
        await link.open()
        self.ble = self.link = link
        description = await link.read_description()
        device_id = self.description["device"]["id"]
        if not isinstance(description, dict) or (description.get("device") or {}).get("id") != device_id:
            raise Fail(f"after reconnecting the description is not {device_id!r}'s")
        problems = state_problems(self.description, await link.read_state())
        if problems:
            raise Fail(f"after reconnecting: {problems[0]}")
        await link.subscribe()  # must be accepted on the new connection
        key, command, args = self._any_command()
        answer = await link.command(key, command, args)
        if not answer.get("ok"):
            raise Fail(f"after reconnecting {key}.{command} fails: {answer.get('error')!r}")
        result.message = f"reconnected in {time.monotonic() - started:.1f} s; description, state and commands work"
