"""The BLE parser libraries' per-advert log lines, limited per device by our drivers (anyone in radio range
can send such adverts)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from qilu_hub.core import Hub
from qilu_hub.discovery.models import BleInfo
from qilu_hub.drivers.bthome.driver import BTHomeDriver
from qilu_hub.drivers.bthome.payload import SERVICE_UUID, encode
from qilu_hub.drivers.xiaomi import payload as mibeacon
from qilu_hub.drivers.xiaomi.driver import XiaomiDriver
from qilu_hub.sdk import DeviceContext
from qilu_hub.sdk import _parser_log as parser_log
from qilu_hub.sdk._passive_ble import PassiveBleConnection

VERSION_3 = bytes([0x60, 0x02, 0x10, 0x09])  # device-info byte says BTHome version 3: there is no such version
LIBRARIES = ("bthome_ble.parser", "xiaomi_ble.parser")


def advert(address: str, payload: bytes, uuid: str = SERVICE_UUID) -> BleInfo:
    return BleInfo(address=address, name=None, rssi=-60, service_data={uuid: payload}, service_uuids=(uuid,),
                   connectable=False)


def unknown_xiaomi(address: str) -> BleInfo:
    return advert(address, mibeacon.encode(address, 1, temperature=20.0, humidity=40.0, product_id=0x7777),
                  mibeacon.SERVICE_UUID)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """What the libraries' loggers let through, with fresh filters (each test starts with empty memory)."""
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    handler = Keep(logging.INFO)
    saved = dict(parser_log._FILTERS)
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if name in saved:
            logger.removeFilter(saved[name])
    parser_log._FILTERS.clear()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)  # the hub's default level: xiaomi-ble's INFO lines are shown
    yield kept
    root.setLevel(level)
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        logger.removeHandler(handler)
        if name in parser_log._FILTERS:
            logger.removeFilter(parser_log._FILTERS[name])
        if name in saved:
            logger.addFilter(saved[name])
    parser_log._FILTERS.clear()
    parser_log._FILTERS.update(saved)


def test_unknown_bthome_version_flood_logs_once_per_device(records: list[logging.LogRecord]) -> None:
    driver = BTHomeDriver()
    for _ in range(200):
        for address in ("A4:C1:38:00:00:01", "A4:C1:38:00:00:02"):
            assert driver.identify(advert(address, VERSION_3)) is None
    assert len(records) == 2, [r.getMessage() for r in records]
    assert "version 3" in records[0].getMessage()
    found = driver.identify(advert("A4:C1:38:00:00:03", encode({"temperature": 21.5})))
    assert found is not None and found.key == "A4:C1:38:00:00:03"  # a good sensor is still found


def test_forged_addresses_share_a_budget(records: list[logging.LogRecord]) -> None:
    driver = BTHomeDriver()
    for i in range(500):  # a new random address per advert
        driver.identify(advert(f"A4:C1:38:00:{i // 256:02X}:{i % 256:02X}", VERSION_3))
    assert len(records) == 20


async def test_adopted_sensor_sending_bad_adverts_logs_once(records: list[logging.LogRecord], hub: Hub) -> None:
    driver = BTHomeDriver()
    address = "A4:C1:38:00:00:09"
    appliance = driver.identify(advert(address, encode({"temperature": 20.0})))
    assert appliance is not None
    conn = driver.connect(DeviceContext(hub, "bthome", "dev1", appliance.key), appliance)
    assert isinstance(conn, PassiveBleConnection)
    for _ in range(100):
        conn.discovery_updated(advert(address, VERSION_3))
    assert len(records) == 1


def test_unknown_xiaomi_product_flood_logs_once(records: list[logging.LogRecord]) -> None:
    driver = XiaomiDriver()
    for _ in range(300):
        driver.identify(unknown_xiaomi("A4:C1:38:AA:00:01"))
    assert len(records) == 1, [r.getMessage() for r in records]
    assert "UNKNOWN Xiaomi device" in records[0].getMessage()


def test_suppressed_count_is_reported_later() -> None:
    flt = parser_log.ParserLogFilter(interval=0.0)
    record = logging.makeLogRecord({"msg": "%s: bad version %s", "args": ("00:01", 3), "levelno": logging.ERROR})
    assert flt.filter(record) and record.getMessage() == "00:01: bad version 3"
    strict = parser_log.ParserLogFilter(interval=3600)
    for _ in range(3):
        strict.filter(logging.makeLogRecord({"msg": "%s: x", "args": ("a",), "levelno": logging.ERROR}))
    strict.limiter.interval = 0.0  # the hour has passed
    later = logging.makeLogRecord({"msg": "%s: x", "args": ("a",), "levelno": logging.ERROR})
    assert strict.filter(later) and later.getMessage() == "a: x (2 similar lines suppressed)"
    assert strict.filter(logging.makeLogRecord({"msg": "debug", "levelno": logging.DEBUG}))
