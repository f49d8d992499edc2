"""The dashboard's "What's happening now?" labelling control in real headless Chromium (Playwright)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer, LoginLimiter
from qilu_hub.config import load_config
from qilu_hub.recognition.labels import LabelStore, stored_labels
from qilu_hub.virtual import VirtualAppliances

from .conftest import Env
from .test_dashboard import ARGS, CHROMIUM, sign_in


@pytest.fixture
async def lenv(tmp_path: Path) -> AsyncIterator[tuple[Env, LabelStore]]:
    hub = Hub(tmp_path, load_config(tmp_path), recorder=False)
    hub.add_component(VirtualAppliances(animate=False))
    store = LabelStore(max_labels=3)
    hub.add_component(store)
    api = ApiServer("127.0.0.1", 0, login_limiter=LoginLimiter(max_failures=1000))
    hub.add_component(api)
    await hub.async_start()
    _, household = hub.tokens.create("alice", Scopes())
    _, read_only = hub.tokens.create("viewer", Scopes(read_only=True))
    _, kitchen = hub.tokens.create("kitchen headset", Scopes(areas=frozenset({"kitchen"})))
    yield Env(hub, api, household, read_only, kitchen), store
    await hub.async_stop()


async def _start(page: Page, scene: str) -> None:
    await page.get_by_test_id("label-scene").select_option(scene)
    await page.get_by_test_id("label-start").click()


async def test_label_now_stop_list_and_delete(lenv: tuple[Env, LabelStore], tmp_path: Path) -> None:
    env, store = lenv
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            await sign_in(page, env.url, env.admin, then="scenes")
            section = page.get_by_test_id("labels")
            await expect(section).to_be_visible()
            await expect(page.get_by_test_id("label-stop")).to_be_disabled()
            options = await page.get_by_test_id("label-scene").locator("option").all_inner_texts()
            assert "waking up" in options and "guests" in options

            await page.get_by_test_id("label-note").fill("soup")
            await _start(page, "cooking")
            await expect(page.get_by_test_id("label-open")).to_contain_text("cooking since")
            cooking = store.open_label()
            assert cooking is not None and (cooking.scene, cooking.note, cooking.created_by) == (
                "cooking", "soup", "alice")

            await _start(page, "eating")  # starting the next scene ends the running one
            await expect(page.get_by_test_id("label-open")).to_contain_text("eating since")
            assert store.get(cooking.id).end is not None  # type: ignore[union-attr]

            await page.get_by_test_id("label-stop").click()
            await expect(page.get_by_test_id("label-open")).to_have_text("Nothing labelled right now.")
            await expect(page.get_by_test_id("label-list").locator("li")).to_have_count(2)
            assert store.open_label() is None

            await _start(page, "relaxing")
            await expect(page.locator('[data-scene="relaxing"]')).to_have_count(1)
            await _start(page, "guests")  # the store (bounded at 3 here) refuses: the household is told why
            await expect(page.locator("#toast")).to_contain_text("delete old ones first")
            await expect(page.get_by_test_id("label-open")).to_contain_text("relaxing since")

            await page.get_by_test_id(f"label-delete-{cooking.id}").click()
            await expect(page.locator(f'[data-label="{cooking.id}"]')).to_have_count(0)
            assert sorted(lb.scene for lb in stored_labels(env.hub.storage)) == ["eating", "relaxing"]
            await page.screenshot(path=str(tmp_path / "labels.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()


async def test_read_only_sees_labels_without_controls_and_area_token_sees_none(
    lenv: tuple[Env, LabelStore],
) -> None:
    env, store = lenv
    label = store.add("sleeping", created_by="alice")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await sign_in(page, env.url, env.read_only, then="scenes")
            await expect(page.locator(f'[data-label="{label.id}"]')).to_contain_text("sleeping")
            await expect(page.get_by_test_id("label-start")).to_be_hidden()
            assert await page.get_by_test_id(f"label-delete-{label.id}").count() == 0

            guest = await browser.new_page()
            await sign_in(guest, env.url, env.kitchen, then="scenes")
            await expect(guest.get_by_test_id("connection")).to_have_text("live")
            await expect(guest.get_by_test_id("labels")).to_be_hidden()
            assert await guest.locator(f'[data-label="{label.id}"]').count() == 0
        finally:
            await browser.close()


async def test_correct_a_label_in_place(lenv: tuple[Env, LabelStore]) -> None:
    """Edit → change scene, end and note → Save sends one PATCH; a refused correction is explained and
    changes nothing."""
    import time

    env, store = lenv
    now = time.time()
    breakfast = store.add("cooking", now - 7200, now - 6600, created_by="alice")
    later = store.add("eating", now - 6000, now - 5400, created_by="alice")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context(timezone_id="Asia/Shanghai")).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            await sign_in(page, env.url, env.admin, then="scenes")
            await page.get_by_test_id(f"label-edit-{breakfast.id}").click()
            form = page.locator(f'[data-label="{breakfast.id}"][data-editing]')
            await expect(form.get_by_test_id("label-edit-start")).not_to_have_value("")
            await form.get_by_test_id("label-edit-scene").select_option("eating")
            await form.get_by_test_id("label-edit-note").fill("porridge")
            # Ten minutes longer, typed as the browser's local (Shanghai) time.
            end = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(breakfast.end + 600 + 8 * 3600))  # type: ignore[operator]
            await form.get_by_test_id("label-edit-end").fill(end)
            await form.get_by_test_id("label-edit-save").click()
            await expect(page.locator(f'[data-label="{breakfast.id}"]')).to_contain_text("porridge")
            fixed = store.get(breakfast.id)
            assert fixed is not None
            assert (fixed.scene, fixed.note, fixed.start) == ("eating", "porridge", breakfast.start)
            assert fixed.end == (int(breakfast.end + 600) // 60) * 60  # type: ignore[operator]

            # Stretching it into the next label is refused with the hub's reason; nothing changes.
            await page.get_by_test_id(f"label-edit-{breakfast.id}").click()
            form = page.locator(f'[data-label="{breakfast.id}"][data-editing]')
            await form.get_by_test_id("label-edit-end").fill("")  # running: overlaps everything after it
            await form.get_by_test_id("label-edit-save").click()
            await expect(page.locator("#toast")).to_contain_text(later.id)
            assert store.get(breakfast.id) == fixed
            assert errors == []
        finally:
            await browser.close()
