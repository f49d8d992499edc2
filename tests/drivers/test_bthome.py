"""BTHome identify() on hostile adverts: found by fuzz/targets/ble.py, kept as regressions and properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from bthome_ble import BTHomeBluetoothDeviceData
from hypothesis import given, settings
from hypothesis import strategies as st

from qilu_hub.core import Hub
from qilu_hub.discovery.models import BleInfo
from qilu_hub.drivers.bthome.driver import BTHomeDriver
from qilu_hub.drivers.bthome.payload import SERVICE_UUID
from qilu_hub.sdk import DeviceContext, DiscoveredAppliance
from qilu_hub.sdk._passive_ble import PassiveBleConnection, parse_advert, update_to_data

CRASHERS = [  # service data (hex) of adverts that crashed bthome-ble or update_to_data (fuzz/targets/ble.py)
    {
        "0000181c-0000-1000-8000-00805f9b34fb":
            "0000b700000000000000000000000000000000000000400000000000000000000000000000000000000000e200000000000000000000000000ffffff",
        "0000fcd2-0000-1000-8000-00805f9b34fb":
            "ffffffff",
    },
    {
        "0000181c-0000-1000-8000-00805f9b34fb":
            "000000000000000000000000000000000000000000004000000000000000000000f0f0ed0000ed00d548d5d91122e8e8e8e8e8e8e8e8e8e8e8e8e8e8",
        "0000fcd2-0000-1000-8000-00805f9b34fb":
            "e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e800000000000000000000e2000000000000ffffffffff",
    },
    {
        "0000181c-0000-1000-8000-00805f9b34fb":
            "383000fb940400000000000000d5d5d5d5d5d5d5d52900f2f2b2f2f2110d0d0d0dffffffffffffffffffffffffffff",
        "0000fcd2-0000-1000-8000-00805f9b34fb":
            "ffffd5d5d5d5d5d500d5000000290048483f005c5c5c5c5c4800ffffffffff00fffffffffff2",
    },
    {
        "0000181c-0000-1000-8000-00805f9b34fb":
            "303830356639e23331356d383030346607625c010000000030306d",
        "0000fcd2-0000-1000-8000-00805f9b34fb":
            "38303031002900f2f23100290031f2f211f2f2b2f251515151515151515151515151515151515151515151515151515151515151515151515151515151515151515130303030666435302d303030302d313030302d383030302d30303830356639623334666251515151515151515151515151515151515151515151515151515151515151515151515151510d0d0d0dff32f2110d0d0d0dffa3",
    },
    {
        "0000181c-0000-1000-8000-00805f9b34fb":
            "8331622d3082828282828282828282828282828282828282828282828282820d0d0dff32a38282828282828282828282828282828282c2828282",
        "0000fcd2-0000-1000-8000-00805f9b34fb":
            "8282828282828282828282825c05000000000000003a3a3a3a203a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a",
    },
    {
        "0000181c-0000-1000-8000-00805f9b34fb":
            "003030303031d5d5d500d50000002900afafaf48485c5c5c5c5c5c5c5c2548000029000000d500d5d5000030306d000000000000ffffffffffffffff",
        "0000fcd2-0000-1000-8000-00805f9b34fb":
            "fffffbff5c0000000000ffffffffffffff",
    },
    {
        "0000181c-0000-1000-8000-00805f9b34fb":
            "000000000000000000000000625c000000838383838383838383fffff6ff8383838383838383838383838383838383838383830000000000ffffffff",
        "0000fcd2-0000-1000-8000-00805f9b34fb":
            "ffffffffffffffff",
    },
    {
        "0000181c-0000-1000-8000-00805f9b34fb":
            "00b1485c5c5c00000000ffffffff480000000000250000000d0dff",
        "0000fcd2-0000-1000-8000-00805f9b34fb":
            "a3",
    },
    {
        "0000181c-0000-1000-8000-00805f9b34fb":
            "000000000000ce0000000000000000000000000000000040000000000000000000000000000000000000b10000e200000000000000000000000000ff",
        "0000fcd2-0000-1000-8000-00805f9b34fb":
            "ffffffffffff",
    },
]


def advert(payload: bytes) -> BleInfo:
    return BleInfo(address="A4:C1:38:00:11:22", name=None, rssi=-60, manufacturer_data={},
                   service_data={SERVICE_UUID: payload}, service_uuids=(SERVICE_UUID,), adapter="hci0",
                   connectable=False, time=1000.0)


def test_empty_service_data_is_not_a_bthome_sensor() -> None:
    # fuzz crash: bthome_ble raised IndexError reading the header byte of an empty payload
    assert BTHomeDriver().identify(advert(b"")) is None


@pytest.mark.parametrize("service_data", CRASHERS)
def test_library_crashes_cost_the_advert_only(service_data: dict[str, str], tmp_path: Path) -> None:
    info = BleInfo(address="A4:C1:38:00:11:22", name=None, rssi=-60, manufacturer_data={},
                   service_data={k: bytes.fromhex(v) for k, v in service_data.items()},
                   service_uuids=tuple(service_data), connectable=False, time=1000.0)
    driver = BTHomeDriver()
    driver.identify(info)  # raised OverflowError / AssertionError / ValueError inside bthome-ble
    appliance = DiscoveredAppliance(key=info.address, title="t", identifiers=(("bthome", info.address),))
    conn = driver.connect(DeviceContext(Hub(tmp_path, {}, recorder=False), "bthome", "dev", appliance.key), appliance)
    assert isinstance(conn, PassiveBleConnection)
    conn.discovery_updated(info)  # the sensor is kept; the bad advert is counted
    assert conn.adverts + conn.bad_adverts == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_identify_and_parse_never_raise(payload: bytes) -> None:
    info = advert(payload)
    if BTHomeDriver().identify(info) is not None:
        update = parse_advert(BTHomeBluetoothDeviceData(), info)
        if update is not None:
            update_to_data(update)
