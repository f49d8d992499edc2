"""Benchmark: registering a Matter bridge's devices and entities (one bridge device, then per bridged endpoint a
device and an entity), each change committed on its own (``synchronous=FULL``: one fsync each) against all of
them in one ``registry_batch`` (one commit). Prints JSON: seconds per layout, medians of ``--runs`` runs, for
``--bridged`` endpoints, on the file system of ``--dir`` (default: a temporary directory).

Usage: ``python bench/registry_batch.py [--bridged 100] [--runs 5] [--dir PATH]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qilu_hub.bus import EventBus
from qilu_hub.registry import AreaRegistry, DeviceRegistry, EntityRegistry, registry_batch
from qilu_hub.storage import RegistryStore


def one_run(folder: Path, bridged: int, batched: bool) -> float:
    store, bus = RegistryStore(folder / "registry.db"), EventBus()
    areas, devices = AreaRegistry(store, bus), DeviceRegistry(store, bus)
    entities = EntityRegistry(store, bus, devices, areas)
    try:
        started = time.perf_counter()
        with registry_batch(areas, devices, entities) if batched else nullcontext():
            root = devices.async_get_or_create(source="matter", name="Bridge", identifiers=[("matter", "bridge")])
            for n in range(bridged):
                device = devices.async_get_or_create(source="matter", name=f"Lamp {n}",
                                                     identifiers=[("matter", f"bridged:{n}")],
                                                     connections=[("serial", f"SN{n}")], via_device_id=root.id)
                entities.async_get_or_create(unique_id=f"matter:{n}", capabilities=("on_off", "level"),
                                             name=f"Lamp {n}", device_id=device.id)
        return time.perf_counter() - started
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bridged", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    result: dict[str, object] = {"bridged": args.bridged, "runs": args.runs}
    for batched in (False, True):
        times = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
                times.append(one_run(Path(tmp), args.bridged, batched))
        result["batched_s" if batched else "commit_each_s"] = {"median": round(statistics.median(times), 4),
                                                               "max": round(max(times), 4)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
