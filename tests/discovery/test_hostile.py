"""Discovery on a hostile LAN, through the real discovery path: an adopted appliance announced elsewhere is
held for the household over the HTTP API, and a flood of crafted adverts leaves a bounded inbox and database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer
from qilu_hub.appliances import ApplianceLifecycle, StaticCatalog
from qilu_hub.appliances.inbox import STORE_KIND
from qilu_hub.discovery import MdnsInfo

from .conftest import HubFactory, live, wait_for
from .qd_driver import QD_TYPE, QdDriver
from .test_manager import ble, mdns


@pytest.fixture
async def api_hub(tmp_path: Path) -> AsyncIterator[tuple[Hub, ApplianceLifecycle, QdDriver, ApiServer]]:
    driver = QdDriver()
    hub = Hub(tmp_path / "config", {"recorder": {"commit_interval": 0.05}}, recorder=False)
    manager = ApplianceLifecycle(lambda h: StaticCatalog(h, [driver]), mdns_enabled=False, ble_enabled=False)
    hub.add_component(manager)
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    await hub.async_start()
    yield hub, manager, driver, api
    await hub.async_stop()


async def test_address_change_is_shown_and_confirmed_over_the_api_by_an_admin_only(
        api_hub: tuple[Hub, ApplianceLifecycle, QdDriver, ApiServer]) -> None:
    hub, manager, driver, api = api_hub
    _, admin = hub.tokens.create("admin", Scopes(admin=True))
    _, viewer = hub.tokens.create("viewer", Scopes(read_only=True))
    manager.handle(mdns(address="10.78.0.11"), "mdns:a")
    await wait_for(lambda: live(manager, driver, 1))
    manager.handle(mdns(address="10.78.0.66"), "mdns:b")
    key = manager.inbox_entries()[0]["key"]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{api.url}/api/discovery", headers={"Authorization": f"Bearer {admin}"}) as resp:
            [entry] = (await resp.json())["entries"]
        assert entry["problem"] == "address_change" and entry["address"] == "10.78.0.11"
        assert entry["move"]["from"] == "10.78.0.11:80" and entry["move"]["to"] == "10.78.0.66:80"
        for token, status in ((viewer, 403), (admin, 200), (admin, 400)):  # the last: nothing waits any more
            async with session.post(f"{api.url}/api/discovery/{key}/confirm_move",
                                    headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == status, await resp.text()
                if status == 200:
                    assert (await resp.json())["result"]["address"] == "10.78.0.66"
        async with session.post(f"{api.url}/api/discovery/{key}/reject_move",
                                headers={"Authorization": f"Bearer {admin}"}) as resp:
            assert resp.status == 400
    await wait_for(lambda: driver.connections[key].appliance.data["host"] == "10.78.0.66")


async def test_flood_of_crafted_adverts_keeps_the_inbox_and_database_bounded(
        hubs: HubFactory, caplog: pytest.LogCaptureFixture) -> None:
    hub, manager, driver = await hubs.start(QdDriver(auto_adopt=False), inbox_max_pending=50,
                                            inbox_max_pending_per_address=10)
    # The household's decisions: one adopted, one ignored, both long before the flood.
    manager.handle(mdns(i=1, mac="02:78:00:00:00:01", address="10.78.0.11"), "mdns:1")
    manager.handle(mdns(i=2, mac="02:78:00:00:00:02", address="10.78.0.12"), "mdns:2")
    adopted_key, ignored_key = (e["key"] for e in manager.inbox_entries())
    await manager.async_adopt(adopted_key)
    await manager.async_ignore(ignored_key)
    # A legitimate appliance waiting in the inbox at its own address, heard again during the flood.
    manager.handle(mdns(i=3, mac="02:78:00:00:00:03", address="10.78.0.13"), "mdns:3")
    db = hubs.config_dir / "registry.db"

    with caplog.at_level(logging.WARNING, logger="qilu_hub.appliances.lifecycle"):
        for n in range(2000):  # crafted adverts: every one a new appliance; from one address, then from many
            address = "10.78.0.99" if n < 1000 else f"10.78.{n // 250}.{n % 250}"
            manager.handle(MdnsInfo(QD_TYPE, f"x{n}.{QD_TYPE}", f"x{n}.local.", (address,), 80,
                                    {"mac": f"02:99:00:00:{n >> 8:02x}:{n & 0xFF:02x}", "name": "x" * 200}),
                           f"mdns:x{n}")
            if n % 20 == 0:  # heard again more often than the flood fills the inbox
                manager.handle(mdns(i=3, mac="02:78:00:00:00:03", address="10.78.0.13"), "mdns:3")
                manager.handle(ble("02:78:00:00:00:01".upper()), "ble:1")
    states = [e.state.value for e in manager.inbox.entries()]
    assert states.count("pending") <= 50
    assert len([e for e in manager.inbox.entries() if e.address == "10.78.0.99"]) <= 10
    assert manager.inbox.get(adopted_key).state.value == "adopted"  # type: ignore[union-attr]
    assert manager.inbox.get(ignored_key).state.value == "ignored"  # type: ignore[union-attr]
    # Heard recently, so never the least recently seen: the flood does not push it out.
    assert manager.inbox is not None and "qdtest-02:78:00:00:00:03" in manager.inbox
    stored = hub.storage.load(STORE_KIND)
    assert len(stored) <= 52 and stored[adopted_key]["state"] == "adopted"
    assert stored[ignored_key]["state"] == "ignored"
    assert len(manager.sightings.last_info) <= 53 and len(manager.sightings) <= 53  # memory bounded too
    assert db.stat().st_size < 2_000_000  # 2000 stored entries of this size would be several MB
    full = [r for r in caplog.records if "inbox full" in r.getMessage()]
    assert len(full) == 1  # counted, logged once (rate-limited), not once per advert
    assert manager.status()["dropped"]["inbox_evicted"] >= 1950
    assert driver.connections.keys() == {adopted_key}


async def test_dashboard_shows_the_address_change_and_confirms_it(
        api_hub: tuple[Hub, ApplianceLifecycle, QdDriver, ApiServer]) -> None:
    """Debian's Chromium through Playwright: the claimed move with both addresses, and the admin's confirmation."""
    import shutil

    from playwright.async_api import async_playwright, expect

    hub, manager, driver, api = api_hub
    _, admin = hub.tokens.create("admin", Scopes(admin=True))
    manager.handle(mdns(address="10.78.0.11"), "mdns:a")
    await wait_for(lambda: live(manager, driver, 1))
    manager.handle(mdns(address="10.78.0.66"), "mdns:b")
    key = manager.inbox_entries()[0]["key"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                           args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            # A bearer header on every request: independent of how the dashboard signs in.
            context = await browser.new_context(extra_http_headers={"Authorization": f"Bearer {admin}"})
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            await page.goto(f"{api.url}/#add")
            entry = page.locator(f'[data-inbox="{key}"]')
            await expect(entry).to_contain_text("Address change, please confirm: added at 10.78.0.11:80, "
                                                "now announced at 10.78.0.66:80")
            await entry.get_by_role("button", name="Confirm move").click()
            await expect(entry).to_have_count(0)
            assert errors == []
        finally:
            await browser.close()
    await wait_for(lambda: driver.connections[key].appliance.data["host"] == "10.78.0.66")
