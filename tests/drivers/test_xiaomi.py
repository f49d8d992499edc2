"""Xiaomi (MiBeacon) identify() and parsing on hostile adverts: never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from xiaomi_ble import XiaomiBluetoothDeviceData

from qilu_hub.discovery.models import BleInfo
from qilu_hub.drivers.xiaomi.driver import XiaomiDriver
from qilu_hub.drivers.xiaomi.payload import SERVICE_UUID, encode
from qilu_hub.sdk._passive_ble import parse_advert, update_to_data

MAC = "A4:C1:38:00:11:22"


def advert(payload: bytes) -> BleInfo:
    return BleInfo(address=MAC, name=None, rssi=-60, service_data={SERVICE_UUID: payload},
                   service_uuids=(SERVICE_UUID,), connectable=False, time=1000.0)


def test_simulator_payload_is_identified() -> None:
    assert XiaomiDriver().identify(advert(encode(MAC, 1, temperature=21.5, humidity=40))) is not None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(0, 255))
def test_identify_and_parse_never_raise(tail: bytes, first: int) -> None:
    # Mostly valid frame-control bytes, so the fuzzing reaches the object parser, not only the header check.
    base = encode(MAC, first, temperature=20.0)
    info = advert(base[:first % len(base)] + tail)
    if XiaomiDriver().identify(info) is not None:
        update = parse_advert(XiaomiBluetoothDeviceData(), info)
        if update is not None:
            update_to_data(update)
