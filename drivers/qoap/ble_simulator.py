"""A QOAP BLE appliance (a battery smart lock) on a mock BlueZ, so the hub's real bleak stack adopts it.

The mock is python-dbusmock's ``bluez5`` template on a private system bus (see hub/sdk/_ble_mock.py).
The appliance's device and GATT objects live in the mock; their methods are small code strings
run there: ``ReadValue`` returns the next frame of the characteristic's current message (§7.2),
``WriteValue`` on the command characteristic emits a ``Written`` signal that this object (in the
caller's process) turns into a command, and notifications are ``PropertiesChanged`` on ``Value``,
as BlueZ sends them.

Variants (deliberately broken firmware; the BLE conformance kit must fail each on exactly one check):
``ok``; ``bad_advert`` (service data cut to 4 bytes); ``bad_props`` (the command characteristic
notifies instead of indicating); ``bad_description`` (an entity with an unknown capability);
``silent`` (never notifies state changes); ``lax`` (answers ok to commands it should refuse);
``no_reassembly`` (takes every written frame as a whole message); ``no_oversize`` (drops an overlong
message without a word); ``no_resubscribe`` (ignores the first re-enable of state notifications after
they were disabled); ``no_reconnect`` (refuses connections after the first one ends); ``crashy``
(a command that is not msgpack resets it: the link drops and no result comes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal

import msgpack
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from qilu_hub.sdk import CommandError, merged_commands, validate_command

from . import profile
from .ble import id_hash
from .framing import MAX_FRAMES, MAX_READ_FRAME, Reassembler, encode_frames
from .simulator import Appliance, SimEntity

_LOGGER = logging.getLogger(__name__)
# The BLE flavour this lock implements: 1.1's identity proof (§8) is defined for the IP flavour only.
BLE_PROFILE_VERSION = "1.0"

MOCK = "org.freedesktop.DBus.Mock"
DEV_IF, SVC_IF, CHR_IF = "org.bluez.Device1", "org.bluez.GattService1", "org.bluez.GattCharacteristic1"
SIM_IF = "org.qilu.QoapSim"
OBJ_MANAGER = "org.freedesktop.DBus.ObjectManager"

# Run inside the mock: each read hands out the next frame and wraps round (§7.2).
_READ = """
frames = getattr(self, 'qoap_frames', None)
if frames:
    i = getattr(self, 'qoap_cursor', 0) % len(frames)
    self.qoap_cursor = i + 1
    ret = frames[i]
else:
    ret = self.props['org.bluez.GattCharacteristic1']['Value']
"""
_SET_FRAMES = "self.qoap_frames = list(args[0]); self.qoap_cursor = 0"
_WRITE = f"self.EmitSignal('{SIM_IF}', 'Written', 'ay', [args[0]])"
_NOTIFY = "self.UpdateProperties('org.bluez.GattCharacteristic1', {'Notifying': dbus.Boolean(%s)})"
_LINK = ("self.UpdateProperties('org.bluez.Device1', "
         "{'Connected': dbus.Boolean(%s), 'ServicesResolved': dbus.Boolean(%s)})")
# no_resubscribe: the firmware loses the first re-enable of its notifications after a disable.
_STOP_ONCE = "self.qoap_stopped = True; " + _NOTIFY % "False"
_START_ONCE = ("if getattr(self, 'qoap_stopped', False):\n    self.qoap_stopped = False\n"
               "else:\n    " + _NOTIFY % "True")
# no_reconnect: once a connection ended, the appliance never accepts another.
_CONNECT_ONCE = ("if getattr(self, 'qoap_gone', False):\n"
                 "    raise dbus.exceptions.DBusException('Connection refused (111)',"
                 " name='org.bluez.Error.Failed')\n"
                 + _LINK % ("True", "True"))
_DISCONNECT_ONCE = "self.qoap_gone = True; " + _LINK % ("False", "False")

BleVariant = Literal["ok", "bad_advert", "bad_props", "bad_description", "silent", "lax", "no_reassembly",
                     "no_oversize", "no_resubscribe", "no_reconnect", "crashy"]
BLE_VARIANTS: tuple[BleVariant, ...] = ("ok", "bad_advert", "bad_props", "bad_description", "silent", "lax",
                                        "no_reassembly", "no_oversize", "no_resubscribe", "no_reconnect", "crashy")


class SmartLock(Appliance):
    kind = "smart_lock"
    model = "QSL-1"
    title = "Smart Lock"
    code = "1234"  # a keypad code, when the caller gives one

    def __init__(self) -> None:
        super().__init__()
        self.add(SimEntity("lock", "Front Door Lock", ["lock"], "locked"))
        self.add(SimEntity("battery", "Front Door Lock Battery", ["battery"], 87.0))

    def command(self, key: str, command: str, args: dict[str, Any]) -> None:
        if key == "lock" and command in ("lock", "unlock"):
            if args.get("code") not in (None, self.code):
                raise CommandError("invalid_format", "wrong code")
            self.set("lock", "locked" if command == "lock" else "unlocked")
            self.set("battery", max(0.0, self.entities["battery"].state - 0.5))  # each turn of the bolt costs
        else:
            raise CommandError("not_supported", f"{key} does not take {command}")


class QoapBleSimulator:
    """One QOAP BLE appliance on the mock BlueZ's ``adapter``, at ``address``."""

    def __init__(self, address: str, adapter: str = "hci0", *, serial: int = 1, frame_size: int = 244,
                 advert_interval: float | None = 0.5, variant: BleVariant = "ok") -> None:
        if variant not in BLE_VARIANTS:
            raise ValueError(f"unknown variant {variant!r} (known: {', '.join(BLE_VARIANTS)})")
        self.variant = variant
        self.appliance = SmartLock()
        self.address = address.upper()
        self.adapter_path = f"/org/bluez/{adapter}"
        self.device_id = f"qoap-smartlock-{serial:04d}"
        self.name = self.appliance.title
        self.frame_size = min(frame_size, MAX_READ_FRAME)  # notifications (MTU - 3) and read frames alike
        self.advert_interval = advert_interval
        self.path = f"{self.adapter_path}/dev_{self.address.replace(':', '_')}"
        self.service = f"{self.path}/service0010"
        self.chars = {
            profile.BLE_DESCRIPTION_CHAR_UUID: f"{self.service}/char0011",
            profile.BLE_STATE_CHAR_UUID: f"{self.service}/char0013",
            profile.BLE_COMMAND_CHAR_UUID: f"{self.service}/char0016",
        }
        self.commands: list[dict[str, Any]] = []  # what the hub wrote, decoded (tests read it)
        self.bus: MessageBus | None = None
        self._writes = Reassembler()
        self._radio: asyncio.Task[None] | None = None
        self._announce: list[tuple[str, str, dict[str, Variant]]] = []

    # -- the protocol ---------------------------------------------------------------------
    def service_data(self) -> bytes:
        major, minor = (int(p) for p in BLE_PROFILE_VERSION.split("."))
        data = bytes([major, minor]) + bytes.fromhex(id_hash(self.device_id))
        return data[:4] if self.variant == "bad_advert" else data

    def description(self) -> dict[str, Any]:
        return {
            "profile": {"name": profile.PROFILE_NAME, "version": BLE_PROFILE_VERSION},
            "device": {"id": self.device_id, "name": self.name, "manufacturer": "Qilu Appliances",
                       "model": self.appliance.model, "sw_version": "0.9.1"},
            "entities": [e.describe() for e in self.appliance.entities.values()]
            + ([{"key": "bolt", "name": "Bolt", "capabilities": ["teleport"]}]
               if self.variant == "bad_description" else []),
        }

    def state(self) -> dict[str, Any]:
        return {"entities": {k: e.snapshot() for k, e in self.appliance.entities.items()}}

    def execute(self, payload: Any) -> dict[str, Any]:
        """Run one command request; the §4 result (with the request's id) to indicate."""
        request_id = payload.get("id") if isinstance(payload, dict) else None
        try:
            if not isinstance(payload, dict):
                raise CommandError("invalid_format", "command must be a map")
            key, command = payload.get("entity"), payload.get("command")
            entity = self.appliance.entities.get(key) if isinstance(key, str) else None
            if entity is None:
                raise CommandError("not_found", f"no entity {key!r}")
            if not isinstance(command, str):
                raise CommandError("invalid_format", "command must be a string")
            clean = validate_command(merged_commands(entity.capabilities), command, payload.get("args", {}))
            self.appliance.command(entity.key, command, clean)
        except CommandError as err:
            if self.variant == "lax" and isinstance(payload, dict):
                return {"type": "result", "id": request_id, "ok": True, "state": self.state()["entities"].get(
                    payload.get("entity"), {"state": None, "attributes": {}})}
            return {"type": "result", "id": request_id, "ok": False,
                    "error": {"code": err.code, "message": err.message}}
        return {"type": "result", "id": request_id, "ok": True, "state": entity.snapshot()}

    # -- the mock -------------------------------------------------------------------------
    async def _call(self, path: str, interface: str, member: str, signature: str = "",
                    body: list[Any] | None = None) -> list[Any]:
        assert self.bus is not None
        reply = await self.bus.call(Message(destination="org.bluez", path=path, interface=interface, member=member,
                                            signature=signature, body=body or []))
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{member}: {reply.error_name} {reply.body}")
        return list(reply.body)

    async def _add(self, path: str, interface: str, props: dict[str, Variant],
                   methods: list[tuple[str, str, str, str]]) -> None:
        await self._call("/", MOCK, "AddObject", "ssa{sv}a(ssss)", [path, interface, props, methods])
        self._announce.append((path, interface, props))

    async def _announce_all(self, gatt_late: float | None = None) -> None:
        """InterfacesAdded for every object, GATT first: a real appliance's GATT table exists before its
        first advert, so the hub must not hear of the device while its characteristics are missing.
        ``gatt_late`` seconds: the device first and its GATT table later (the hub's cache goes stale)."""
        objects = list(reversed(self._announce))
        if gatt_late is not None:
            objects = objects[-1:] + objects[:-1]  # the device object was added first
        for n, (path, interface, props) in enumerate(objects):
            if gatt_late is not None and n == 1:
                await asyncio.sleep(gatt_late)
            await self._call("/", MOCK, "EmitSignal", "sssav", [
                OBJ_MANAGER, "InterfacesAdded", "oa{sa{sv}}",
                [Variant("o", path), Variant("a{sa{sv}}", {interface: props})]])
        self._announce.clear()

    async def start(self, gatt_late: float | None = None) -> None:
        """Put the appliance on the mock (its adapter must exist) and start advertising."""
        self.bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        await self._add_match(self.chars[profile.BLE_COMMAND_CHAR_UUID])
        self.bus.add_message_handler(self._on_message)
        if self.advert_interval is not None:
            self._radio = asyncio.get_running_loop().create_task(self._advertise())
        await self._publish(gatt_late)

    async def _publish(self, gatt_late: float | None = None) -> None:
        """The device object and its GATT table, as BlueZ creates them when it first hears the appliance."""
        uuid = profile.BLE_SERVICE_UUID
        await self._add(self.path, DEV_IF, {
            "Address": Variant("s", self.address), "AddressType": Variant("s", "public"),
            "Name": Variant("s", self.name), "Alias": Variant("s", self.name),
            "Adapter": Variant("o", self.adapter_path), "Paired": Variant("b", False),
            "Connected": Variant("b", False), "ServicesResolved": Variant("b", False),
            "Trusted": Variant("b", False), "Blocked": Variant("b", False), "RSSI": Variant("n", -58),
            "UUIDs": Variant("as", [uuid]), "ManufacturerData": Variant("a{qv}", {}),
            "ServiceData": Variant("a{sv}", {uuid: Variant("ay", self.service_data())}),
        }, [("Connect", "", "", _CONNECT_ONCE if self.variant == "no_reconnect" else _LINK % ("True", "True")),
            ("Disconnect", "", "",
             _DISCONNECT_ONCE if self.variant == "no_reconnect" else _LINK % ("False", "False")),
            ("Pair", "", "", ""), ("ConnectProfile", "s", "", ""), ("DisconnectProfile", "s", "", "")])
        await self._add(self.service, SVC_IF, {"UUID": Variant("s", uuid), "Primary": Variant("b", True),
                                               "Device": Variant("o", self.path), "Handle": Variant("q", 0x10)}, [])
        flags = {profile.BLE_DESCRIPTION_CHAR_UUID: ["read"], profile.BLE_STATE_CHAR_UUID: ["read", "notify"],
                 profile.BLE_COMMAND_CHAR_UUID: ["write", "notify" if self.variant == "bad_props" else "indicate"]}
        for char_uuid, path in self.chars.items():
            write = _WRITE if char_uuid == profile.BLE_COMMAND_CHAR_UUID else ""
            forgetful = self.variant == "no_resubscribe" and char_uuid == profile.BLE_STATE_CHAR_UUID
            start, stop = (_START_ONCE, _STOP_ONCE) if forgetful else (_NOTIFY % "True", _NOTIFY % "False")
            await self._add(path, CHR_IF, {
                "UUID": Variant("s", char_uuid), "Service": Variant("o", self.service),
                "Flags": Variant("as", flags[char_uuid]), "Value": Variant("ay", b""),
                "Notifying": Variant("b", False), "Handle": Variant("q", int(path[-4:], 16)),
                "MTU": Variant("q", self.frame_size + 3),
            }, [("ReadValue", "a{sv}", "ay", _READ), ("WriteValue", "aya{sv}", "", write),
                ("StartNotify", "", "", start), ("StopNotify", "", "", stop),
                ("QoapSetFrames", "aay", "", _SET_FRAMES)])
        await self._set_frames(profile.BLE_DESCRIPTION_CHAR_UUID, self.description())
        await self._set_frames(profile.BLE_STATE_CHAR_UUID, self.state())
        await self._announce_all(gatt_late)

    async def _add_match(self, path: str) -> None:
        assert self.bus is not None
        rule = f"type='signal',interface='{SIM_IF}',member='Written',path='{path}'"
        reply = await self.bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus", interface="org.freedesktop.DBus",
            member="AddMatch", signature="s", body=[rule]))
        if reply is None or reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"AddMatch failed: {reply.body if reply else None}")

    async def _advertise(self) -> None:
        """Adverts keep coming while the appliance is in range (BlueZ reports each as an RSSI change)."""
        rssi = -58
        while True:
            rssi = -58 if rssi == -59 else -59
            try:
                await self._call(self.path, MOCK, "UpdateProperties", "sa{sv}", [DEV_IF, {"RSSI": Variant("n", rssi)}])
            except RuntimeError:
                # An error reply: the device object is gone. The hub removed it (bleak-retry-connector does,
                # to drop a stale GATT cache); BlueZ creates it afresh at the next advert, GATT table and all.
                with contextlib.suppress(Exception):
                    await self._republish()
            except Exception:  # the mock may be down for a moment (a test restarting it)
                pass
            await asyncio.sleep(self.advert_interval or 1.0)

    async def _republish(self) -> None:
        for path in [*self.chars.values(), self.service]:
            with contextlib.suppress(RuntimeError):
                await self._call("/", MOCK, "RemoveObject", "s", [path])
        await self._publish()

    async def _set_frames(self, char_uuid: str, message: Any) -> None:
        frames = encode_frames(msgpack.packb(message), self.frame_size)
        await self._call(self.chars[char_uuid], CHR_IF, "QoapSetFrames", "aay", [frames])

    async def _notify(self, char_uuid: str, message: Any) -> None:
        if self.variant == "no_resubscribe" and not await self._notifying(char_uuid):
            return  # a real peripheral sends nothing while the client's CCCD is off
        for frame in encode_frames(msgpack.packb(message), self.frame_size):
            await self._call(self.chars[char_uuid], MOCK, "UpdateProperties", "sa{sv}",
                             [CHR_IF, {"Value": Variant("ay", frame)}])

    async def _notifying(self, char_uuid: str) -> bool:
        reply = await self._call(self.chars[char_uuid], "org.freedesktop.DBus.Properties", "Get", "ss",
                                 [CHR_IF, "Notifying"])
        return bool(reply[0].value)

    def _on_message(self, message: Message) -> bool:
        if message.member == "Written" and message.interface == SIM_IF:
            frame = bytes(message.body[0])
            if self.variant == "no_reassembly":
                payload: bytes | None = frame[1:]
            elif frame and frame[0] == MAX_FRAMES - 1 and self.variant != "no_oversize":
                # Frame 127 without the last bit: the message cannot end within the framing's limit (§7.2).
                self._writes = Reassembler()
                asyncio.get_running_loop().create_task(self._refuse("message longer than 128 frames"))
                return False
            else:
                payload = self._writes.feed(frame)
            if payload is not None:
                asyncio.get_running_loop().create_task(self._handle_command(payload))
        return False

    async def _refuse(self, why: str) -> None:
        with contextlib.suppress(Exception):
            await self._notify(profile.BLE_COMMAND_CHAR_UUID, {"type": "result", "id": None, "ok": False,
                                                                "error": {"code": "invalid_format", "message": why}})

    async def _handle_command(self, payload: bytes) -> None:
        try:
            request = msgpack.unpackb(payload)
        except ValueError as err:
            if self.variant == "crashy":
                with contextlib.suppress(Exception):
                    await self.drop_link()
                return
            result: dict[str, Any] = {"type": "result", "id": None, "ok": False,
                                      "error": {"code": "invalid_format", "message": f"not msgpack: {err}"}}
        else:
            self.commands.append(request)
            result = self.execute(request)
        try:
            await self.flush()
            await self._notify(profile.BLE_COMMAND_CHAR_UUID, result)
        except Exception:  # the link went away mid-answer: the hub times out and retries
            _LOGGER.debug("QOAP BLE simulator could not answer", exc_info=True)

    async def flush(self) -> None:
        """Notify every changed entity (§5 ``state`` messages) and refresh the readable state."""
        changed, self.appliance.changed = self.appliance.changed, []
        for key in dict.fromkeys(changed):
            if self.variant == "silent":
                break
            await self._notify(profile.BLE_STATE_CHAR_UUID,
                               {"type": "state", "entity": key, **self.appliance.entities[key].snapshot()})
        if changed:
            await self._set_frames(profile.BLE_STATE_CHAR_UUID, self.state())

    async def drop_link(self) -> None:
        """The link drops (out of range, interference): BlueZ reports the device disconnected."""
        await self._call(self.path, MOCK, "UpdateProperties", "sa{sv}", [DEV_IF, {
            "Connected": Variant("b", False), "ServicesResolved": Variant("b", False)}])

    async def set_state(self, key: str, state: Any) -> None:
        """Change an entity on the appliance's side (a hand turning the bolt) and notify it."""
        self.appliance.set(key, state)
        await self.flush()

    async def stop(self) -> None:
        if self._radio is not None:
            self._radio.cancel()
            await asyncio.gather(self._radio, return_exceptions=True)
            self._radio = None
        if self.bus is not None:
            self.bus.disconnect()
            self.bus = None
