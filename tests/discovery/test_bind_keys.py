"""Bind keys: what is accepted, what is refused (without echoing it), and that no text form shows a key."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from qilu_hub.appliances.bind_keys import BindKey, BindKeyError, BindKeys, needs_bind_key
from qilu_hub.storage import RegistryStore

HEX = "231d39c1d7cc1ab1aee224cd096db932"


@pytest.mark.parametrize("text", [HEX, HEX.upper(), f"  {HEX}\n", "23:1d:39:c1:d7:cc:1a:b1:ae:e2:24:cd:09:6d:b9:32",
                                  "231d39c1-d7cc-1ab1-aee2-24cd096db932"])
def test_accepts_32_hex_digits_as_vendor_tools_print_them(text: str) -> None:
    assert BindKey.parse(text).reveal() == bytes.fromhex(HEX)


@pytest.mark.parametrize("text", ["", HEX[:-2], HEX + "00", HEX[:-1] + "g", "0x" + HEX[2:], "ab" * 12])
def test_refuses_anything_else_without_repeating_it(text: str) -> None:
    with pytest.raises(BindKeyError) as caught:
        BindKey.parse(text)
    message = str(caught.value)
    assert "32 hex digits" in message
    if len(text) > 4:
        assert text not in message and text[:8] not in message


def test_refuses_non_text() -> None:
    with pytest.raises(BindKeyError):
        BindKey.parse(bytes.fromhex(HEX))  # type: ignore[arg-type]
    with pytest.raises(BindKeyError):
        BindKey(b"short")


def test_no_text_form_shows_the_key(caplog: pytest.LogCaptureFixture) -> None:
    key = BindKey.parse(HEX)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").warning("key %s %r", key, key)
    for text in (repr(key), str(key), f"{key}", caplog.text, repr([key]), repr({"k": key})):
        assert HEX not in text.lower() and "secret" in text
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_equality_by_value() -> None:
    assert BindKey.parse(HEX) == BindKey.parse(HEX.upper())
    assert BindKey.parse(HEX) != BindKey.parse("00" * 16)


def test_needs_bind_key_reads_the_drivers_flag() -> None:
    assert needs_bind_key({"encrypted": True})
    assert not needs_bind_key({"encrypted": False}) and not needs_bind_key({})


def test_store_round_trip_survives_reopening(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "registry.db")
    keys = BindKeys(store)
    assert keys.get("bthome", "A4:C1:38:00:00:01") is None
    keys.set("bthome", "A4:C1:38:00:00:01", BindKey.parse(HEX))
    assert HEX not in repr(keys)
    store.close()
    store = RegistryStore(tmp_path / "registry.db")
    keys = BindKeys(store)
    assert keys.get("bthome", "A4:C1:38:00:00:01") == BindKey.parse(HEX)
    assert not keys.has("xiaomi", "A4:C1:38:00:00:01")  # per driver
    keys.delete("bthome", "A4:C1:38:00:00:01")
    assert not keys.has("bthome", "A4:C1:38:00:00:01")
    store.close()


def test_damaged_record_reads_as_no_key(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "registry.db")
    store.put("bind_key", "bthome:X", {"key": "not hex"})
    store.put("bind_key", "bthome:Y", {})
    keys = BindKeys(store)
    assert keys.get("bthome", "X") is None and keys.get("bthome", "Y") is None
    store.close()


async def test_static_catalog_reports_the_connections_problem(tmp_path: Path) -> None:
    # Discovery over the fallback catalog (no driver manager) flags and explains encrypted sensors too.
    from qilu_hub import Hub
    from qilu_hub.appliances import ApplianceLifecycle, StaticCatalog
    from qilu_hub.drivers.bthome.driver import BTHomeDriver
    from qilu_hub.drivers.bthome.simulator import BTHomeSimulator

    hub = Hub(tmp_path / "config", {}, recorder=False)
    discovery = ApplianceLifecycle(lambda h: StaticCatalog(h, [BTHomeDriver()]), mdns_enabled=False, ble_enabled=False)
    hub.add_component(discovery)
    await hub.async_start()
    try:
        sim = BTHomeSimulator("climate", 50, bind_key=bytes.fromhex(HEX))
        discovery.handle(sim.advert(), f"ble:{sim.address}")
        [entry] = discovery.inbox_entries()
        assert entry["problem"] == "needs_bind_key"
        await discovery.async_adopt(sim.address, bind_key="00" * 16)  # StaticCatalog starts it before returning
        for _ in range(5):
            sim.step()
            discovery.handle(sim.advert(), f"ble:{sim.address}")
        [entry] = discovery.inbox_entries()
        assert entry["problem"] == "wrong_bind_key" and entry["state"] == "adopted"
    finally:
        await hub.async_stop()
