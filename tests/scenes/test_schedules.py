"""Scene schedules fire at their wall time in the system's zone: across a daylight-saving change, and after the
wall clock is stepped (NTP setting a Raspberry Pi's clock after boot), without waiting hours for either.

The clock is moved with time-machine (time.time, datetime and TZ); asyncio keeps sleeping on the real monotonic
clock, as it does on a gateway whose wall clock is stepped under it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from qilu_hub import Hub
from qilu_hub.scenes import SceneManager

BERLIN = ZoneInfo("Europe/Berlin")
SCENE = """version: 1
home_scenes:
  - name: wake_up
    targets:
      light.bedside_lamp: {command: turn_on}
    triggers:
      - schedule: {at: "07:00"}
"""


class Home:
    def __init__(self, hub: Hub, manager: SceneManager, calls: list[str]) -> None:
        self.hub, self.manager, self.calls = hub, manager, calls


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.01)):  # bounded
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


@pytest.fixture
async def home(tmp_path: Path) -> AsyncIterator[Callable[[], Any]]:
    """Start (when called, inside the test's clock) a hub whose scene turns a lamp on at 07:00 every day."""
    started: list[Hub] = []

    async def start() -> Home:
        (tmp_path / "scenes").mkdir()
        (tmp_path / "scenes" / "wake_up.yaml").write_text(SCENE)
        hub = Hub(tmp_path / "config", {}, recorder=False)
        calls: list[str] = []

        async def lamp(entity: Any, command: str, args: dict[str, Any], context: Any) -> None:
            calls.append(command)

        lamp_entity = hub.entities.async_get_or_create(unique_id="bedside", capabilities=("on_off", "level"),
                                                       name="bedside lamp")
        hub.commands.register_entity(lamp_entity.entity_id, lamp)
        manager = SceneManager([tmp_path / "scenes"])
        manager.schedule_step = 0.02  # how often the wall clock is read again; a gateway uses 30 s
        hub.add_component(manager)
        await hub.async_start()
        started.append(hub)
        assert "wake_up" in manager.scenes
        await asyncio.sleep(0.1)  # the schedule has worked out its next 07:00 from the clock it started with
        return Home(hub, manager, calls)

    yield start
    for hub in started:
        await hub.async_stop()


async def test_a_schedule_keeps_its_wall_time_across_the_spring_change(home: Callable[[], Any]) -> None:
    """Set up on Saturday evening in Berlin (UTC+1), the 07:00 scene fires at 07:00 on Sunday, when Berlin is
    on summer time (UTC+2), once, and not at 08:00 (07:00 at Saturday's offset)."""
    with time_machine.travel(dt.datetime(2026, 3, 28, 22, 0, tzinfo=BERLIN), tick=True) as traveller:
        h: Home = await home()
        traveller.move_to(dt.datetime(2026, 3, 29, 6, 59, 59, 800_000, tzinfo=BERLIN))
        assert await _until(lambda: h.calls == ["turn_on"]), "07:00 summer time passed without the scene"
        traveller.move_to(dt.datetime(2026, 3, 29, 7, 59, 59, 800_000, tzinfo=BERLIN))
        await asyncio.sleep(0.5)
        assert h.calls == ["turn_on"]


async def test_a_stepped_clock_neither_fires_hours_late_nor_misses_the_next_day(home: Callable[[], Any]) -> None:
    """A gateway starts with a stale clock (06:00 the day before); NTP then sets it to noon. The 07:00 that the
    stale clock was waiting for is not run at noon, and the next morning's is."""
    with time_machine.travel(dt.datetime(2026, 6, 1, 6, 0, tzinfo=BERLIN), tick=True) as traveller:
        h: Home = await home()
        traveller.move_to(dt.datetime(2026, 6, 2, 12, 0, tzinfo=BERLIN))
        await asyncio.sleep(0.5)
        assert h.calls == []
        traveller.move_to(dt.datetime(2026, 6, 3, 6, 59, 59, 800_000, tzinfo=BERLIN))
        assert await _until(lambda: h.calls == ["turn_on"]), "the next 07:00 passed without the scene"
        await asyncio.sleep(0.3)
        assert h.calls == ["turn_on"]


def test_times_the_change_skips_or_repeats_fire_once() -> None:
    from qilu_hub.scenes import next_fire
    from qilu_hub.scenes.model import ScheduleTrigger

    half_past_two = ScheduleTrigger(2, 30, None)
    spring = next_fire(dt.datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN), half_past_two)  # 02:30 does not exist
    assert spring.timestamp() == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC).timestamp()  # 03:30 summer time
    first = next_fire(dt.datetime(2026, 10, 25, 1, 0, tzinfo=BERLIN), half_past_two)  # 02:30 happens twice
    assert first.timestamp() == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC).timestamp()
    after = next_fire(dt.datetime.fromtimestamp(first.timestamp() + 1, BERLIN), half_past_two)
    assert after == dt.datetime(2026, 10, 26, 2, 30, tzinfo=BERLIN)  # not the second 02:30 an hour later
