import asyncio

from qilu_hub import supervisor as sup
from qilu_hub.supervisor import Supervisor


async def test_crashing_task_is_restarted_with_backoff(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sup, "BACKOFF_START", 0.01)
    runs: list[int] = []
    done = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 4:
            raise ConnectionError("socket closed")
        done.set()
        await asyncio.sleep(3600)

    s = Supervisor()
    s.spawn("flaky", flaky)
    await asyncio.wait_for(done.wait(), 5)
    info = s.info["flaky"]
    assert info.restarts == 3 and "socket closed" in (info.last_error or "")
    assert s.task_count() == 1
    await s.stop()
    assert s.task_count() == 0


async def test_task_without_restart_runs_once() -> None:
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)
        raise ValueError("bad")

    s = Supervisor()
    task = s.spawn("once", once, restart=False)
    await task
    assert runs == [1] and s.info["once"].last_error == "ValueError: bad"
