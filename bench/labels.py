"""Household label store costs with a full store (20,000 labels, the bound).

Prints JSON: add latency with the store nearly full (one committed SQLite write with synchronous=FULL,
plus the overlap check against every label), the list answer's work (newest 200), hub start-up time
with the labels to load, and the registry database's size.
Usage: python bench/labels.py [--runs R] [--labels N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from qilu_hub import Hub
from qilu_hub.recognition.labels import KIND, MAX_LABELS, Label, LabelStore


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_run(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        base = time.time() - 300 * 86400
        hub = Hub(Path(tmp), {}, recorder=False)
        with hub.storage.transaction() as conn:  # fill in one transaction: the adds are measured below
            for i in range(n):
                label = Label(f"l{i:06d}", "cooking", base + i * 600, base + i * 600 + 300, created=base)
                hub.storage.put(KIND, label.id, label.to_dict(), conn)
        store = LabelStore(max_labels=n + 200)
        hub.add_component(store)
        a = time.perf_counter()
        await hub.async_start()
        load_s = time.perf_counter() - a
        assert len(store) == n
        adds: list[float] = []
        start = base + n * 600
        for i in range(200):
            a = time.perf_counter()
            store.add("eating", start + i * 600, start + i * 600 + 300)
            adds.append(time.perf_counter() - a)
        lists: list[float] = []
        for _ in range(50):
            a = time.perf_counter()
            [lb.to_dict() for lb in store.labels(200)]
            lists.append(time.perf_counter() - a)
        await hub.async_stop()
        size = sum(p.stat().st_size for p in Path(tmp).glob("registry.db*") if not p.name.endswith(".bak"))
    return {"add_ms_p50": statistics.median(adds) * 1e3, "add_ms_p99": _pct(adds, 0.99) * 1e3,
            "list200_ms_p50": statistics.median(lists) * 1e3, "hub_start_s": load_s,
            "registry_bytes": float(size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--labels", type=int, default=MAX_LABELS)
    args = parser.parse_args()
    runs = [asyncio.run(one_run(args.labels)) for _ in range(args.runs)]
    out: dict[str, object] = {"labels": args.labels, "runs": args.runs}
    for key in runs[0]:
        values = [r[key] for r in runs]
        out[key] = {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
                    "max": round(max(values), 4)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
