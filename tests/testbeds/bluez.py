"""BLE without a radio: python-dbusmock's bluez5 template on a private D-Bus system bus.

``MockBluez`` starts a private ``dbus-daemon`` and the mock BlueZ service, and points
``DBUS_SYSTEM_BUS_ADDRESS`` at it (restored on ``stop()``), so bleak's real BlueZ
backend talks to it. The async helpers drive it over D-Bus with dbus-fast:

* ``add_adapter("hci0")`` (powered, role central), ``remove_adapter``;
* ``add_device(adapter, address, name, manufacturer_data, service_data, rssi, uuids,
  connectable)``: a ``Device1`` object with correctly typed ``ManufacturerData``
  (``a{qv}``) and ``ServiceData`` (``a{sv}``); connectable devices get Connect/Disconnect;
* ``update_device(path, ...)``: new advert contents (PropertiesChanged, as BlueZ does);
* ``add_gatt(device_path, service_uuid, char_uuid)``: a service and a read/write/notify
  characteristic whose writes echo as notifications;
* ``restart_service()``: kill and respawn the mock BlueZ (adapter loss), ``restart_bus()``.

Usage (pytest): see ``tests/discovery/conftest.py``'s ``bluez`` fixture.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

MOCK = "org.freedesktop.DBus.Mock"
BLUEZ_MOCK = "org.bluez.Mock"
DEV_IF, SVC_IF, CHR_IF = "org.bluez.Device1", "org.bluez.GattService1", "org.bluez.GattCharacteristic1"
OBJ_MANAGER = "org.freedesktop.DBus.ObjectManager"


def can_run() -> str | None:
    """None when the mock can run here, else why not."""
    if shutil.which("dbus-daemon") is None:
        return "needs dbus-daemon (apt-get install dbus)"
    try:
        import dbusmock  # noqa: F401
    except ImportError:
        return "needs python-dbusmock (pip install python-dbusmock)"
    return None


class MockBluez:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="qd-bluez-"))
        self.address = f"unix:path={self.dir / 'system_bus_socket'}"
        self._daemon: subprocess.Popen[bytes] | None = None
        self._mock: subprocess.Popen[bytes] | None = None
        self._saved_env: str | None = None
        self.bus: MessageBus | None = None

    # -- processes ----------------------------------------------------------------------
    def start(self) -> MockBluez:
        self._saved_env = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        self._start_daemon()
        self._start_mock()
        return self

    def _start_daemon(self) -> None:
        sock = self.dir / "system_bus_socket"
        sock.unlink(missing_ok=True)
        self._daemon = subprocess.Popen(
            ["dbus-daemon", "--session", f"--address={self.address}", "--nofork", "--nopidfile", "--nosyslog"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not sock.exists():
            if time.monotonic() > deadline or self._daemon.poll() is not None:
                raise RuntimeError("private dbus-daemon did not start")
            time.sleep(0.01)

    def _start_mock(self) -> None:
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        self._mock = subprocess.Popen([sys.executable, "-m", "dbusmock", "--system", "--template", "bluez5"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self._name_owned():
            if time.monotonic() > deadline or self._mock.poll() is not None:
                raise RuntimeError("mock BlueZ did not come up on the private bus")
            time.sleep(0.05)

    def _name_owned(self) -> bool:
        out = subprocess.run(
            ["dbus-send", f"--bus={self.address}", "--print-reply", "--dest=org.freedesktop.DBus",
             "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:org.bluez"],
            capture_output=True, text=True)
        return "boolean true" in out.stdout

    def _kill(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    async def restart_service(self) -> None:
        """BlueZ crashes and comes back: every adapter and device is gone until re-added."""
        self._kill(self._mock)
        await asyncio.to_thread(self._start_mock)

    async def restart_bus(self) -> None:
        """The system bus itself restarts (every client is disconnected)."""
        await self.close_client()
        self._kill(self._mock)
        self._kill(self._daemon)
        await asyncio.to_thread(self._start_daemon)
        await asyncio.to_thread(self._start_mock)

    async def close_client(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
            self.bus = None

    def stop(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
            self.bus = None
        self._kill(self._mock)
        self._kill(self._daemon)
        if self._saved_env is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self._saved_env
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- D-Bus helpers ------------------------------------------------------------------
    async def call(self, path: str, interface: str, member: str, signature: str = "", body: list[Any] | None = None,
                   ) -> list[Any]:
        if self.bus is None or not self.bus.connected:
            self.bus = await MessageBus(bus_address=self.address, bus_type=BusType.SYSTEM).connect()
        reply = await self.bus.call(Message(destination="org.bluez", path=path, interface=interface, member=member,
                                            signature=signature, body=body or []))
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{member}: {reply.error_name} {reply.body}")
        return list(reply.body)

    async def add_adapter(self, name: str = "hci0") -> str:
        return str((await self.call("/", BLUEZ_MOCK, "AddAdapter", "ss", [name, "qilu-hub"]))[0])

    async def remove_adapter(self, name: str = "hci0") -> None:
        await self.call("/", BLUEZ_MOCK, "RemoveAdapter", "s", [name])

    @staticmethod
    def _advert_props(name: str | None, manufacturer_data: Mapping[int, bytes] | None,
                      service_data: Mapping[str, bytes] | None, rssi: int | None,
                      uuids: list[str] | None) -> dict[str, Variant]:
        props: dict[str, Variant] = {}
        if name is not None:
            props["Name"] = Variant("s", name)
            props["Alias"] = Variant("s", name)
        if manufacturer_data is not None:
            props["ManufacturerData"] = Variant("a{qv}", {k: Variant("ay", v) for k, v in manufacturer_data.items()})
        if service_data is not None:
            props["ServiceData"] = Variant("a{sv}", {k: Variant("ay", v) for k, v in service_data.items()})
        if rssi is not None:
            props["RSSI"] = Variant("n", rssi)
        if uuids is not None:
            props["UUIDs"] = Variant("as", uuids)
        return props

    async def add_device(self, adapter: str, address: str, name: str | None = None,
                         manufacturer_data: Mapping[int, bytes] | None = None,
                         service_data: Mapping[str, bytes] | None = None, rssi: int = -60,
                         uuids: list[str] | None = None, connectable: bool = True) -> str:
        adapter_path = adapter if adapter.startswith("/") else f"/org/bluez/{adapter}"
        path = f"{adapter_path}/dev_{address.replace(':', '_')}"
        props = {
            "Address": Variant("s", address), "AddressType": Variant("s", "public"),
            "Adapter": Variant("o", adapter_path), "Paired": Variant("b", False),
            "Connected": Variant("b", False), "ServicesResolved": Variant("b", False),
            "Trusted": Variant("b", False), "Blocked": Variant("b", False),
            **self._advert_props(name, manufacturer_data or {}, service_data or {}, rssi,
                                 uuids if uuids is not None else list(service_data or {})),
        }
        methods: list[tuple[str, str, str, str]] = []
        if connectable:
            connect = ("self.UpdateProperties('org.bluez.Device1', "
                       "{'Connected': dbus.Boolean(True), 'ServicesResolved': dbus.Boolean(True)})")
            disconnect = ("self.UpdateProperties('org.bluez.Device1', "
                          "{'Connected': dbus.Boolean(False), 'ServicesResolved': dbus.Boolean(False)})")
            methods = [("Connect", "", "", connect), ("Disconnect", "", "", disconnect), ("Pair", "", "", ""),
                       ("ConnectProfile", "s", "", ""), ("DisconnectProfile", "s", "", "")]
        await self.call("/", MOCK, "AddObject", "ssa{sv}a(ssss)", [path, DEV_IF, props, methods])
        await self._interfaces_added(path, DEV_IF, props)
        return path

    async def _interfaces_added(self, path: str, interface: str, props: dict[str, Variant]) -> None:
        await self.call("/", MOCK, "EmitSignal", "sssav", [
            OBJ_MANAGER, "InterfacesAdded", "oa{sa{sv}}",
            [Variant("o", path), Variant("a{sa{sv}}", {interface: props})]])

    async def update_device(self, path: str, name: str | None = None,
                            manufacturer_data: Mapping[int, bytes] | None = None,
                            service_data: Mapping[str, bytes] | None = None, rssi: int | None = None,
                            uuids: list[str] | None = None) -> None:
        props = self._advert_props(name, manufacturer_data, service_data, rssi, uuids)
        await self.call(path, MOCK, "UpdateProperties", "sa{sv}", [DEV_IF, props])

    async def remove_device(self, adapter: str, path: str) -> None:
        adapter_path = adapter if adapter.startswith("/") else f"/org/bluez/{adapter}"
        await self.call(adapter_path, "org.bluez.Adapter1", "RemoveDevice", "o", [path])

    async def add_gatt(self, device_path: str, service_uuid: str, char_uuid: str, value: bytes = b"\x00") -> str:
        svc = f"{device_path}/service000a"
        chr_ = f"{svc}/char000b"
        sprops = {"UUID": Variant("s", service_uuid), "Primary": Variant("b", True),
                  "Device": Variant("o", device_path), "Handle": Variant("q", 0x0A)}
        cprops = {"UUID": Variant("s", char_uuid), "Service": Variant("o", svc),
                  "Flags": Variant("as", ["read", "write", "notify"]), "Value": Variant("ay", value),
                  "Notifying": Variant("b", False), "Handle": Variant("q", 0x0B), "MTU": Variant("q", 247)}
        await self.call("/", MOCK, "AddObject", "ssa{sv}a(ssss)", [svc, SVC_IF, sprops, []])
        await self.call("/", MOCK, "AddObject", "ssa{sv}a(ssss)", [chr_, CHR_IF, cprops, [
            ("ReadValue", "a{sv}", "ay", "ret = self.props['org.bluez.GattCharacteristic1']['Value']"),
            ("WriteValue", "aya{sv}", "",
             "self.UpdateProperties('org.bluez.GattCharacteristic1', {'Value': dbus.Array(args[0], signature='y')})"),
            ("StartNotify", "", "",
             "self.UpdateProperties('org.bluez.GattCharacteristic1', {'Notifying': dbus.Boolean(True)})"),
            ("StopNotify", "", "",
             "self.UpdateProperties('org.bluez.GattCharacteristic1', {'Notifying': dbus.Boolean(False)})"),
        ]])
        await self._interfaces_added(svc, SVC_IF, sprops)
        await self._interfaces_added(chr_, CHR_IF, cprops)
        return chr_
