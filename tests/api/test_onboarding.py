"""A household's first evening with the hub, in Debian's Chromium, at desktop and phone sizes.

A real demo hub (simulated appliances on loopback, discovery finding them) whose configuration leaves the BLE
sensors in the inbox. The test signs in, adopts a sensor with a name and a room in one step, renames a device,
switches a light, manages rooms, creates a phone's sign-in code, opens its link in a fresh browser (no token
typed) and revokes that access again from the same page. On every page it checks that nothing overflows
sideways and that axe-core (vendored, tests/vendor/axe-core) finds no violation of serious or critical impact.
Screenshots go to $QILU_TEST_ARTIFACTS (default test-artifacts/) under onboarding/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from qilu_hub import Hub, Scopes
from qilu_hub.config import ensure_config_dir
from qilu_hub.setup import build_hub

from .test_dashboard import ARGS, CHROMIUM, sign_in

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
LIGHT = "light.living_room_ceiling_light"
THERMOSTAT = "climate.bedroom_thermostat"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# Each size adopts its own sensor from the inbox (the demo's BLE sensors stay there: auto_adopt off).
ADOPT = {"desktop": "xiaomi", "phone": "bthome"}

def artifacts() -> Path:
    folder = Path(os.environ.get("QILU_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "onboarding"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Bed:
    hub: Hub
    url: str
    admin: str
    browser: Browser


async def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    """Poll until true; the bound only ends a broken run, it asserts nothing about speed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not reached: {what}")
        await asyncio.sleep(0.05)


def _pending(hub: Hub, driver: str) -> list[dict[str, Any]]:
    inbox = hub.components["discovery"]
    return [e for e in inbox.inbox_entries() if e["driver"] == driver and e["state"] == "pending"]  # type: ignore[attr-defined]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bed]:
    directory = ensure_config_dir(tmp_path_factory.mktemp("onboarding"))
    config_file = directory / "configuration.yaml"
    config = yaml.safe_load(config_file.read_text()) or {}
    config.setdefault("hub", {}).update(port=0, bind="127.0.0.1")
    config["discovery"] = {"auto_adopt": {"xiaomi": False, "bthome": False}}
    config_file.write_text(yaml.safe_dump(config))
    hub = build_hub(directory, demo=True)
    await hub.async_start()
    try:
        await _wait(lambda: hub.states.get(LIGHT) is not None, "the demo's living-room light")
        # The Xiaomi thermometer, and BTHome's thermometer and motion sensor (the desktop run adopts the latter
        # from Python, as the CLI would, to see the page follow).
        await _wait(lambda: len(_pending(hub, "xiaomi")) == 1 and len(_pending(hub, "bthome")) == 2,
                    "the demo's BLE sensors pending in the inbox")
        _, admin = hub.tokens.create("parent", Scopes(admin=True))
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                yield Bed(hub, hub.components["api"].url, admin, browser)  # type: ignore[attr-defined]
            finally:
                await browser.close()
    finally:
        await hub.async_stop()


async def new_page(bed: Bed, size: str) -> tuple[BrowserContext, Page, list[str]]:
    context = await bed.browser.new_context(viewport=SIZES[size], locale="en-GB")
    # An init script runs outside the page's Content-Security-Policy, which (rightly) refuses injected scripts.
    await context.add_init_script(path=str(AXE))
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    return context, page, errors


async def check_page(page: Page, shot: str) -> None:
    """No sideways scrolling, no serious or critical axe violation; a screenshot for people to look at."""
    await page.screenshot(path=str(artifacts() / f"{shot}.png"), full_page=True)
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{shot}: {overflow}px of horizontal overflow"
    result = await page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                                 ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))"
                                 ".slice(0, 3)}))")
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{shot}: {bad}"


async def go(page: Page, name: str) -> None:
    await page.get_by_test_id(f"nav-{name}").click()
    await expect(page.locator(f'main > [data-page="{name}"]')).to_be_visible()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("size", list(SIZES))
async def test_onboarding(bed: Bed, size: str) -> None:
    hub = bed.hub
    context, page, errors = await new_page(bed, size)
    try:
        await page.goto(bed.url + "/")
        await check_page(page, f"{size}-sign-in")
        await sign_in(page, bed.url, bed.admin)
        await expect(page.get_by_test_id("connection")).to_have_text("live")
        await expect(page.get_by_test_id(f"state-{LIGHT}")).to_be_visible()
        await check_page(page, f"{size}-home")

        # Adopt a sensor from the inbox with its name and room in one step; it appears at home without a reload.
        [entry] = _pending(hub, ADOPT[size])[:1]
        key, room, name = entry["key"], "bedroom", f"Bedside climate ({size})"
        await expect(page.get_by_test_id("inbox-count")).to_be_visible()
        await go(page, "add")
        await page.get_by_test_id(f"adopt-name-{key}").fill(name)
        await page.get_by_test_id(f"adopt-room-{key}").select_option(room)
        await check_page(page, f"{size}-add-devices")
        await page.get_by_test_id(f"adopt-{key}").click()
        await expect(page.locator(f'[data-inbox="{key}"]')).to_have_count(0)
        await go(page, "home")
        tile = page.locator(f'[data-area="{room}"] .tile', has_text=name)
        await expect(tile).to_be_visible()
        device = next(d for d in hub.devices.all() if d.name_by_user == name)
        assert device.area_id == room

        if size == "desktop":
            # Adopted elsewhere (the CLI, another browser): the tile and the inbox count follow without a reload.
            count = int(await page.get_by_test_id("inbox-count").inner_text())
            motion = next(e for e in _pending(hub, "bthome") if "Motion" in e["title"])
            await hub.components["discovery"].async_adopt(motion["key"])  # type: ignore[attr-defined]
            await expect(page.locator('[data-area=""] .tile', has_text=motion["title"])).to_be_visible()
            await expect(page.get_by_test_id("inbox-count")).to_have_text(str(count - 1))

        # Rename a device and move it to another room (Home Assistant's device registry command).
        plug = next(e for e in hub.entities.all() if e.entity_id == "switch.living_room_tv_plug")
        assert plug.device_id is not None
        await page.get_by_test_id(f"edit-{plug.device_id}").click()
        await page.get_by_test_id("edit-name").fill(f"Television ({size})")
        await page.get_by_test_id("edit-room").select_option("kitchen")
        await page.get_by_test_id("edit-save").click()
        await expect(page.locator('[data-area="kitchen"] .tile', has_text=f"Television ({size})")).to_be_visible()
        assert hub.devices.get(plug.device_id).area_id == "kitchen"  # type: ignore[union-attr]

        # Switch the light from the keyboard: one switch, its state in words, the hub's state follows.
        switch = page.get_by_test_id(f"switch-{LIGHT}")
        wanted = "false" if await switch.get_attribute("aria-checked") == "true" else "true"
        await switch.focus()
        await page.keyboard.press("Space")
        await expect(switch).to_have_attribute("aria-checked", wanted)
        await _wait(lambda: hub.states.get(LIGHT).value == ("on" if wanted == "true" else "off"),  # type: ignore[union-attr]
                    "the light switched")

        if size == "desktop":
            # The thermostat: one step warmer from its tile.
            before = hub.states.get(THERMOSTAT).attributes["temperature"]  # type: ignore[union-attr]
            await page.get_by_test_id(f"warmer-{THERMOSTAT}").click()
            await _wait(lambda: hub.states.get(THERMOSTAT).attributes["temperature"] == before + 0.5,  # type: ignore[union-attr]
                        "the thermostat's target raised")
            await expect(page.get_by_test_id(f"target-{THERMOSTAT}")).to_have_text(f"{before + 0.5:g} °C")

            # Rooms: add one, rename it, delete it (Home Assistant's area registry commands).
            await go(page, "rooms")
            await page.get_by_test_id("room-new-name").fill("Study")
            await page.get_by_test_id("room-add").click()
            await expect(page.get_by_test_id("room-name-study")).to_have_value("Study")
            await page.get_by_test_id("room-name-study").fill("Office")
            await page.get_by_test_id("room-save-study").click()
            await _wait(lambda: hub.areas.get("study") is not None and hub.areas.get("study").name == "Office",  # type: ignore[union-attr]
                        "the room renamed")
            await page.get_by_test_id("room-delete-study").click()
            await page.get_by_test_id("confirm-yes").click()
            await expect(page.get_by_test_id("room-name-study")).to_have_count(0)
            assert hub.areas.get("study") is None

        # A phone's access, limited to the bedroom: a QR code of a one-time link, no token to type.
        await go(page, "connect")
        await page.get_by_test_id("connect-name").fill(f"{size} phone")
        await page.get_by_test_id("connect-all").uncheck()
        await page.get_by_test_id("connect-room-bedroom").check()
        await page.get_by_test_id("connect-create").click()
        await expect(page.get_by_test_id("connect-qr").locator("svg")).to_be_visible()
        link = await page.get_by_test_id("connect-link").get_attribute("href")
        assert link is not None and link.startswith(bed.url + "/login/link/")
        await check_page(page, f"{size}-connect")
        token = next(t for t in hub.tokens.list() if t.name == f"{size} phone")
        assert token.scopes.areas == frozenset({"bedroom"}) and not token.scopes.admin
        for name_ in ("scenes", "rooms"):
            await go(page, name_)
            await check_page(page, f"{size}-{name_}")
        if size == "phone":
            # 中文: one catalogue, every key in both languages, the page switched at once and still accessible.
            missing = await page.evaluate("Object.keys(CATALOGUE.en).filter(k => !(k in CATALOGUE.zh))")
            assert missing == []
            await page.get_by_test_id("lang").select_option("zh")
            await go(page, "home")
            await expect(page.get_by_test_id("nav-home")).to_have_text("首页")
            await expect(page.get_by_test_id("connection")).to_have_text("已连接")
            assert await page.evaluate("document.documentElement.lang") == "zh-CN"
            await expect(page.get_by_test_id(f"state-{LIGHT}")).to_have_text("开 · 100%" if wanted == "true" else "关")
            await check_page(page, f"{size}-home-zh")
            await page.reload()  # remembered
            await expect(page.get_by_test_id("nav-home")).to_have_text("首页")
        assert errors == []
        await phone_signs_in(bed, size, link, room, name, admin=page)
        assert token.id not in {t.id for t in hub.tokens.list() if t.revoked is None}
    finally:
        await context.close()


async def phone_signs_in(bed: Bed, size: str, link: str, room: str, name: str, admin: Page) -> None:
    """A fresh browser opens the link (as a camera app would), signs in with one tap and sees its room; the
    admin then revokes it from the same page, and the phone is cut off at once."""
    phone, page, errors = await new_page(bed, size)
    try:
        await page.goto(link)
        await check_page(page, f"{size}-sign-in-link")
        async with page.expect_navigation():
            await page.get_by_test_id("link-submit").click()
        assert page.url == bed.url + "/"
        await expect(page.get_by_test_id("connection")).to_have_text("live")
        tile = page.locator(f'[data-area="{room}"] .tile', has_text=name)
        await expect(tile).to_be_visible()
        assert await page.locator('[data-area="living_room"]').count() == 0  # scoped to the bedroom
        # The first device tile on the first screen, measured in one go (a live re-render may replace it).
        box = await page.evaluate("(() => { const r = document.querySelector('.tile').getBoundingClientRect();"
                                  " return {top: r.top, bottom: r.bottom, scrolled: window.scrollY}; })()")
        assert box["scrolled"] == 0 and box["top"] > 0 and box["bottom"] <= SIZES[size]["height"], box
        await check_page(page, f"{size}-phone-signed-in")
        assert errors == []
        # The link worked once: opened again, it signs nobody in.
        other = await bed.browser.new_context()
        try:
            again = await other.new_page()
            await again.goto(link)
            await again.get_by_test_id("link-submit").click()
            await expect(again.locator("body")).to_contain_text("used already or has expired")
            assert [c for c in await other.cookies() if c["name"] == "qilu_token"] == []
        finally:
            await other.close()
        # Lost phone: its access is revoked from the connect page; its open dashboard stops at once.
        token = next(t for t in bed.hub.tokens.list() if t.name == f"{size} phone")
        await go(admin, "connect")
        await admin.get_by_test_id(f"revoke-{token.id}").click()
        await admin.get_by_test_id("confirm-yes").click()
        await expect(admin.locator(f'[data-token="{token.id}"]')).to_have_count(0)
        await expect(page.get_by_test_id("connection")).to_have_text("token refused", timeout=20000)
    finally:
        await phone.close()


def test_axe_is_vendored_with_its_licence() -> None:
    import hashlib

    assert AXE.read_text(encoding="utf-8").startswith("/*! axe v4.10.3")
    digest = hashlib.sha256(AXE.read_bytes()).hexdigest()
    assert digest in (AXE.parent / "README.md").read_text(encoding="utf-8")  # the file the README describes
    assert "Mozilla Public License" in (AXE.parent / "LICENSE").read_text(encoding="utf-8")
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
