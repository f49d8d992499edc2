import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from qilu_hub import Hub
from qilu_hub.recorder import Recorder, RecorderConfig


async def test_history_is_recorded_and_queryable(hub: Hub) -> None:
    start = time.time() - 1
    hub.states.async_set("sensor.t", 20.0, {"unit": "°C"})
    hub.states.async_set("sensor.t", 21.5)
    hub.states.async_set("switch.s", "on")
    assert hub.recorder is not None
    rows = await hub.recorder.async_history(start, entity_ids=["sensor.t"])
    assert [r["state"] for r in rows] == ["20.0", "21.5"]
    assert rows[1]["attributes"] == {"unit": "°C"}
    everything = await hub.recorder.async_history(start)
    assert {r["entity_id"] for r in everything} == {"sensor.t", "switch.s"}


async def test_size_cap_holds_under_a_write_storm(tmp_path: Path) -> None:
    cap = 1024 * 1024
    hub = Hub(tmp_path, {}, recorder=False)
    recorder = Recorder(tmp_path / "history.db", RecorderConfig(max_bytes=cap, commit_interval=3600))
    hub.add_component(recorder)
    await hub.async_start()
    peak = 0
    try:
        for burst in range(40):
            for i in range(5000):
                n = burst * 5000 + i
                hub.states.async_set(f"sensor.e{n % 1000}", n, {"seq": n, "note": "storm" * 4})
            await recorder.async_flush()
            peak = max(peak, recorder.file_bytes())
        last = await recorder.async_history(0, entity_ids=["sensor.e999"])
    finally:
        await hub.async_stop()
    assert recorder.rows_written == 200_000 - recorder.rows_dropped
    assert recorder.rows_trimmed > 0  # old history was deleted to make room
    assert peak <= cap, f"history grew to {peak} bytes, cap {cap}"
    assert last[-1]["state"] == "199999"  # the newest history survives
    conn = sqlite3.connect(tmp_path / "history.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


async def test_corrupt_history_does_not_stop_the_hub(tmp_path: Path) -> None:
    (tmp_path / "history.db").write_bytes(b"garbage" * 1000)
    hub = Hub(tmp_path, {"recorder": {"commit_interval": 0.05}})
    await hub.async_start()
    hub.states.async_set("switch.a", "on")
    assert hub.recorder is not None
    rows = await hub.recorder.async_history(0)
    await hub.async_stop()
    assert [r["entity_id"] for r in rows] == ["switch.a"]
    assert list(tmp_path.glob("history.db.corrupt-*"))


async def test_excluded_domains_are_not_recorded(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {"recorder": {"exclude_domains": ["sensor"], "commit_interval": 0.05}})
    await hub.async_start()
    hub.states.async_set("sensor.noisy", 1)
    hub.states.async_set("switch.kept", "on")
    await asyncio.sleep(0)
    assert hub.recorder is not None
    rows = await hub.recorder.async_history(0)
    await hub.async_stop()
    assert [r["entity_id"] for r in rows] == ["switch.kept"]


async def test_full_disk_costs_history_not_the_hub(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {"recorder": {"commit_interval": 3600}})
    await hub.async_start()
    recorder = hub.recorder
    assert recorder is not None and recorder._conn is not None
    # SQLite reports SQLITE_FULL exactly as on a full disk once the page limit is reached.
    pages = recorder._conn.execute("PRAGMA page_count").fetchone()[0]
    recorder._conn.execute(f"PRAGMA max_page_count={pages}")
    for i in range(3000):
        hub.states.async_set(f"sensor.s{i}", i, {"padding": "x" * 100})
    await recorder.async_flush()
    assert recorder.commit_errors == 1 and "full" in (recorder.last_error or "")
    # The registries are untouched and the hub still works.
    device = hub.devices.async_get_or_create(source="t", name="After", identifiers=[("t", "after")])
    assert hub.devices.get(device.id) is not None
    hub.states.async_set("switch.after", "on")
    assert hub.states.get("switch.after").value == "on"
    await hub.async_stop()


def _hold_worker(recorder: Recorder) -> threading.Event:
    """Keep the recorder's one worker thread busy until the returned gate is set, so that the next commit
    waits in its queue: the moment a stop or a cancelled request used to drop it (a race a busy machine loses)."""
    gate = threading.Event()
    recorder._executor.submit(gate.wait, 10)
    return gate


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):  # bounded: 5 s at most
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def _rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT entity_id FROM states ORDER BY id")]
    finally:
        conn.close()


async def test_a_stop_keeps_the_batch_the_commit_loop_has_taken(tmp_path: Path) -> None:
    """The commit loop took the buffer and queued it for the worker; the hub stops before the worker starts it.
    The batch must still reach the database (it used to be cancelled with the loop and lost)."""
    hub = Hub(tmp_path, {"recorder": {"commit_interval": 0.01}})
    await hub.async_start()
    recorder = hub.recorder
    assert recorder is not None
    await recorder.async_flush()  # the first purge, out of the way
    gate = _hold_worker(recorder)
    hub.states.async_set("switch.taken_by_the_loop", "on")
    await _until(lambda: not recorder._buffer)  # the loop has the batch, queued behind the gate
    stopping = asyncio.create_task(hub.async_stop())
    await _until(lambda: recorder._task is not None and recorder._task.done())  # the loop is cancelled
    gate.set()
    await stopping
    assert _rows(tmp_path / "history.db") == ["switch.taken_by_the_loop"]
    assert recorder.rows_dropped == 0


async def test_a_cancelled_history_request_keeps_the_batch_it_flushed(tmp_path: Path) -> None:
    """A client that goes away while its history request flushes the buffer must not cost that history."""
    hub = Hub(tmp_path, {"recorder": {"commit_interval": 3600}})
    await hub.async_start()
    recorder = hub.recorder
    assert recorder is not None
    await recorder.async_flush()
    gate = _hold_worker(recorder)
    hub.states.async_set("switch.flushed_by_a_request", "on")
    request = asyncio.create_task(recorder.async_history(0))
    await _until(lambda: not recorder._buffer)
    request.cancel()
    await asyncio.wait([request])
    gate.set()
    rows = await recorder.async_history(0)
    await hub.async_stop()
    assert [r["entity_id"] for r in rows] == ["switch.flushed_by_a_request"]
