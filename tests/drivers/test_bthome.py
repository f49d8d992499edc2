"""BTHome identify() on hostile adverts: found by fuzz/targets/ble.py, kept as regressions and properties."""

from __future__ import annotations

from bthome_ble import BTHomeBluetoothDeviceData
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ble_passive import to_service_info, update_to_data
from drivers.bthome.driver import BTHomeDriver
from drivers.bthome.payload import SERVICE_UUID
from hub.discovery.models import BleInfo


def advert(payload: bytes) -> BleInfo:
    return BleInfo(address="A4:C1:38:00:11:22", name=None, rssi=-60, manufacturer_data={},
                   service_data={SERVICE_UUID: payload}, service_uuids=(SERVICE_UUID,), adapter="hci0",
                   connectable=False, time=1000.0)


def test_empty_service_data_is_not_a_bthome_sensor() -> None:
    # fuzz crash: bthome_ble raised IndexError reading the header byte of an empty payload
    assert BTHomeDriver().identify(advert(b"")) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_identify_and_parse_never_raise(payload: bytes) -> None:
    info = advert(payload)
    if BTHomeDriver().identify(info) is not None:
        update_to_data(BTHomeBluetoothDeviceData().update(to_service_info(info)))
