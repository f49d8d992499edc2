"""The discovery manager with adverts fed in directly: inbox, adoption, ignore, merge, availability."""

from __future__ import annotations

import time

import pytest

from qilu_hub.appliances import EVENT_DEVICE_AVAILABILITY, AdoptError, EntryState
from qilu_hub.appliances import lifecycle as manager_module
from qilu_hub.discovery import BleInfo, MdnsInfo
from qilu_hub.states import UNAVAILABLE

from .conftest import HubFactory, live, wait_for
from .qd_driver import QD_COMPANY, QD_TYPE, QdDriver

MAC = "02:78:00:00:00:01"


def mdns(mac: str = MAC, address: str = "10.78.0.11", name: str = "Lamp", i: int = 1) -> MdnsInfo:
    return MdnsInfo(QD_TYPE, f"qd-{i}.{QD_TYPE}", f"qd-{i}.local.", (address,), 80, {"mac": mac, "name": name})


def adopted(manager: object, count: int) -> bool:
    """All ``count`` entries adopted (the driver's connection starts a moment before the inbox records it)."""
    entries = manager.inbox_entries()  # type: ignore[attr-defined]
    return len(entries) == count and all(e["state"] == "adopted" for e in entries)


def ble(address: str = MAC.upper(), payload: bytes = b"\x01", rssi: int = -60) -> BleInfo:
    return BleInfo(address, "Lamp", rssi, {QD_COMPANY: payload})


async def test_auto_adopt_creates_one_device_with_entity(hubs: HubFactory) -> None:
    hub, manager, _driver = await hubs.start()
    manager.handle(mdns(), "mdns:a")
    await wait_for(lambda: adopted(manager, 1))
    [entry] = manager.inbox_entries()
    assert entry["state"] == "adopted" and entry["online"] and entry["device_id"]
    device = hub.devices.get(entry["device_id"])
    assert device is not None and ("mac", MAC) in device.connections
    [entity] = hub.entities.for_device(device.id)
    assert hub.states.get(entity.entity_id).value == "off"  # type: ignore[union-attr]


async def test_pending_without_auto_adopt_then_adopt_via_api(hubs: HubFactory) -> None:
    hub, manager, driver = await hubs.start(QdDriver(auto_adopt=False))
    manager.handle(mdns(), "mdns:a")
    [entry] = manager.inbox_entries()
    assert entry["state"] == "pending" and not driver.connections
    device_id = await manager.async_adopt(entry["key"])
    assert hub.devices.get(device_id) is not None
    assert manager.inbox_entries()[0]["state"] == "adopted"
    with pytest.raises(KeyError):
        await manager.async_adopt("no-such-key")


async def test_config_overrides_manifest_auto_adopt(hubs: HubFactory) -> None:
    _, manager, driver = await hubs.start(QdDriver(auto_adopt=True), auto_adopt={"qdtest": False})
    manager.handle(mdns(), "mdns:a")
    assert manager.inbox_entries()[0]["state"] == "pending"
    assert not driver.connections


async def test_ignore_survives_restart_address_change_and_rename(hubs: HubFactory) -> None:
    hub, manager, driver = await hubs.start(QdDriver(auto_adopt=False))
    manager.handle(mdns(), "mdns:a")
    key = manager.inbox_entries()[0]["key"]
    await manager.async_ignore(key)
    await hubs.stop(hub)

    hub, manager, driver = await hubs.start(QdDriver(auto_adopt=True))
    # Same appliance, new address and a new name: still the same key, still ignored.
    manager.handle(mdns(address="10.78.0.99", name="Renamed Lamp"), "mdns:b")
    entries = manager.inbox_entries()
    assert [(e["key"], e["state"]) for e in entries] == [(key, "ignored")]
    assert entries[0]["address"] == "10.78.0.99" and entries[0]["title"] == "Renamed Lamp"
    assert not driver.connections and len(hub.devices) == 0

    await manager.async_unignore(key)  # auto-adopt driver, online: adopted now
    await wait_for(lambda: key in driver.connections)


async def test_adopted_device_restarts_its_connection_after_hub_restart(hubs: HubFactory) -> None:
    hub, manager, _ = await hubs.start()
    manager.handle(mdns(), "mdns:a")
    await wait_for(lambda: manager.inbox_entries()[0]["state"] == "adopted")
    device_id = manager.inbox_entries()[0]["device_id"]
    await hubs.stop(hub)
    hub, manager, driver = await hubs.start(QdDriver(auto_adopt=False))  # adopted stays adopted
    manager.handle(mdns(address="10.78.0.11"), "mdns:a")
    await wait_for(lambda: live(manager, driver, 1))
    assert len(hub.devices) == 1 and hub.devices.get(device_id) is not None
    [conn] = driver.connections.values()
    assert conn.appliance.data["host"] == "10.78.0.11"


async def test_adopted_key_announced_elsewhere_after_restart_is_not_connected_there(hubs: HubFactory) -> None:
    hub, manager, _ = await hubs.start()
    manager.handle(mdns(), "mdns:a")
    await wait_for(lambda: manager.inbox_entries()[0]["state"] == "adopted")
    await hubs.stop(hub)
    hub, manager, driver = await hubs.start(QdDriver(auto_adopt=False))
    manager.handle(mdns(address="10.78.0.66"), "mdns:evil")  # before the real one is heard again
    [entry] = manager.inbox_entries()
    assert entry["move"]["from"] == "10.78.0.11:80" and entry["move"]["to"] == "10.78.0.66:80"
    assert not driver.connections  # nothing connected to the claimed address
    manager.handle(mdns(address="10.78.0.11"), "mdns:a")
    await wait_for(lambda: live(manager, driver, 1))
    [conn] = driver.connections.values()
    assert conn.appliance.data["host"] == "10.78.0.11"


async def test_address_change_waits_for_confirmation_then_follows(hubs: HubFactory,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    hub, manager, driver = await hubs.start()
    manager.handle(mdns(address="10.78.0.11"), "mdns:a")
    await wait_for(lambda: live(manager, driver, 1))
    [first] = driver.connections.values()
    with caplog.at_level("WARNING", logger="qilu_hub.appliances.lifecycle"):
        manager.handle(mdns(address="10.78.0.42"), "mdns:a")
        manager.handle(mdns(address="10.78.0.42"), "mdns:a")  # announced again: one warning, one move
    warnings = [r for r in caplog.records if "10.78.0.42" in r.getMessage() and r.levelname == "WARNING"]
    assert len(warnings) == 1 and "10.78.0.11" in warnings[0].getMessage()
    # Not followed: the connection never hears of the claimed address, the stored address stays.
    assert all(getattr(u, "host", None) != "10.78.0.42" for u in first.updates)
    [entry] = manager.inbox_entries()
    assert entry["address"] == "10.78.0.11" and entry["problem"] == "address_change"
    assert entry["move"]["from"] == "10.78.0.11:80" and entry["move"]["to"] == "10.78.0.42:80"
    # The test driver has no proof (the base class's safe default): it waits for the household.
    await wait_for(lambda: manager.inbox_entries()[0]["move"]["proof"] != "checking")
    assert "cannot prove" in manager.inbox_entries()[0]["move"]["proof"]
    assert all(getattr(u, "host", None) != "10.78.0.42" for u in first.updates) and not first.stopped
    stored = hub.storage.get("inbox", entry["key"]) or {}
    assert stored["move"]["to"] == "10.78.0.42:80" and stored["pinned"]["host"] == "10.78.0.11"

    await manager.async_confirm_move(entry["key"])
    await wait_for(lambda: any(c.appliance.data["host"] == "10.78.0.42" for c in driver.connections.values())
                   and live(manager, driver, 1))
    assert first.stopped  # reconnected at the new address
    [entry] = manager.inbox_entries()
    assert entry["move"] is None and entry["problem"] is None and entry["address"] == "10.78.0.42"
    assert len(hub.devices) == 1 and entry["online"]
    with pytest.raises(ValueError):
        await manager.async_confirm_move(entry["key"])  # nothing waits any more


async def test_rejected_move_is_forgotten_and_the_adopted_address_kept(hubs: HubFactory) -> None:
    _hub, manager, driver = await hubs.start()
    manager.handle(mdns(address="10.78.0.11"), "mdns:a")
    await wait_for(lambda: live(manager, driver, 1))
    manager.handle(mdns(address="10.78.0.42"), "mdns:b")
    key = manager.inbox_entries()[0]["key"]
    await manager.async_reject_move(key)
    [entry] = manager.inbox_entries()
    assert entry["move"] is None and entry["address"] == "10.78.0.11" and entry["online"]
    [conn] = driver.connections.values()
    assert conn.appliance.data["host"] == "10.78.0.11" and not conn.stopped


async def test_seen_over_mdns_and_ble_is_one_device(hubs: HubFactory) -> None:
    hub, manager, driver = await hubs.start()
    manager.handle(mdns(), "mdns:a")
    manager.handle(ble(), f"ble:{MAC.upper()}")
    await wait_for(lambda: live(manager, driver, 1))
    [entry] = manager.inbox_entries()
    assert sorted(entry["sources"]) == ["ble", "mdns"]
    assert len(hub.devices) == 1 and driver.starts == 1


async def test_a_connection_started_later_hears_what_each_radio_said_last(hubs: HubFactory) -> None:
    """Heard once over mDNS, then over BLE again and again, and adopted afterwards: the new connection gets the
    last mDNS record (its connection details) and the last BLE advert, not only the newest advert; the same when
    the appliance comes back after being lost on both radios, except what a radio said before it lost it."""
    _hub, manager, driver = await hubs.start(QdDriver(auto_adopt=False))
    manager.handle(mdns(), "mdns:a")
    for rssi in range(-70, -60):  # an advert every second drowns the one mDNS record
        manager.handle(ble(rssi=rssi), f"ble:{MAC.upper()}")
    [entry] = manager.inbox_entries()
    await manager.async_adopt(entry["key"])
    await wait_for(lambda: live(manager, driver, 1))
    [conn] = driver.connections.values()
    assert [type(u).__name__ for u in conn.updates] == ["MdnsInfo", "BleInfo"]  # oldest first, newest last
    last = conn.updates[-1]
    assert isinstance(last, BleInfo) and last.rssi == -61
    conn.updates.clear()
    manager.sighting_gone("mdns:a")
    manager.sighting_gone(f"ble:{MAC.upper()}")
    manager.handle(ble(rssi=-50), f"ble:{MAC.upper()}")  # back, over BLE only so far
    assert [(type(u).__name__, getattr(u, "rssi", None)) for u in conn.updates] == [("BleInfo", -50)]
    manager.handle(mdns(), "mdns:a")  # and over mDNS again: the fresh record reaches the connection too
    assert [type(u).__name__ for u in conn.updates] == ["BleInfo", "MdnsInfo"]


async def test_two_drivers_one_appliance_merge_by_mac(hubs: HubFactory) -> None:
    """Different drivers (different keys) for the two radios: the device registry merges by MAC."""
    from qilu_hub import Hub
    from qilu_hub.appliances import ApplianceLifecycle, StaticCatalog

    wifi, bt = QdDriver(name="qdwifi", ble=False), QdDriver(name="qdble", mdns=False)
    hub = Hub(hubs.config_dir, {}, recorder=False)
    manager = ApplianceLifecycle(lambda h: StaticCatalog(h, [wifi, bt]), ble_enabled=False, mdns_enabled=False)
    hub.add_component(manager)
    await hub.async_start()
    try:
        manager.handle(mdns(), "mdns:a")
        manager.handle(ble(), "ble:x")
        await wait_for(lambda: len(wifi.connections) == 1 and len(bt.connections) == 1)
        assert len(hub.devices) == 1
        [device] = hub.devices.all()
        assert len(hub.entities.for_device(device.id)) == 2
    finally:
        await hub.async_stop()


async def test_lost_device_goes_unavailable_and_comes_back(hubs: HubFactory) -> None:
    hub, manager, driver = await hubs.start()
    events: list[dict[str, object]] = []
    hub.bus.listen(EVENT_DEVICE_AVAILABILITY, lambda e: events.append(e.data))
    manager.handle(mdns(), "mdns:a")
    manager.handle(ble(), "ble:b")
    await wait_for(lambda: live(manager, driver, 1))
    [conn] = driver.connections.values()
    entity_id = conn.entity_id
    assert entity_id is not None
    hub.states.async_set(entity_id, "on", {"x": 1})
    manager._on_mdns_removed(QD_TYPE, "qd-1." + QD_TYPE)  # goodbye over mDNS: still heard over BLE
    manager.sighting_gone("mdns:a")
    assert hub.states.get(entity_id).value == "on"  # type: ignore[union-attr]
    manager.sighting_gone("ble:b")
    assert hub.states.get(entity_id).value == UNAVAILABLE  # type: ignore[union-attr]
    assert events[-1]["available"] is False
    manager.handle(ble(payload=b"\x02"), "ble:b")
    state = hub.states.get(entity_id)
    assert state is not None and state.value == "on"
    assert hub.presentation.own_attributes(entity_id, state.attributes) == {"x": 1}
    assert events[-1]["available"] is True


async def test_failed_adoption_retries_with_backoff(hubs: HubFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager_module, "ADOPT_BACKOFF_START", 0.01)
    driver = QdDriver()
    driver.fail_starts = 3
    _hub, manager, _ = await hubs.start(driver)
    manager.handle(mdns(), "mdns:a")
    await wait_for(lambda: adopted(manager, 1))
    assert driver.starts == 4 and manager.adopt_failures == 3 and len(driver.connections) == 1


async def test_api_adopt_failure_raises_and_keeps_retrying(hubs: HubFactory,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager_module, "ADOPT_BACKOFF_START", 0.01)
    driver = QdDriver(auto_adopt=False)
    driver.fail_starts = 1
    _, manager, _ = await hubs.start(driver)
    manager.handle(mdns(), "mdns:a")
    key = manager.inbox_entries()[0]["key"]
    with pytest.raises(AdoptError):
        await manager.async_adopt(key)
    await wait_for(lambda: key in driver.connections)


async def test_ignore_after_adoption_stops_the_connection(hubs: HubFactory) -> None:
    _, manager, driver = await hubs.start()
    manager.handle(mdns(), "mdns:a")
    await wait_for(lambda: live(manager, driver, 1))
    [conn] = driver.connections.values()
    await manager.async_ignore(conn.appliance.key)
    assert conn.stopped
    assert manager.inbox.get(conn.appliance.key).state is EntryState.IGNORED  # type: ignore[union-attr]


async def test_driver_errors_and_bad_keys_never_stop_discovery(hubs: HubFactory) -> None:
    _, manager, driver = await hubs.start()
    manager.handle(mdns(mac="boom"), "mdns:bad")  # identify raises
    manager.handle(mdns(mac="", i=2), "mdns:none")  # identify returns None
    manager.handle(MdnsInfo("_other._tcp.local.", "x._other._tcp.local.", "x.local.", ("1.2.3.4",), 1), "mdns:x")
    manager.handle(mdns(i=3), "mdns:good")
    await wait_for(lambda: live(manager, driver, 1))
    assert manager.stats["identify_error"] == 1 and manager.stats["unmatched"] == 1


async def test_many_ble_adverts_are_cheap_and_persist_nothing_new(hubs: HubFactory) -> None:
    hub, manager, _driver = await hubs.start(QdDriver(auto_adopt=False))
    t = time.time()
    for n in range(2000):
        manager.handle(BleInfo(f"02:78:00:00:{n % 50:02X}:01", "x", -50, {QD_COMPANY: bytes([n % 256])}, time=t),
                       f"ble:{n % 50}")
    assert len(manager.inbox_entries()) == 50
    assert len(hub.storage.load("inbox")) == 50


async def test_missing_driver_catalog_does_not_stop_the_hub(tmp_path: object) -> None:
    from pathlib import Path

    from qilu_hub import Hub
    from qilu_hub.appliances import ApplianceLifecycle

    hub = Hub(Path(str(tmp_path)) / "c", {}, recorder=False)
    manager = ApplianceLifecycle("drivers", ble_enabled=False, mdns_enabled=False)
    hub.add_component(manager)
    await hub.async_start()
    try:
        assert manager.inbox_entries() == [] and manager.status()["inbox"]["pending"] == 0
    finally:
        await hub.async_stop()
