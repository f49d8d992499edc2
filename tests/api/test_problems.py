"""The hub's problem list (hub/problems.py, GET /api/problems): a scene file broken while the hub runs is listed
with its file:line, and goes from the list when the file is fixed or deleted. A real hub with the scenes component
watching a real folder, real file edits, the real REST API over loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer
from qilu_hub.scenes import SceneManager
from qilu_hub.virtual import VirtualAppliances

LIGHT = "light.living_room_ceiling_light"
GOOD = f"version: 1\nhome_scenes:\n  - name: evening\n    targets:\n      {LIGHT}: turn_on\n"
BROKEN = f"version: 1\nhome_scenes:\n  - name: evening\n    targets:\n      {LIGHT}: fly\n"  # line 5: no such command
WAITING = "version: 1\nhome_scenes:\n  - name: porch\n    targets:\n      light.porch_lamp: turn_on\n"


def _write(path: Path, text: str) -> None:
    """As an editor that saves by rename does, so the watcher never reads half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


async def _problems(session: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    async with session.get(f"{url}/api/problems", headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def _until(session: aiohttp.ClientSession, url: str, token: str, predicate: Any, what: str) -> list[Any]:
    """Poll the API until the list is as wanted; the bound only ends a broken run, it asserts nothing about speed."""
    for _ in range(1000):
        status, body = await _problems(session, url, token)
        assert status == 200, body
        if predicate(body):
            return list(body)
        await asyncio.sleep(0.02)
    raise AssertionError(f"not reached: {what}; last answer {body}")


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Hub, str, Path]]:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    _write(scenes / "a.yaml", GOOD)
    hub = Hub(tmp_path / "config", {}, recorder=False)
    hub.add_component(VirtualAppliances(animate=False))
    hub.add_component(SceneManager([scenes], watch_interval=0.02))
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    await hub.async_start()
    try:
        yield hub, api.url, scenes
    finally:
        await hub.async_stop()


async def test_a_broken_scene_file_is_listed_at_its_line_until_it_is_fixed(running: tuple[Hub, str, Path]) -> None:
    hub, url, scenes = running
    _, admin = hub.tokens.create("admin", Scopes(admin=True))
    _, viewer = hub.tokens.create("viewer", Scopes(read_only=True))
    async with aiohttp.ClientSession() as session:
        assert await _problems(session, url, admin) == (200, [])
        status, body = await _problems(session, url, viewer)
        assert status == 403 and "admin" in body["message"]  # it names files in the config directory

        _write(scenes / "a.yaml", BROKEN)
        (problem,) = await _until(session, url, admin, lambda b: b != [], "the broken edit listed")
        assert problem["id"] == f"scenes:{scenes / 'a.yaml'}" and problem["domain"] == "scenes"
        assert problem["severity"] == "error"
        assert problem["file"] == str(scenes / "a.yaml") and problem["line"] == 5
        assert "does not accept command 'fly'" in problem["message"]
        assert "last good scenes keep working: evening" in problem["message"]
        assert len(problem["details"]) == 1 and problem["details"][0].startswith(f"{scenes / 'a.yaml'}:5: ")
        since = dt.datetime.fromisoformat(problem["since"])
        assert since.utcoffset() == dt.timedelta(0)

        # A file that names an appliance not adopted yet waits: a warning, listed beside the error.
        _write(scenes / "later.yaml", WAITING)
        listed = await _until(session, url, admin, lambda b: len(b) == 2, "the waiting file listed")
        waiting = next(p for p in listed if p["file"].endswith("later.yaml"))
        assert waiting["severity"] == "warning" and waiting["line"] == 5 and "light.porch_lamp" in waiting["message"]
        assert listed[0]["id"] == problem["id"] and listed[0]["since"] == problem["since"]  # oldest first, kept

        # Fixed, the error goes; deleted, the waiting file's warning goes too.
        _write(scenes / "a.yaml", GOOD.replace("turn_on", "turn_off"))
        (left,) = await _until(session, url, admin, lambda b: len(b) == 1, "the fixed file gone from the list")
        assert left["file"].endswith("later.yaml")
        (scenes / "later.yaml").unlink()
        await _until(session, url, admin, lambda b: b == [], "the deleted file gone from the list")
    assert hub.problems.all() == []


async def test_a_file_broken_at_start_is_listed_and_a_stopped_hub_lists_nothing(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    _write(scenes / "bad.yaml", "version: 1\nhome_scenes:\n  - name: [unclosed\n")
    hub = Hub(tmp_path / "config", {}, recorder=False)
    hub.add_component(SceneManager([scenes], watch_interval=0))
    await hub.async_start()
    try:
        (problem,) = hub.problems.all()
        assert problem.file == str(scenes / "bad.yaml") and problem.line is not None and problem.line >= 3
        assert problem.severity == "error"
    finally:
        await hub.async_stop()
    assert hub.problems.all() == []
