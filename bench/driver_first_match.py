"""The event loop's longest stall while a built-in driver loads on its first matching advert.

    python bench/driver_first_match.py [--runs N] [--tree DIR ...] [--driver NAME ...]   # prints one JSON object

A driver's module and protocol library are imported when an advert first matches it; while that runs on the
event loop, every client of the hub waits. For each driver and source tree (default: this one; name others,
e.g. an export of the previous commit, to compare in one run) a fresh hub process (the driver manager, discovery
with no radio, the API on loopback: nothing is sent on the network) hands discovery one advert that the driver's
manifest matches, from a task on the loop, as the mDNS and BLE sources do. A ticker task on the same loop
(``asyncio.sleep`` of 0.5 ms in a loop) records the longest gap between its turns from the advert until the
driver is loaded. Reported per driver: the median longest gap (``max_stall_ms``), the median time until the driver
was loaded (``load_ms``), the ticker's median turns in that time, and the longest gap in half a second before the
advert with nothing loading (``idle_max_stall_ms``: what the machine itself adds). Runs alternate trees, so a
machine busy with something else slows both alike; each run is a new process, so every load is a first one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.driver_loading import _import_root  # the tree's namespace laid out as installed

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = ("qoap", "shelly", "wled", "bthome", "xiaomi", "matter")

# One advert per built-in driver that its manifest matches (identified or not: the driver loads either way).
ADVERTS = {
    "qoap": 'MdnsInfo("_qoap._tcp.local.", "lamp._qoap._tcp.local.", "lamp.local.", ("127.0.0.1",), 5683,'
            ' {"pv": "1.1", "id": "q1", "mf": "Acme", "model": "Lamp"})',
    "shelly": 'MdnsInfo("_shelly._tcp.local.", "shellyplus1pm-a8032ab10001._shelly._tcp.local.", "s.local.",'
              ' ("127.0.0.1",), 80, {"gen": "2", "id": "shellyplus1pm-a8032ab10001"})',
    "wled": 'MdnsInfo("_wled._tcp.local.", "wled-desk._wled._tcp.local.", "w.local.", ("127.0.0.1",), 80,'
            ' {"mac": "a8032ab10002"})',
    "bthome": 'BleInfo("A4:C1:38:00:00:01", "SBBT", -60, service_data={"0000fcd2-0000-1000-8000-00805f9b34fb":'
              ' bytes.fromhex("4002ca09")})',
    "xiaomi": 'BleInfo("A4:C1:38:00:00:02", "LYWSD03MMC", -60, service_data={"0000fe95-0000-1000-8000-00805f9b34fb":'
              ' bytes.fromhex("30585b0501000000c1a4380d1004cc00f401")})',
    "matter": 'MdnsInfo("_matterc._udp.local.", "ABCDEF._matterc._udp.local.", "m.local.", ("127.0.0.1",), 5540,'
              ' {"D": "3840", "VP": "65521+32769", "CM": "1"})',
}

# Run in the child, against whichever tree is first on its path ({core} and {drivers}: the tree's module names).
CHILD = """
import asyncio, json, sys
from {core}.api import ApiServer
from {core}.appliances import ApplianceLifecycle
from {core}.core import Hub
from {core}.discovery.models import BleInfo, MdnsInfo
from {drivers}.manager import DriverManager

TICK = 0.0005


async def main(config_dir, name):
    hub = Hub(config_dir, {{}})
    manager = DriverManager(entry_points_group=None)
    hub.add_component(manager)
    lifecycle = ApplianceLifecycle("drivers", mdns_enabled=False, ble_enabled=False)
    hub.add_component(lifecycle)
    hub.add_component(ApiServer("127.0.0.1", 0))
    await hub.async_start()
    driver = manager.drivers[name]
    loop = asyncio.get_running_loop()
    gaps = []

    async def ticker():
        last = loop.time()
        while True:
            await asyncio.sleep(TICK)
            now = loop.time()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.2)  # the ticker settled
    gaps.clear()
    await asyncio.sleep(0.5)  # the machine's own noise: the longest gap with nothing loading
    idle = max(gaps, default=0.0)
    info = {advert}
    gaps.clear()
    start = loop.time()
    lifecycle.handle(info, "bench:" + name)  # as a source's callback on the loop does
    while not (driver.loaded or driver.load_error) and loop.time() - start < 60:
        await asyncio.sleep(0.001)
    loaded_after = loop.time() - start
    await asyncio.sleep(0.01)  # a load that ended in a task: its last turns counted
    task.cancel()
    print(json.dumps({{"max_stall_ms": max(gaps, default=0.0) * 1000, "load_ms": loaded_after * 1000,
                      "ticks": len(gaps), "idle_max_stall_ms": idle * 1000, "loaded": driver.loaded,
                      "error": driver.load_error}}), flush=True)
    await hub.async_stop()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _once(tree: Path, driver: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qilu-bench-") as tmp:
        root, core, drivers = _import_root(tree, Path(tmp) / "site")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(root), os.environ.get("PYTHONPATH"))))}
        child = CHILD.format(core=core, drivers=drivers, advert=ADVERTS[driver])
        config = Path(tmp) / "config"
        config.mkdir()
        out = subprocess.run([sys.executable, "-c", child, str(config), driver], env=env, cwd=tmp,
                             capture_output=True, text=True, timeout=120, check=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per driver and tree (medians are reported)")
    parser.add_argument("--tree", type=Path, action="append", default=[], help="source tree (default: this one)")
    parser.add_argument("--driver", action="append", choices=DRIVERS, default=[], help="default: every built-in")
    args = parser.parse_args()
    trees = [t.resolve() for t in args.tree] or [ROOT]
    names = args.driver or list(DRIVERS)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {str(t): {n: [] for n in names} for t in trees}
    for _ in range(args.runs):
        for name in names:
            for tree in trees:
                runs[str(tree)][name].append(_once(tree, name))
    report = {tree: {name: {
        "max_stall_ms_median": round(statistics.median(r["max_stall_ms"] for r in results), 1),
        "max_stall_ms_runs": [round(r["max_stall_ms"], 1) for r in results],
        "idle_max_stall_ms_median": round(statistics.median(r["idle_max_stall_ms"] for r in results), 1),
        "load_ms_median": round(statistics.median(r["load_ms"] for r in results), 1),
        "ticks_during_load_median": statistics.median(r["ticks"] for r in results),
        "loaded": all(r["loaded"] for r in results),
        "error": next((r["error"] for r in results if r["error"]), None),
    } for name, results in by_driver.items()} for tree, by_driver in runs.items()}
    print(json.dumps({"tick_ms": 0.5, "runs": args.runs, "trees": report}, indent=2))


if __name__ == "__main__":
    main()
