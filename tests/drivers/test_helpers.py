from __future__ import annotations

import asyncio
import itertools

import pytest

from qilu_hub.sdk import Backoff, PollingCoordinator, reconnect_with_backoff
from qilu_hub.sdk._helpers import spawn_tracked


def test_backoff_grows_to_the_cap_and_resets() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0)
    delays = [backoff.next() for _ in range(6)]
    assert 0.8 <= delays[0] <= 1.0
    assert all(b >= a * 0.8 for a, b in itertools.pairwise(delays))
    assert max(delays) <= 8.0 and delays[-1] >= 6.4
    backoff.reset()
    assert backoff.next() <= 1.0


async def test_reconnect_retries_until_success() -> None:
    calls = 0

    async def connect() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("refused")
        return "connected"

    assert await reconnect_with_backoff(connect, backoff=Backoff(0.01, 0.02)) == "connected"
    assert calls == 3


async def test_reconnect_gives_up_and_time_limits_each_try() -> None:
    async def hang() -> None:
        await asyncio.sleep(10)

    with pytest.raises(TimeoutError):
        await reconnect_with_backoff(hang, backoff=Backoff(0.01, 0.01), attempts=2, timeout=0.05)


async def test_polling_coordinator_reports_data_and_unavailability() -> None:
    results: list[object] = [1, ConnectionError("gone"), ConnectionError("gone"), 4]
    seen: list[int] = []
    lost: list[BaseException] = []

    async def fetch() -> int:
        item = results.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    coord: PollingCoordinator[int] = PollingCoordinator("t", fetch, 0.01, failures_before_unavailable=2,
                                                        on_unavailable=lost.append)
    coord.add_listener(seen.append)
    assert await coord.refresh() == 1 and coord.available
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await coord.refresh()
    assert not coord.available and len(lost) == 1
    assert await coord.refresh() == 4 and coord.available
    assert seen == [1, 4]


async def test_polling_loop_runs_and_stops() -> None:
    count = 0

    async def fetch() -> int:
        nonlocal count
        count += 1
        return count

    coord: PollingCoordinator[int] = PollingCoordinator("t", fetch, 0.01)
    coord.start()
    while count < 3:
        await asyncio.sleep(0.01)
    await coord.stop()
    stopped_at = count
    await asyncio.sleep(0.05)
    assert count == stopped_at


async def test_spawn_tracked_forgets_finished_tasks() -> None:
    tasks: set[asyncio.Task[object]] = set()

    async def boom() -> None:
        raise RuntimeError("x")

    task = spawn_tracked(tasks, boom(), "boom")
    assert task in tasks
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert not tasks
