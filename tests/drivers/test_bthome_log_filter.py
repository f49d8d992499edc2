"""bthome-ble's per-advert ERROR lines, limited per device by our driver (anyone in radio range can send them)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from drivers.ble_passive import PassiveBleConnection
from drivers.bthome import log_filter
from drivers.bthome.driver import BTHomeDriver
from drivers.bthome.payload import SERVICE_UUID, encode
from hub.core import Hub
from hub.discovery.models import BleInfo

VERSION_3 = bytes([0x60, 0x02, 0x10, 0x09])  # device-info byte says BTHome version 3: there is no such version


def advert(address: str, payload: bytes) -> BleInfo:
    return BleInfo(address=address, name=None, rssi=-60, service_data={SERVICE_UUID: payload},
                   service_uuids=(SERVICE_UUID,), connectable=False)


@pytest.fixture
def parser_records() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger(log_filter.PARSER_LOGGER)
    logger.addHandler(handler)
    saved = log_filter._FILTER
    log_filter._FILTER = log_filter.ParserLogFilter()  # a fresh memory for each test
    logger.removeFilter(saved)
    yield records
    logger.removeHandler(handler)
    logger.removeFilter(log_filter._FILTER)
    log_filter._FILTER = saved


def test_unknown_version_flood_logs_once_per_device(parser_records: list[logging.LogRecord]) -> None:
    driver = BTHomeDriver()
    for _ in range(200):
        for address in ("A4:C1:38:00:00:01", "A4:C1:38:00:00:02"):
            assert driver.identify(advert(address, VERSION_3)) is None
    assert len(parser_records) == 2, [r.getMessage() for r in parser_records]
    assert "version 3" in parser_records[0].getMessage()
    # A good sensor is still found.
    found = driver.identify(advert("A4:C1:38:00:00:03", encode({"temperature": 21.5})))
    assert found is not None and found.key == "A4:C1:38:00:00:03"


def test_forged_addresses_share_a_budget(parser_records: list[logging.LogRecord]) -> None:
    driver = BTHomeDriver()
    for i in range(500):  # a new random address per advert
        driver.identify(advert(f"A4:C1:38:00:{i // 256:02X}:{i % 256:02X}", VERSION_3))
    assert len(parser_records) == 20


async def test_adopted_sensor_sending_bad_adverts_logs_once(parser_records: list[logging.LogRecord], hub: Hub) -> None:
    driver = BTHomeDriver()
    address = "A4:C1:38:00:00:09"
    appliance = driver.identify(advert(address, encode({"temperature": 20.0})))
    assert appliance is not None
    conn = driver.connect(hub, "dev1", appliance)
    assert isinstance(conn, PassiveBleConnection)
    for _ in range(100):
        conn.discovery_updated(advert(address, VERSION_3))
    assert len(parser_records) == 1


def test_suppressed_count_is_reported_later() -> None:
    flt = log_filter.ParserLogFilter(interval=0.0)
    record = logging.LogRecord(log_filter.PARSER_LOGGER, logging.ERROR, __file__, 1, "%s: bad version %s",
                               ("00:01", 3), None)
    assert flt.filter(record) and record.getMessage() == "00:01: bad version 3"
    strict = log_filter.ParserLogFilter(interval=3600)
    assert strict.filter(logging.makeLogRecord({"msg": "%s: x", "args": ("a",), "levelno": logging.ERROR}))
    assert not strict.filter(logging.makeLogRecord({"msg": "%s: x", "args": ("a",), "levelno": logging.ERROR}))
