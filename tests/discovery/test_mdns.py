"""mDNS over loopback with real zeroconf on both ends: browse, resolve, updates, goodbyes, bad TXT."""

from __future__ import annotations

from qilu_hub.discovery.mdns import MdnsSource, async_browse
from qilu_hub.discovery.models import MdnsInfo
from qilu_hub.states import UNAVAILABLE
from tests.testbeds.mdns_responder import Responder, mac_for

from .conftest import HubFactory, live, wait_for
from .qd_driver import QD_TYPE

LOOPBACK = ["127.0.0.1"]


async def test_source_resolves_follows_address_change_and_goodbye() -> None:
    found: list[MdnsInfo] = []
    removed: list[str] = []
    source = MdnsSource([QD_TYPE], found.append, lambda _t, name: removed.append(name), interfaces=LOOPBACK)
    async with Responder(LOOPBACK, QD_TYPE, 3, tag="lo") as responder:
        await source.async_start()
        try:
            await wait_for(lambda: len(source.services) == 3, timeout=30)
            info = source.services[responder.service_name(1)]
            assert info.addresses == ("127.0.0.1",) and info.port == 8001
            assert info.properties["id"] == "lo-001" and info.properties["mac"]
            await responder.update(1, address="127.0.0.7")
            # The newest address comes first (an old one may stay cached: RFC 6762 10.2 spares records under 1 s old).
            await wait_for(lambda: source.services[responder.service_name(1)].addresses[0] == "127.0.0.7", 30)
            await responder.unregister(2)
            await wait_for(lambda: removed == [responder.service_name(2)], timeout=30)
            assert responder.service_name(2) not in source.services
        finally:
            await source.async_stop()


async def test_hub_adopts_over_loopback_and_tracks_goodbye(hubs: HubFactory) -> None:
    async with Responder(LOOPBACK, QD_TYPE, 4, tag="hub") as responder:
        hub, manager, driver = await hubs.start(mdns_enabled=True, mdns_interfaces=LOOPBACK)
        await wait_for(lambda: live(manager, driver, 4), timeout=30)
        assert len(hub.devices) == 4
        # Address change: held as a claim with both addresses (an advert proves nothing); once the household
        # confirms it, the same device's connection moves to the new address.
        key = f"qdtest-{mac_for('hub', 0)}"
        await responder.update(0, address="127.0.0.9")
        conn = driver.connections[key]
        await wait_for(lambda: manager.inbox.get(key).move is not None, timeout=30)  # type: ignore[union-attr]
        assert manager.inbox.get(key).move["to"] == "127.0.0.9:8000"  # type: ignore[union-attr]
        assert all(getattr(u, "host", None) != "127.0.0.9" for u in conn.updates)
        await manager.async_confirm_move(key)
        await wait_for(lambda: driver.connections[key].appliance.data["host"] == "127.0.0.9", timeout=30)
        assert len(hub.devices) == 4
        # Goodbye: the device's entities become unavailable.
        await responder.unregister(3)
        gone = driver.connections[f"qdtest-{mac_for('hub', 3)}"]
        assert gone.entity_id is not None
        await wait_for(lambda: hub.states.get(gone.entity_id).value == UNAVAILABLE, timeout=30)  # type: ignore[arg-type,union-attr]


async def test_garbage_txt_records_are_dropped_not_fatal(hubs: HubFactory) -> None:
    # On the wire: "==x=1" (empty key), a key with a control character, a value that is not UTF-8.
    bad = Responder(LOOPBACK, QD_TYPE, 2, tag="bad", extra={"=x": "1", "k\x01": "2"})
    async with bad:
        await bad.update(1, properties={"mac": b"\xff\xfe\x00garbage", "raw": b"\x80\x81"})
        hub, manager, driver = await hubs.start(mdns_enabled=True, mdns_interfaces=LOOPBACK)
        await wait_for(lambda: live(manager, driver, 2), 30)
        info = manager.mdns.services[bad.service_name(1)]  # type: ignore[union-attr]
        assert "" not in info.properties and "k\x01" not in info.properties
        assert info.properties["raw"] == "\ufffd\ufffd" and info.properties["id"] == "bad-001"
        assert manager.stats["txt_key_invalid"] >= 2
        assert len(hub.devices) == 2


async def test_async_browse_lists_what_answers() -> None:
    async with Responder(LOOPBACK, QD_TYPE, 2, tag="br"):
        found = await async_browse([QD_TYPE], 4.0, LOOPBACK)
    assert [i.name for i in found] == [f"br-000.{QD_TYPE}", f"br-001.{QD_TYPE}"]
