"""RSS and start time of ``qilu-hub run`` itself (the command line, the standard components), fresh config.

    python bench/run_footprint.py [--runs 3] [--tree DIR ...]      # prints one JSON object (as root: see below)

bench/hub_process.py measures a hub with only the API; this runs the real command, which also builds the
whole argument parser, validates the configuration through every part's section, and starts the drivers,
discovery, the recognizer, scenes and backups as configured. Two configurations: the defaults (the recognizer
on, with the bundled model) and the same with ``recognition: {enabled: false}``. For each run: seconds from
spawning the process to ``/api/health`` answering, the CPU time the process had used by then (steadier than
the wall clock on a shared machine), and RSS 1 s later. No appliances are on the loopback
network, so the figure is what an idle hub holds: as root the bench moves itself (and so every hub it spawns)
into a network namespace of its own with only loopback, because on a shared machine other processes' mDNS
announcements reach a hub browsing every interface and make it load those appliances' drivers (up to ~15 MiB
and a second of start-up; ``--shared-network`` measures without it). Name several trees (``--tree``, e.g. an
export of the previous commit) to compare them in one session: their runs alternate, per configuration.
Each figure comes twice: with the bytecode cached (as an installed hub has it; a private ``PYTHONPYCACHEPREFIX``
filled by one uncounted run) and as this environment starts it (``PYTHONDONTWRITEBYTECODE``: the hub's modules
are compiled at every start). In the same rounds, the floor: a fresh interpreter that imports ``asyncio`` and
``aiohttp.web`` and exits.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.driver_loading import _import_root  # noqa: E402

CLONE_NEWNET = 0x40000000
CONFIGS = {"defaults": "hub:\n  bind: 127.0.0.1\n",
           "no_recognizer": "hub:\n  bind: 127.0.0.1\nrecognition:\n  enabled: false\n"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used: on a shared machine, steadier than the wall clock."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_network() -> str | None:
    """Move this process into a new network namespace with loopback up (multicast on); None, or why not."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "needs root and the ip command"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return f"unshare failed: {os.strerror(ctypes.get_errno())}"
    subprocess.run(["ip", "link", "set", "lo", "up", "multicast", "on"], check=True)
    return None


def _one(site: Path, env: dict[str, str], config_text: str) -> tuple[float, float, float]:
    """Seconds from spawning ``qilu-hub run`` (the tree laid out under ``site``) to ``/api/health``, the CPU
    seconds the hub had used by then, and its RSS 1 s later."""
    with tempfile.TemporaryDirectory(prefix="qilu-run-") as tmp:
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, (str(site), env.get("PYTHONPATH"))))}
        (Path(tmp) / "configuration.yaml").write_text(config_text)
        port = _free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "qilu_hub", "run", "--config", tmp, "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp)
        try:
            deadline = t0 + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.perf_counter() > deadline or proc.poll() is not None:
                    raise RuntimeError("the hub did not answer /api/health")
                time.sleep(0.01)
            ready, cpu = time.perf_counter() - t0, _cpu_s(proc.pid)
            time.sleep(1.0)
            return ready, cpu, _rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)


def _floor(env: dict[str, str]) -> tuple[float, float, float]:
    """The floor under any hub with the API: a fresh interpreter that imports asyncio and aiohttp's server and
    exits (seconds to exit, CPU seconds; no RSS)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "import asyncio, aiohttp.web"], env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError("importing asyncio and aiohttp.web failed")
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, 0.0


def _summary(runs: list[tuple[float, float, float]]) -> dict[str, Any]:
    return {"start_to_api_ready_s_median": round(statistics.median(r[0] for r in runs), 3),
            "cpu_s_to_api_ready_median": round(statistics.median(r[1] for r in runs), 3),
            "rss_mib_median": round(statistics.median(r[2] for r in runs), 1),
            "runs_s_cpu_s_mib": [[round(r[0], 3), round(r[1], 3), round(r[2], 1)] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per tree, configuration and bytecode mode")
    parser.add_argument("--tree", action="append", default=[], help="source tree (default: this one)")
    parser.add_argument("--shared-network", action="store_true",
                        help="stay in the machine's network namespace (other processes' announcements reach the hub)")
    args = parser.parse_args()
    names = args.tree or ["."]
    isolation = "shared network (asked)" if args.shared_network else _own_network() or "own network namespace"
    out: dict[str, Any] = {"runs": args.runs, "python": sys.version.split()[0], "network": isolation,
                           "pythondontwritebytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
                           "load_average_at_start": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory(prefix="qilu-run-trees-") as tmp:
        # Each tree laid out once as its install would be, so the cached bytecode's paths stay the same between runs.
        sites = {name: _import_root(Path(name).resolve(), Path(tmp) / f"site{i}")[0] for i, name in enumerate(names)}
        as_run = dict(os.environ)  # here: PYTHONDONTWRITEBYTECODE, the hub's modules compiled at every start
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pyc")  # as an installed hub: pip writes bytecode
        modes = {"bytecode_cached": cached, "compiled_at_start": as_run}
        for name in names:  # fills the bytecode cache, uncounted
            for text in CONFIGS.values():
                _one(sites[name], cached, text)
        results: dict[tuple[str, str, str], list[tuple[float, float, float]]] = {}
        for _ in range(args.runs):
            for mode, env in modes.items():
                for config, text in CONFIGS.items():
                    for name in names:  # alternate, so a machine busy with something else slows each tree alike
                        results.setdefault((name, mode, config), []).append(_one(sites[name], env, text))
                results.setdefault(("floor", mode, "import asyncio, aiohttp.web"), []).append(_floor(env))
    for name in names:
        out[name] = {mode: {config: _summary(results[name, mode, config]) for config in CONFIGS} for mode in modes}
    floor = {mode: _summary(results["floor", mode, "import asyncio, aiohttp.web"]) for mode in modes}
    out["floor_import_asyncio_aiohttp_web"] = {mode: {k: v for k, v in figures.items() if "rss" not in k}
                                               for mode, figures in floor.items()}
    out["load_average_at_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
