"""One BLE advert -> BleInfo -> BTHome / Xiaomi identify() and the parser a connection feeds it to."""

from __future__ import annotations

import atheris

INSTRUMENT = ("qilu_hub.discovery", "qilu_hub.drivers", "bthome_ble", "xiaomi_ble")
BTHOME = "0000fcd2-0000-1000-8000-00805f9b34fb"
XIAOMI = "0000fe95-0000-1000-8000-00805f9b34fb"
SEEDS = [
    b"\x00\x00\x40\x02\xc4\x09\x03\xbf\x13",
    b"\x01\x00\x50\x20\x98\x00\x01\x02\x03\x04\x05\x06\x0d\x10\x04\xd2\x00\xe8\x01",
]

_DRIVERS: list = []


def setup() -> None:
    from bthome_ble import BTHomeBluetoothDeviceData
    from xiaomi_ble import XiaomiBluetoothDeviceData

    from qilu_hub.drivers.bthome.driver import BTHomeDriver
    from qilu_hub.drivers.xiaomi.driver import XiaomiDriver

    _DRIVERS.extend([(BTHomeDriver(), BTHomeBluetoothDeviceData), (XiaomiDriver(), XiaomiBluetoothDeviceData)])


def one(data: bytes) -> None:
    from qilu_hub.discovery.parse import ble_info
    from qilu_hub.sdk._passive_ble import parse_advert, update_to_data

    fdp = atheris.FuzzedDataProvider(data)
    uuid = (BTHOME, XIAOMI, fdp.ConsumeUnicodeNoSurrogates(36))[fdp.ConsumeIntInRange(0, 2)]
    name = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 30)) if fdp.ConsumeBool() else None
    manufacturer = {fdp.ConsumeIntInRange(-1, 70000): fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 30))} \
        if fdp.ConsumeBool() else {}
    payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    rest = fdp.ConsumeBytes(fdp.remaining_bytes())
    service_data = {uuid: payload}
    if rest:
        service_data[BTHOME if uuid != BTHOME else XIAOMI] = rest
    info = ble_info("A4:C1:38:00:11:22", name, -60, manufacturer, service_data, [uuid], now=1000.0)
    if info is None:
        return
    for driver, factory in _DRIVERS:
        if driver.identify(info) is None:
            continue
        update = parse_advert(factory(), info)  # as PassiveBleConnection.discovery_updated does
        if update is not None:
            update_to_data(update)
