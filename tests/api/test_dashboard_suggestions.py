"""The dashboard's "Suggestions from a past day" (the day review as label suggestions) in real headless Chromium,
on a hub whose recorder holds two simulated days (see test_label_suggestions.py)."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from qilu_hub.recognition.datasets import Dataset

from .conftest import Env, bearer
from .test_dashboard import ARGS, CHROMIUM, sign_in
from .test_label_suggestions import URL, _recent_days, _start


@pytest.fixture
async def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Env, Dataset]]:
    """No review model: the live model reviews (fast, and the dashboard says so)."""
    dataset = _recent_days()
    env = await _start(tmp_path, dataset, monkeypatch, None)
    yield env, dataset
    await env.hub.async_stop()


def _yesterday(ts: float, zone: ZoneInfo) -> str:
    return (dt.datetime.fromtimestamp(ts, zone).date() - dt.timedelta(days=1)).isoformat()


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def _hhmm(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M")


async def _suggestions(env: Env, start: float, end: float) -> dict[str, Any]:
    """What the hub suggests for the day, asked directly (default min_minutes, as the dashboard asks)."""
    async with aiohttp.ClientSession() as client, client.get(
        env.url + URL, headers=bearer(env.admin), params={"start": start, "end": end}
    ) as r:
        assert r.status == 200, await r.text()
        answer: dict[str, Any] = await r.json()
    return answer


def _open(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in answer["segments"] if s["scene"] != "idle" and not s["labelled"]]


async def _rows(page: Page) -> list[tuple[str, float, float, str]]:
    rows = page.get_by_test_id("suggest-list").locator("li")
    return [(await row.get_attribute("data-suggestion") or "", float(await row.get_attribute("data-start") or "nan"),
             float(await row.get_attribute("data-end") or "nan"),
             f'{await row.locator("strong").inner_text()} {await row.locator("span").inner_text()}')
            for row in await rows.all()]


def _percent(p: float) -> int:
    return math.floor(p * 100 + 0.5)  # JavaScript's Math.round (Python's round() rounds halves to even)


def _expected_rows(segments: list[dict[str, Any]]) -> list[tuple[str, float, float, str]]:
    return [(s["scene"], s["start"], s["end"],
             f"{s['scene'].replace('_', ' ')} {_hhmm(s['start'])} – {_hhmm(s['end'])} · {_percent(s['confidence'])}%")
            for s in segments]


async def _page(browser: Browser, env: Env, token: str) -> Page:
    # UTC in the browser: the replayed days are UTC days, so a local day is one of them. British English: the
    # dashboard's clock follows the locale, and en-GB's is HH:MM.
    page = await (await browser.new_context(timezone_id="UTC", locale="en-GB")).new_page()
    await sign_in(page, env.url, token, then="scenes")
    await expect(page.get_by_test_id("labels")).to_be_visible()  # shown once the label list (can_edit) is in
    return page


async def test_suggestions_for_a_past_day_and_accepting_one(recorded: tuple[Env, Dataset], tmp_path: Path) -> None:
    env, dataset = recorded
    start, end = dataset.start + 86400, dataset.start + 2 * 86400
    answer = await _suggestions(env, start, end)
    shown = _open(answer)
    assert shown, "the replayed day should give something to suggest"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            opened = time.time()
            page = await _page(browser, env, env.admin)
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            # Yesterday by default, in the browser's own time zone (either side of a midnight passing meanwhile).
            zone = ZoneInfo(await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone"))
            default = await page.get_by_test_id("suggest-day").input_value()
            assert default in {_yesterday(opened, zone), _yesterday(time.time(), zone)}

            await page.get_by_test_id("suggest-day").fill(_day(start))
            await page.get_by_test_id("suggest-go").click()
            summary = page.get_by_test_id("suggest-summary")
            await expect(summary).to_contain_text(f"{len(answer['segments'])} segments from {answer['events']} ")
            await expect(summary).to_contain_text("the live model")
            rows = page.get_by_test_id("suggest-list").locator("li")
            await expect(rows).to_have_count(len(shown))
            assert await _rows(page) == _expected_rows(shown)
            await expect(page.get_by_test_id("suggest-accept")).to_have_count(len(shown))
            await expect(page.get_by_test_id("suggest-empty")).to_be_hidden()
            await page.get_by_test_id("labels").screenshot(path=str(tmp_path / "suggestions.png"))

            # Accept the first: exactly that label, the list shows it, and the suggestion goes away.
            first = shown[0]
            await rows.first.get_by_test_id("suggest-accept").click()
            await expect(page.locator("[data-label]")).to_contain_text("accepted suggestion")
            store = env.hub.components["recognition_labels"]
            assert [(lb.scene, lb.start, lb.end, lb.note, lb.created_by) for lb in store.labels()] == [  # type: ignore[attr-defined]
                (first["scene"], first["start"], first["end"], "accepted suggestion", "alice")]
            after = _open(await _suggestions(env, start, end))
            assert after == shown[1:]  # only the accepted one is labelled now
            await expect(rows).to_have_count(len(after))
            assert await _rows(page) == _expected_rows(after)

            # Once the whole day is labelled there is nothing left to suggest.
            for gap in ((start, first["start"]), (first["end"], end)):
                if gap[1] > gap[0]:
                    store.add("sleeping", *gap, created_by="alice")  # type: ignore[attr-defined]
            await page.get_by_test_id("suggest-go").click()
            empty = page.get_by_test_id("suggest-empty")  # always in the page, hidden until a day has nothing
            await expect(empty).to_be_visible()
            await expect(empty).to_have_text("Nothing to suggest for that day.")
            await expect(rows).to_have_count(0)
            await expect(page.get_by_test_id("suggest-summary")).to_contain_text("segments")
            assert errors == []
        finally:
            await browser.close()


async def test_read_only_sees_suggestions_without_accept_and_errors_are_told(
    recorded: tuple[Env, Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, dataset = recorded
    start, end = dataset.start + 86400, dataset.start + 2 * 86400
    shown = _open(await _suggestions(env, start, end))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await _page(browser, env, env.read_only)
            await page.get_by_test_id("suggest-day").fill(_day(start))
            await page.get_by_test_id("suggest-go").click()
            rows = page.get_by_test_id("suggest-list").locator("li")
            await expect(rows).to_have_count(len(shown))
            assert await _rows(page) == _expected_rows(shown)
            assert await page.get_by_test_id("suggest-accept").count() == 0

            # The hub's refusal reaches the household through the toast, with the hub's own words.
            monkeypatch.setattr(env.hub, "recorder", None)
            try:
                await page.get_by_test_id("suggest-go").click()
                await expect(page.locator("#toast")).to_contain_text("Suggestions: the hub's recorder is disabled")
                await expect(page.get_by_test_id("suggest-summary")).to_be_hidden()
                await expect(rows).to_have_count(0)
            finally:
                monkeypatch.undo()
        finally:
            await browser.close()
