"""Crash safety: SIGKILL a hub at random moments, during start-up and under heavy write load; check; repeat.

Each round starts a hub child process that adopts devices (registry writes) and writes states (history)
as fast as it can, printing each device only after its registry commit returned. The parent kills it at
a random moment: about a third of the rounds at any moment from the process start (so also while it opens,
checks or creates its databases), the rest once it is writing. It then checks that every acknowledged device
and entity is present, that both databases pass `PRAGMA integrity_check`, that history.db (with its WAL) is
within its configured cap, and that the hub did not exit by itself (a start that failed after a kill).
Any of these is a failure of the round.

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
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HISTORY_CAP_MB = 2


async def _child(config_dir: str) -> None:
    from qilu_hub import Hub

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
    from qilu_hub.bus import EventBus
    from qilu_hub.registry import AreaRegistry, DeviceRegistry, EntityRegistry
    from qilu_hub.storage import RegistryStore

    integrity: dict[str, str] = {}
    for name in ("registry.db", "history.db"):
        if not (config_dir / name).exists():  # killed before the hub created it
            integrity[name] = "ok" if name == "history.db" or not acked else "missing"
            continue
        conn = sqlite3.connect(config_dir / name)
        integrity[name] = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
    lost_devices = lost_entities = len(acked)
    if (config_dir / "registry.db").exists():
        store = RegistryStore(config_dir / "registry.db")
        bus = EventBus()
        devices = DeviceRegistry(store, bus)
        entities = EntityRegistry(store, bus, devices, AreaRegistry(store, bus))
        lost_devices = sum(1 for d in acked if devices.get(d) is None)
        lost_entities = sum(1 for e in acked.values() if entities.get(e) is None)
        store.close()
    # What the recorder counts against recorder.max_size_mb: the database and its write-ahead log.
    history_bytes = sum(p.stat().st_size for p in (config_dir / "history.db", config_dir / "history.db-wal")
                        if p.exists())
    return {"integrity": integrity, "lost_devices": lost_devices, "lost_entities": lost_entities,
            "history_bytes": history_bytes}


class _Child:
    """One hub child process; threads drain its output so that it never blocks on a full pipe."""

    def __init__(self, config_dir: Path, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, __file__, "--child", str(config_dir)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self.first_ack = threading.Event()
        self.first_ack_after: float | None = None  # seconds from start to the first acknowledged write
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("ACK ") and not self.first_ack.is_set():
                self.first_ack_after = time.monotonic() - self.started
                self.first_ack.set()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr = [*self.stderr[-40:], line]

    def kill(self) -> int | None:
        """SIGKILL it; the exit status it had already returned by itself (None: it was still running)."""
        exited = self.proc.poll()
        if exited is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        for thread in self._threads:
            thread.join(timeout=10)
        return exited


def run(rounds: int, config_dir: Path, seed: int = 1234, max_delay: float = 0.4,
        startup_share: float = 0.35) -> dict[str, Any]:
    """``startup_share`` of the rounds kill the child at a random moment from its start (before, during or just
    after opening its databases); the others once it is writing, up to ``max_delay`` after its first write."""
    rng = random.Random(seed)
    acked: dict[str, str] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cap = HISTORY_CAP_MB * 1024 * 1024
    failures: list[dict[str, Any]] = []
    max_history = 0
    # Longest time seen from spawn to the first write (measured by the load rounds; the first round is one):
    # a start-up kill picks a moment in it, so it lands anywhere from interpreter start to the first commit.
    startup_window: float | None = None
    kills = {"during_startup": 0, "under_load": 0}
    start = time.monotonic()
    for round_no in range(rounds):
        child = _Child(config_dir, env)
        if startup_window is not None and rng.random() < startup_share:
            time.sleep(rng.uniform(0.0, startup_window))
        else:
            child.first_ack.wait(timeout=60)
            time.sleep(rng.uniform(0.0, max_delay))
        killed_during_startup = not child.first_ack.is_set()
        exited = child.kill()
        kills["during_startup" if killed_during_startup else "under_load"] += 1
        if child.first_ack_after is not None:
            startup_window = max(startup_window or 0.0, child.first_ack_after)
        for line in child.lines:
            if line.startswith("ACK "):
                _, device_id, entity_id = line.split()
                acked[device_id] = entity_id
        result = _check(config_dir, acked)
        max_history = max(max_history, result["history_bytes"])
        problems = []
        if result["lost_devices"] or result["lost_entities"]:
            problems.append("acknowledged devices or entities lost")
        if set(result["integrity"].values()) != {"ok"}:
            problems.append("integrity check failed")
        if result["history_bytes"] > cap:
            problems.append(f"history.db over its cap ({result['history_bytes']} > {cap} bytes)")
        if exited is not None:  # it stopped before the kill: a start that failed after an earlier kill
            problems.append(f"hub exited by itself with status {exited}")
        if problems:
            failures.append({"round": round_no, "killed_during_startup": killed_during_startup,
                             "problems": problems, **result, "stderr_tail": "".join(child.stderr[-8:])[-1500:]})
    return {
        "benchmark": "crash_loop",
        "rounds": rounds,
        "kills": kills,
        "kills_survived": rounds - len(failures),
        "acknowledged_devices": len(acked),
        "failures": failures,
        "history_cap_bytes": cap,
        "history_max_bytes_seen": max_history,
        "startup_window_s": round(startup_window or 0.0, 2),
        "seconds": round(time.monotonic() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--startup-share", type=float, default=0.35,
                        help="share of rounds that kill the hub at a random moment of its start-up")
    parser.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child))
        return
    with tempfile.TemporaryDirectory(prefix="qilu-crash-") as tmp:
        result = run(args.rounds, Path(tmp), args.seed, startup_share=args.startup_share)
        print(json.dumps(result, indent=2))
    if result["failures"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
