"""Crash safety: SIGKILL a hub at random moments under heavy write load, reopen, check, repeat.

Each round starts a hub child process that adopts devices (registry writes) and writes states (history)
as fast as it can, printing each device only after its registry commit returned. The parent kills it at
a random moment, then checks that every acknowledged device and entity is present, that both databases
pass `PRAGMA integrity_check`, and that history stays within its cap.

    python scripts/reliability/crash_loop.py --rounds 200            # prints JSON
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HISTORY_CAP_MB = 2


async def _child(config_dir: str) -> None:
    from hub import Hub

    hub = Hub(config_dir, {"recorder": {"commit_interval": 0.05, "max_size_mb": HISTORY_CAP_MB}})
    await hub.async_start()
    n = len(hub.devices)
    while True:
        device = hub.devices.async_get_or_create(source="crash", name=f"D{n}", identifiers=[("crash", str(n))])
        entity = hub.entities.async_get_or_create(unique_id=f"crash:{n}", capabilities=("power",), name=f"P{n}",
                                                  device_id=device.id)
        sys.stdout.write(f"ACK {device.id} {entity.entity_id}\n")
        sys.stdout.flush()
        for i in range(200):
            hub.states.async_set(entity.entity_id, i, {"i": i, "pad": "x" * 40})
        await asyncio.sleep(0)
        n += 1


def _check(config_dir: Path, acked: dict[str, str]) -> dict[str, Any]:
    from hub.bus import EventBus
    from hub.registry import AreaRegistry, DeviceRegistry, EntityRegistry
    from hub.storage import RegistryStore

    integrity = {}
    for name in ("registry.db", "history.db"):
        conn = sqlite3.connect(config_dir / name)
        integrity[name] = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
    store = RegistryStore(config_dir / "registry.db")
    bus = EventBus()
    devices = DeviceRegistry(store, bus)
    entities = EntityRegistry(store, bus, devices, AreaRegistry(store, bus))
    lost_devices = sum(1 for d in acked if devices.get(d) is None)
    lost_entities = sum(1 for e in acked.values() if entities.get(e) is None)
    store.close()
    history_bytes = sum(p.stat().st_size for p in config_dir.glob("history.db*") if not p.name.endswith(".bak"))
    return {"integrity": integrity, "lost_devices": lost_devices, "lost_entities": lost_entities,
            "history_bytes": history_bytes}


def run(rounds: int, config_dir: Path, seed: int = 1234, max_delay: float = 0.4) -> dict[str, Any]:
    rng = random.Random(seed)
    acked: dict[str, str] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    failures: list[dict[str, Any]] = []
    max_history = 0
    start = time.monotonic()
    for round_no in range(rounds):
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(config_dir)], stdout=subprocess.PIPE,
                                text=True, env=env)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        time.sleep(rng.uniform(0.0, max_delay))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        for line in (first + out).splitlines():
            if line.startswith("ACK "):
                _, device_id, entity_id = line.split()
                acked[device_id] = entity_id
        result = _check(config_dir, acked)
        max_history = max(max_history, result["history_bytes"])
        if result["lost_devices"] or result["lost_entities"] or set(result["integrity"].values()) != {"ok"}:
            failures.append({"round": round_no, **result})
    return {
        "benchmark": "crash_loop",
        "rounds": rounds,
        "kills_survived": rounds - len(failures),
        "acknowledged_devices": len(acked),
        "failures": failures,
        "history_cap_bytes": HISTORY_CAP_MB * 1024 * 1024,
        "history_max_bytes_seen": max_history,
        "seconds": round(time.monotonic() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child))
        return
    with tempfile.TemporaryDirectory(prefix="qilu-crash-") as tmp:
        print(json.dumps(run(args.rounds, Path(tmp), args.seed), indent=2))


if __name__ == "__main__":
    main()
