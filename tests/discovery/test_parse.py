"""Parsers of radio data: garbage in, a clean value or None out, never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qilu_hub.appliances.matching import MatcherIndex, mdns_type
from qilu_hub.discovery.models import BleInfo, MdnsInfo
from qilu_hub.discovery.parse import MAX_AD_BYTES, ParseStats, ble_info, decode_txt, mdns_info, normalize_uuid

from .qd_driver import QD_COMPANY, QD_TYPE, QdDriver

anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(),
                     st.lists(st.integers(), max_size=3))


@given(st.dictionaries(st.one_of(st.binary(max_size=300), st.text(max_size=20), st.integers()),
                       st.one_of(st.none(), st.binary(max_size=400), st.text(max_size=300), st.integers()),
                       max_size=100))
def test_decode_txt_never_raises_and_keeps_only_valid_keys(props: dict[object, object]) -> None:
    stats = ParseStats()
    out = decode_txt(props, stats)
    assert len(out) <= 64
    for key, value in out.items():
        assert key and key == key.lower() and "=" not in key and all(" " <= c <= "~" for c in key)
        assert isinstance(value, str)
    originals = {(k.decode() if isinstance(k, bytes) else k).lower() for k in props
                 if isinstance(k, str) or (isinstance(k, bytes) and k.isascii())}
    assert set(out) <= originals
    assert len(out) + sum(stats.values()) >= min(len(props), 64)  # everything kept or counted as dropped


def test_decode_txt_examples() -> None:
    stats = ParseStats()
    out = decode_txt({b"ID": b"abc", b"flag": None, b"": b"x", b"bad\x00": b"1", b"utf": b"\xff",
                      b"big": b"x" * 300}, stats)
    assert out == {"id": "abc", "flag": "", "utf": "\ufffd"}
    assert stats == {"txt_key_invalid": 2, "txt_value_oversize": 1}


@given(anything, anything, anything,
       st.dictionaries(st.integers(-5, 70000),
                       st.one_of(st.binary(max_size=300), st.text(max_size=5), st.none()), max_size=40),
       st.dictionaries(st.text(max_size=40), st.one_of(st.binary(max_size=300), st.integers()), max_size=40),
       anything)
@settings(max_examples=300)
def test_ble_info_never_raises(address: object, name: object, rssi: object, mfr: dict[int, object],
                               svc: dict[str, object], uuids: object) -> None:
    stats = ParseStats()
    info = ble_info(address, name, rssi, mfr, svc, uuids, stats=stats)
    if info is None:
        assert stats["ble_address_invalid"] == 1
        return
    assert all(0 <= k <= 0xFFFF and len(v) <= MAX_AD_BYTES for k, v in info.manufacturer_data.items())
    assert all(normalize_uuid(k) == k and len(v) <= MAX_AD_BYTES for k, v in info.service_data.items())
    assert -127 <= info.rssi <= 20


@given(st.text(max_size=80), st.text(max_size=80), st.lists(st.text(max_size=20), max_size=3),
       st.one_of(st.none(), st.integers(-10, 70000)))
def test_mdns_info_never_raises(type_: str, name: str, addresses: list[str], port: int | None) -> None:
    info = mdns_info(type_, name, name, addresses, port, {b"k": b"v"})
    assert info is None or 0 < info.port < 65536


def test_uuid_forms() -> None:
    assert normalize_uuid("FCD2") == "0000fcd2-0000-1000-8000-00805f9b34fb"
    assert normalize_uuid("0000FCD2-0000-1000-8000-00805F9B34FB") == "0000fcd2-0000-1000-8000-00805f9b34fb"
    assert normalize_uuid("not-a-uuid") is None and normalize_uuid(5) is None


def test_matcher_index_dispatches_by_type_and_company() -> None:
    driver = QdDriver()
    index = MatcherIndex([driver])
    assert index.match(MdnsInfo(QD_TYPE, "a." + QD_TYPE, "a.local.", ("1.2.3.4",), 1, {"mac": "x"})) == [driver]
    assert index.match(MdnsInfo(QD_TYPE, "a", "a.local.", (), 1, {})) == []  # TXT filter
    assert index.match(MdnsInfo("_other._tcp.local.", "a", "a.local.", (), 1, {"mac": "x"})) == []
    assert index.match(BleInfo("AA:BB:CC:DD:EE:FF", None, -50, {QD_COMPANY: b"\x01"})) == [driver]
    assert index.match(BleInfo("AA:BB:CC:DD:EE:FF", None, -50, {0x004C: b"\x01"})) == []
    assert mdns_type("_hue._tcp") == mdns_type("_hue._tcp.local.") == "_hue._tcp.local."
