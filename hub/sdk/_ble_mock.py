"""Put simulated BLE sensors on a mock BlueZ (python-dbusmock's ``bluez5`` template on a private D-Bus), so
bleak's real BlueZ backend, and anything built on it, sees their adverts as from a radio.

Set-up (tests do it themselves): a private bus ``dbus-daemon --session --address=unix:path=SOCK``,
``DBUS_SYSTEM_BUS_ADDRESS=unix:path=SOCK python -m dbusmock --system --template bluez5``.
The template types ManufacturerData and ServiceData wrongly when it creates a device, so both are
set with UpdateProperties.
"""

from __future__ import annotations

from typing import Any, Protocol

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

MOCK = "org.freedesktop.DBus.Mock"
BLUEZ_MOCK = "org.bluez.Mock"


class BleSimulator(Protocol):
    address: str

    def service_data(self) -> bytes: ...


class BluezMock:
    """Drives the mock: one adapter, and a device per simulator whose ServiceData follows the simulator."""

    def __init__(self, adapter: str = "hci0") -> None:
        self.adapter = adapter
        self.bus: MessageBus | None = None
        self._paths: dict[str, str] = {}

    async def connect(self, reset: bool = True) -> None:
        self.bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        if reset:
            await self._call("/", MOCK, "Reset")
        await self._call("/", BLUEZ_MOCK, "AddAdapter", "ss", [self.adapter, "qilu-hub"])

    async def _call(self, path: str, interface: str, member: str, signature: str = "", body: Any = ()) -> Any:
        assert self.bus is not None
        reply = await self.bus.call(Message(destination="org.bluez", path=path, interface=interface, member=member,
                                            signature=signature, body=list(body)))
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{member}: {reply.error_name} {reply.body}")
        return reply.body

    async def advertise(self, sim: BleSimulator, uuid: str, name: str = "", rssi: int = -60) -> None:
        """Show the simulator's current advert (adding the device the first time)."""
        path = self._paths.get(sim.address)
        if path is None:
            path = (await self._call("/", BLUEZ_MOCK, "AddDevice", "sss", [self.adapter, sim.address, name]))[0]
            self._paths[sim.address] = path
        await self._call(path, MOCK, "UpdateProperties", "sa{sv}", ["org.bluez.Device1", {
            "ManufacturerData": Variant("a{qv}", {}),
            "ServiceData": Variant("a{sv}", {uuid: Variant("ay", sim.service_data())}),
            "UUIDs": Variant("as", [uuid]),
            "RSSI": Variant("n", rssi),
        }])

    async def close(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
            self.bus = None
