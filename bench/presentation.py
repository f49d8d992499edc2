"""What Home Assistant's presentation costs on the state-write hot path: writes/s with and without it.

A hub with 1,000 registered sensor entities (on 100 devices) and one listener; every write changes the value,
so every write is an event. "with" is the hub as it runs (``StateMachine.decorate`` merges each entity's
friendly_name, unit, device and state class into the state); "without" is the same hub with the hook removed,
the attributes as the driver gave them. Runs alternate; medians are printed as JSON.
Usage: python bench/presentation.py [--writes N] [--runs R]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time

from qilu_hub import Hub
from qilu_hub.context import Context
from qilu_hub.states import EVENT_STATE_CHANGED

ENTITIES = 1000
DEVICES = 100


def _hub(directory: str) -> tuple[Hub, list[str]]:
    hub = Hub(directory, {}, recorder=False)
    ids = []
    for d in range(DEVICES):
        device = hub.devices.async_get_or_create(source="bench", name=f"Meter {d}", identifiers=[("bench", str(d))])
        for e in range(ENTITIES // DEVICES):
            entity = hub.entities.async_get_or_create(unique_id=f"bench:{d}:{e}", capabilities=("power",),
                                                      name=f"Power {e}", device_id=device.id)
            ids.append(entity.entity_id)
    return hub, ids


def bench_writes(hub: Hub, ids: list[str], n: int, presentation: bool) -> float:
    states = hub.states
    states.decorate = hub.presentation.decorate if presentation else None
    received = 0

    def listener(_event: object) -> None:
        nonlocal received
        received += 1

    unsub = hub.bus.listen(EVENT_STATE_CHANGED, listener)
    attrs = {"phase": "L1"}
    ctx = Context("bench")
    set_state = states.async_set
    for entity_id in ids:  # every entity has a state and a cached Look before timing
        set_state(entity_id, -1, attrs, ctx)
    received = 0
    start = time.perf_counter()
    for i in range(n):
        set_state(ids[i % ENTITIES], i, attrs, ctx)
    elapsed = time.perf_counter() - start
    unsub()
    assert received == n
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hub, ids = _hub(tmp)
        with_look: list[float] = []
        without: list[float] = []
        for _ in range(args.runs):
            gc.collect()
            with_look.append(bench_writes(hub, ids, args.writes, presentation=True))
            gc.collect()
            without.append(bench_writes(hub, ids, args.writes, presentation=False))
        decorate = hub.presentation.decorate
        attrs = {"phase": "L1"}
        per_call = []
        for _ in range(args.runs):  # the merge alone, for one cached Look: ns per state written
            start = time.perf_counter()
            for i in range(args.writes):
                decorate(ids[i % ENTITIES], i, attrs)
            per_call.append((time.perf_counter() - start) / args.writes * 1e9)
        shown = sorted(decorate(ids[0], 1, attrs))
        hub.storage.close()
    result = {
        "benchmark": "presentation",
        "entities": ENTITIES,
        "listeners": 1,
        "runs": args.runs,
        "writes_per_s_with_presentation_median": round(statistics.median(with_look)),
        "writes_per_s_without_presentation_median": round(statistics.median(without)),
        "with_runs": [round(w) for w in with_look],
        "without_runs": [round(w) for w in without],
        "slowdown_median": round(statistics.median(without) / statistics.median(with_look), 2),
        "decorate_ns_per_write_median": round(statistics.median(per_call)),
        "attributes_per_state": {"with": shown, "without": sorted(attrs)},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
