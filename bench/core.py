"""State-machine writes/s and bus events/s with 1,000 entities and one listener.

Prints JSON. Same shape as the figures quoted for Home Assistant Core 2024.3.3 on this
machine kind (about 53,000 writes/s and 88,000 events/s): in-process, one listener.
Usage: python bench/core.py [--writes N] [--runs R]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time

from qilu_hub.bus import EventBus
from qilu_hub.context import Context
from qilu_hub.states import EVENT_STATE_CHANGED, StateMachine

ENTITIES = 1000


def bench_writes(n: int) -> float:
    bus = EventBus()
    states = StateMachine(bus)
    received = 0

    def listener(_event: object) -> None:
        nonlocal received
        received += 1

    bus.listen(EVENT_STATE_CHANGED, listener)
    ids = [f"sensor.entity_{i}" for i in range(ENTITIES)]
    attrs = {"unit_of_measurement": "W", "friendly_name": "Power"}
    ctx = Context("bench")
    for entity_id in ids:
        states.async_set(entity_id, -1, attrs, ctx)
    received = 0
    set_state = states.async_set
    start = time.perf_counter()
    for i in range(n):
        set_state(ids[i % ENTITIES], i, attrs, ctx)
    elapsed = time.perf_counter() - start
    assert received == n
    return n / elapsed


def bench_writes_recorded(n: int, tmp: str) -> float:
    """The same writes with the recorder's listener attached too (buffering; commits not timed)."""
    import asyncio

    from qilu_hub import Hub

    async def run() -> float:
        hub = Hub(tmp, {"recorder": {"commit_interval": 3600}})
        await hub.async_start()
        ids = [f"sensor.entity_{i}" for i in range(ENTITIES)]
        attrs = {"unit_of_measurement": "W", "friendly_name": "Power"}
        ctx = Context("bench")
        set_state = hub.states.async_set
        start = time.perf_counter()
        for i in range(n):
            set_state(ids[i % ENTITIES], i, attrs, ctx)
        elapsed = time.perf_counter() - start
        assert hub.recorder is not None
        hub.recorder._buffer.clear()
        await hub.async_stop()
        return n / elapsed

    return asyncio.run(run())


def bench_events(n: int) -> float:
    bus = EventBus()
    received = 0

    def listener(_event: object) -> None:
        nonlocal received
        received += 1

    bus.listen("bench_event", listener)
    fire = bus.fire
    data = {"entity_id": "sensor.x", "value": 1}
    start = time.perf_counter()
    for _ in range(n):
        fire("bench_event", data)
    elapsed = time.perf_counter() - start
    assert received == n
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    gc.collect()
    writes = [bench_writes(args.writes) for _ in range(args.runs)]
    events = [bench_events(args.writes) for _ in range(args.runs)]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        recorded = [bench_writes_recorded(args.writes, f"{tmp}/{r}") for r in range(args.runs)]
    ha_writes, ha_events = 53_000, 88_000
    result = {
        "benchmark": "core",
        "entities": ENTITIES,
        "listeners": 1,
        "runs": args.runs,
        "state_writes_per_s_median": round(statistics.median(writes)),
        "state_writes_per_s_runs": [round(w) for w in writes],
        "state_writes_with_recorder_per_s_median": round(statistics.median(recorded)),
        "bus_events_per_s_median": round(statistics.median(events)),
        "bus_events_per_s_runs": [round(e) for e in events],
        "home_assistant_2024_3_3": {"state_writes_per_s": ha_writes, "bus_events_per_s": ha_events},
        "ratio_vs_home_assistant": {
            "state_writes": round(statistics.median(writes) / ha_writes, 2),
            "bus_events": round(statistics.median(events) / ha_events, 2),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
