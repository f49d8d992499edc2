"""The dashboard in a real browser: Debian's Chromium driven by Playwright (no downloaded browsers)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Page, async_playwright, expect

from qilu_hub import Hub

from .conftest import LIGHT, PLUG, Env, bearer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


async def until_true(page: Page, expression: str, polls: int = 400) -> Any:
    """Poll a JS expression until it is truthy (bounded). Not page.wait_for_function: once its first check fails
    it polls with eval inside the page, which the hub's Content-Security-Policy forbids, so it errors out exactly
    when the page is slow (seen under load)."""
    for _ in range(polls):
        value = await page.evaluate(expression)
        if value:
            return value
        await page.wait_for_timeout(25)
    raise AssertionError(f"never true: {expression}")


async def sign_in(page: Page, url: str, token: str, then: str = "") -> None:
    """Sign in as a person does: open the hub and paste the token into its form (a POST, never a URL); ``then``
    opens one of the dashboard's pages by its menu (``scenes``, ``add``, ...)."""
    await page.goto(url + "/")
    await page.get_by_test_id("login-token").fill(token)
    async with page.expect_navigation():
        await page.get_by_test_id("login-submit").click()
    assert page.url == url + "/", page.url
    if then:
        await open_page(page, then)


async def open_page(page: Page, name: str) -> None:
    await page.get_by_test_id(f"nav-{name}").click()
    await expect(page.locator(f'main > [data-page="{name}"]')).to_be_visible()


class Inbox:
    """The discovery component's dashboard protocol (hub.api.DiscoveryInbox), with one pending entry."""

    name = "discovery"

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {
            "shelly-1": {"key": "shelly-1", "title": "Shelly Plus 1", "manufacturer": "Shelly", "sources": ["mdns"],
                         "state": "pending"},
            "wled-1": {"key": "wled-1", "title": "WLED", "sources": ["mdns"], "state": "adopted"},
        }
        self.adopted: list[str] = []

    async def async_start(self, hub: Hub) -> None:
        pass

    async def async_stop(self) -> None:
        pass

    def inbox_entries(self) -> list[dict[str, Any]]:
        return list(self.entries.values())

    async def async_adopt(self, key: str) -> dict[str, Any]:
        entry = self.entries[key]
        entry["state"] = "adopted"  # adopted entries stay in the inbox, as the discovery manager keeps them
        self.adopted.append(key)
        return entry

    async def async_ignore(self, key: str) -> None:
        self.entries[key]["state"] = "ignored"

    async def async_unignore(self, key: str) -> None:
        self.entries[key]["state"] = "pending"


async def test_dashboard_live_state_controls_inbox_and_scene(env: Env, tmp_path: Path) -> None:
    inbox = Inbox()
    env.hub.components["discovery"] = inbox  # the protocol is all the API uses
    env.hub.states.async_set("sensor.household_scene", "movie_night",
                             {"probabilities": {"movie_night": 0.82, "dinner": 0.12, "away": 0.06}})
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            await sign_in(page, env.url, env.admin)
            assert page.url == env.url + "/"  # the token left the address bar for a cookie
            await expect(page.get_by_test_id("connection")).to_have_text("live")
            light_state = page.get_by_test_id(f"state-{LIGHT}")
            await expect(light_state).to_have_text("Off")
            await expect(page.locator('[data-area="living_room"] h2')).to_have_text("Living Room")

            await page.get_by_test_id(f"switch-{LIGHT}").click()
            await expect(light_state).to_have_text("On · 100%")
            await expect(page.get_by_test_id(f"switch-{LIGHT}")).to_have_attribute("aria-checked", "true")
            assert env.hub.states.get(LIGHT).value == "on"  # type: ignore[union-attr]

            await page.get_by_test_id(f"brightness-{LIGHT}").fill("20")  # one slider, in percent
            await expect(light_state).to_have_text("On · 20%")
            assert env.hub.states.get(LIGHT).attributes["brightness"] == 51  # type: ignore[union-attr]

            env.hub.states.async_set(PLUG, "on")  # a change made elsewhere shows up live
            await expect(page.get_by_test_id(f"state-{PLUG}")).to_have_text("On")
            await expect(page.get_by_test_id(f"switch-{PLUG}")).to_have_attribute("aria-checked", "true")
            await expect(page.get_by_test_id("scene")).to_be_hidden()  # recognition has its own page

            await open_page(page, "scenes")
            await expect(page.get_by_test_id("scene-name")).to_have_text("movie_night")
            await expect(page.get_by_test_id("scene")).to_contain_text("82%")

            await open_page(page, "add")
            entry = page.locator('[data-inbox="shelly-1"]')
            await expect(entry).to_contain_text("Shelly Plus 1")
            await expect(page.locator('[data-inbox="wled-1"]')).to_have_count(0)  # already adopted: no decision
            await entry.get_by_role("button", name="Add").click()
            await expect(entry).to_have_count(0)
            assert inbox.adopted == ["shelly-1"]
            await expect(page.locator("#inbox-empty")).to_be_visible()
            await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()


async def test_read_only_dashboard_has_no_controls(env: Env) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await sign_in(page, env.url, env.read_only)
            await expect(page.get_by_test_id(f"state-{LIGHT}")).to_have_text("Off")
            assert await page.get_by_test_id(f"switch-{LIGHT}").count() == 0
            assert await page.get_by_test_id(f"brightness-{LIGHT}").count() == 0
            await expect(page.get_by_test_id("nav-scenes")).to_be_visible()
            for admin_only in ("add", "rooms", "connect"):  # adopting, rooms and phones need an admin token
                await expect(page.get_by_test_id(f"nav-{admin_only}")).to_be_hidden()
        finally:
            await browser.close()


async def test_inbox_actions_need_admin(env: Env, session: aiohttp.ClientSession) -> None:
    env.hub.components["discovery"] = Inbox()
    async with session.post(env.url + "/api/discovery/shelly-1/adopt", headers=bearer(env.read_only)) as resp:
        assert resp.status == 403
    async with session.post(env.url + "/api/discovery/nope/ignore", headers=bearer(env.admin)) as resp:
        assert resp.status == 404
    async with session.get(env.url + "/api/discovery", headers=bearer(env.admin)) as resp:
        assert (await resp.json())["entries"][0]["key"] == "shelly-1"


async def test_registry_for_a_scoped_token(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.get(env.url + "/api/dashboard/registry", headers=bearer(env.kitchen)) as resp:
        data = await resp.json()
    assert [a["id"] for a in data["areas"]] == ["kitchen"]
    assert {e["entity_id"] for e in data["entities"]} == {"binary_sensor.kitchen_motion",
                                                          "sensor.kitchen_motion_battery"}
    assert [d["name"] for d in data["devices"]] == ["Kitchen Motion"]


async def test_colour_picker_sends_rgb(env: Env) -> None:
    from qilu_hub.context import Context
    from qilu_hub.model import Entity

    hub = env.hub
    entity = hub.entities.async_get_or_create(unique_id="test:strip", capabilities=("on_off", "color"),
                                              name="Desk Strip")
    hub.states.async_set(entity.entity_id, "off", {"rgb_color": [0, 0, 0]})

    async def handler(target: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        attrs = dict(hub.states.get(target.entity_id).attributes)  # type: ignore[union-attr]
        attrs.update(args)
        hub.states.async_set(target.entity_id, "on" if command == "turn_on" else "off", attrs, context)

    hub.commands.register_entity(entity.entity_id, handler)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await sign_in(page, env.url, env.admin)
            picker = page.get_by_test_id(f"color-{entity.entity_id}")
            await expect(picker).to_have_value("#000000")
            await picker.fill("#ff8000")
            await expect(page.get_by_test_id(f"state-{entity.entity_id}")).to_have_text("On")
            assert hub.states.get(entity.entity_id).attributes["rgb_color"] == [255, 128, 0]  # type: ignore[union-attr]
        finally:
            await browser.close()


async def test_lock_asks_before_it_acts(env: Env) -> None:
    """A lock's button opens a confirmation dialog: Cancel sends nothing, Yes sends the command."""
    from qilu_hub.context import Context
    from qilu_hub.model import Entity

    hub = env.hub
    entity = hub.entities.async_get_or_create(unique_id="test:door", capabilities=("lock",), name="Front Door")
    hub.states.async_set(entity.entity_id, "locked")
    sent: list[str] = []

    async def handler(target: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        sent.append(command)
        hub.states.async_set(target.entity_id, "unlocked" if command == "unlock" else "locked", {}, context)

    hub.commands.register_entity(entity.entity_id, handler)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await sign_in(page, env.url, env.admin)
            state = page.get_by_test_id(f"state-{entity.entity_id}")
            await expect(state).to_have_text("Locked")
            action = page.get_by_test_id(f"lock-{entity.entity_id}")
            await expect(action).to_have_text("Unlock")
            await action.click()
            await expect(page.get_by_test_id("confirm")).to_contain_text("Unlock Front Door?")
            await page.get_by_test_id("confirm-cancel").click()
            await expect(page.get_by_test_id("confirm")).to_be_hidden()
            await action.click()
            await page.keyboard.press("Escape")  # closing the dialog by keyboard cancels too
            await expect(page.get_by_test_id("confirm")).to_be_hidden()
            assert sent == []
            await action.click()
            await page.get_by_test_id("confirm-yes").click()
            await expect(state).to_have_text("Unlocked")
            await expect(action).to_have_text("Lock")
            assert sent == ["unlock"]
        finally:
            await browser.close()
