"""Start-up cost of the drivers: a hub with the driver manager and the API, from process spawn to API ready.

    python bench/driver_loading.py [--runs N] [--tree DIR ...]   # prints one JSON object

For each source tree (default: this one; name others, e.g. an export of the previous commit, to compare
in one run) it spawns a hub process with that tree first on ``PYTHONPATH``: registries and recorder on,
the ``DriverManager`` with the built-in drivers, the API on loopback; no discovery, so nothing is sent
on the network. It reports the time from spawning to ``/api/health`` answering, the RSS once 1,000
entities have states, and which drivers' protocol libraries the process has imported by then. The runs
of the trees alternate, so a machine busy with something else slows both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENTITIES = 1000
PROTOCOL_LIBRARIES = ("aioshelly", "wled", "bthome_ble", "xiaomi_ble")

# Run in the child, against whichever tree is first on its path; {core} and {drivers} are the tree's module names
# (before the one import namespace: hub and drivers; since: qilu_hub and qilu_hub.drivers).
CHILD = f"""
import time
_T0 = time.perf_counter()
import asyncio, sys
from {{core}}.api import ApiServer
from {{core}}.core import Hub
from {{drivers}}.manager import DriverManager


async def main(config_dir):
    hub = Hub(config_dir, {{}})
    hub.add_component(DriverManager(entry_points_group=None))
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    await hub.async_start()
    print("READY", api.url, flush=True)
    for i in range({ENTITIES}):
        hub.states.async_set(f"sensor.meter_{{i}}", float(i), {{"unit_of_measurement": "W"}})
    loaded = [name for name in {PROTOCOL_LIBRARIES!r} if name in sys.modules]
    print("STATES", ",".join(loaded) or "-", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1]))
"""


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _namespace_dirs(tree: Path) -> dict[str, str] | None:
    """The tree's ``package-dir`` mapping (``qilu_hub.x`` -> folder) if it installs under one namespace, else None."""
    import tomllib

    config = tomllib.loads((tree / "pyproject.toml").read_text(encoding="utf-8")).get("tool", {}).get("setuptools", {})
    mapping = config.get("package-dir")
    return dict(mapping) if mapping else None


def _import_root(tree: Path, into: Path) -> tuple[Path, str, str]:
    """A folder to put first on the child's path, and the tree's core and drivers module names. A namespaced tree
    is laid out as its install would be (links under ``into``), so the child imports that tree alone, never the
    installed checkout nor a second copy of the same modules under the folders' own names."""
    mapping = _namespace_dirs(tree)
    if mapping is None:
        return tree, "hub", "drivers"
    for name, folder in sorted(mapping.items()):
        target = into.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for entry in (tree / folder).iterdir():
            link = target / entry.name
            if not link.exists():
                link.symlink_to(entry)
    core = min(mapping, key=len)
    return into, core, f"{core}.drivers"


async def _once(tree: Path) -> tuple[float, float, list[str]]:
    import aiohttp

    with tempfile.TemporaryDirectory(prefix="qilu-bench-") as tmp:
        root, core, drivers = _import_root(tree, Path(tmp) / "site")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(root), os.environ.get("PYTHONPATH"))))}
        child = CHILD.replace("{core}", core).replace("{drivers}", drivers)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", child, tmp], stdout=subprocess.PIPE, text=True, env=env,
                                cwd=tmp)
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[1]
            async with aiohttp.ClientSession() as session, session.get(url + "/api/health") as resp:
                assert resp.status == 200
            ready = time.perf_counter() - t0
            loaded = proc.stdout.readline().split()[1]
            await asyncio.sleep(0.2)
            return ready, _rss_mib(proc.pid), [] if loaded == "-" else loaded.split(",")
        finally:
            proc.terminate()
            proc.wait()


async def _main(trees: list[Path], runs: int) -> dict[str, Any]:
    results: dict[str, dict[str, list[Any]]] = {str(t): {"ready": [], "rss": [], "loaded": []} for t in trees}
    for _ in range(runs):
        for tree in trees:
            ready, rss, loaded = await _once(tree)
            results[str(tree)]["ready"].append(ready)
            results[str(tree)]["rss"].append(rss)
            results[str(tree)]["loaded"] = loaded
    return {tree: {
        "start_to_api_ready_s_median": round(statistics.median(r["ready"]), 3),
        "start_to_api_ready_s_runs": [round(t, 3) for t in r["ready"]],
        "rss_mib_1000_entities_median": round(statistics.median(r["rss"]), 1),
        "rss_mib_runs": [round(m, 1) for m in r["rss"]],
        "protocol_libraries_imported": r["loaded"],
    } for tree, r in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per tree (medians are reported)")
    parser.add_argument("--tree", type=Path, action="append", default=[], help="source tree (default: this one)")
    args = parser.parse_args()
    trees = [t.resolve() for t in args.tree] or [ROOT]
    print(json.dumps({"entities": ENTITIES, "trees": asyncio.run(_main(trees, args.runs))}, indent=2))


if __name__ == "__main__":
    main()
