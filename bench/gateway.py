"""A gateway-class figure: the fan-out benchmarks with the hub on one core slowed to about a Raspberry Pi 4's.

    python bench/gateway.py [--cpu 1] [--runs 3]      # as root (a cgroup caps the hub's CPU); JSON

1. Reference workload, Python: the n-body simulation (five bodies, the Computer Language Benchmarks Game's
   initial conditions and step, written here), pinned to ``--cpu``, its CPU time per step (CPU time, not wall
   time: other work on a shared machine does not count). Published for a Raspberry Pi 4 (Model B, 4 GB,
   performance governor): 158.26 s for 5,000,000 steps of that benchmark in Python
   (chaitanyamehta.github.io/projects/performance-analysis-of-programming-languages, read from a stored copy
   of that page; the Python version and exact program are not stated there, most likely an older CPython than
   this one, which would make the Pi look slower than it is with this Python: the quota below is then on the
   strict side). ``factor`` = the Pi's time per step / the time here; the Pi-class quota is 1/factor of a CPU.
   If sysbench is installed, ``sysbench cpu --threads=1`` (1.0.20) is reported beside it against the published
   1,477.83 events/s for a Pi 4 core (leoncode.co.uk/articles/raspberry-pi-benchmarks, stored copy): a C
   integer loop, much less like Python's interpreter, so it is not used for the quota.
2. Check: the reference's wall time per step under that quota (a cgroup), which should land near the Pi's.
3. ``bench/fanout_many.py``'s parts with the hub process pinned to ``--cpu`` under that quota (clients
   unconstrained, in other processes, as phones and tablets would be): one client with Home Assistant's
   attribute shape at 1,000 writes/s, and ``--clients`` mixed clients at ``--many-rate`` writes/s.

The quota slows the hub's Python but not the kernel's network stack in the same proportion, and CFS
throttling is not a slower clock (work runs at full speed, then waits): treat the figures as indications.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_many import Quota, run_part

PI4_NBODY_S_PER_STEP = 158.26 / 5_000_000  # Python n-body on a Raspberry Pi 4 (see the docstring)
PI4_NBODY_SOURCE = "chaitanyamehta.github.io/projects/performance-analysis-of-programming-languages (stored copy)"
PI4_SYSBENCH_EVENTS_PER_S = 1477.83  # sysbench 1.0.20 cpu, 1 thread, Raspberry Pi 4 (see the docstring)
PI4_SYSBENCH_SOURCE = "leoncode.co.uk/articles/raspberry-pi-benchmarks (stored copy)"

NBODY = """
import sys, time
from math import sqrt

def bodies():
    pi, days = 3.141592653589793, 365.24
    solar = 4 * pi * pi
    rows = [
        (0, 0, 0, 0, 0, 0, 1),
        (4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05, 9.54791938424326609e-04),
        (8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05, 2.85885980666130812e-04),
        (1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05, 4.36624404335156298e-05),
        (1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05, 5.15138902046611451e-05),
    ]
    out = [[x, y, z, vx * days, vy * days, vz * days, m * solar] for x, y, z, vx, vy, vz, m in rows]
    px = sum(b[3] * b[6] for b in out); py = sum(b[4] * b[6] for b in out); pz = sum(b[5] * b[6] for b in out)
    out[0][3], out[0][4], out[0][5] = -px / solar, -py / solar, -pz / solar
    return out

def run(steps, dt=0.01):
    system = bodies()
    pairs = [(system[i], system[j]) for i in range(len(system)) for j in range(i + 1, len(system))]
    for _ in range(steps):
        for a, b in pairs:
            dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
            d2 = dx * dx + dy * dy + dz * dz
            mag = dt / (d2 * sqrt(d2))
            ma, mb = a[6] * mag, b[6] * mag
            a[3] -= dx * mb; a[4] -= dy * mb; a[5] -= dz * mb
            b[3] += dx * ma; b[4] += dy * ma; b[5] += dz * ma
        for body in system:
            body[0] += dt * body[3]; body[1] += dt * body[4]; body[2] += dt * body[5]

steps = int(sys.argv[1])
cpu0, wall0 = time.process_time(), time.perf_counter()
run(steps)
print(time.process_time() - cpu0, time.perf_counter() - wall0)
"""


def _nbody(cpu: int, steps: int, quota: float | None = None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per step."""
    proc = subprocess.Popen([sys.executable, "-c", NBODY, str(steps)], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    cgroup = Quota(quota) if quota else None
    if cgroup is not None:
        cgroup.apply(proc.pid)
    out, _ = proc.communicate(timeout=600)
    if cgroup is not None:
        cgroup.remove()
    cpu_s, wall_s = (float(v) for v in out.split())
    return cpu_s / steps, wall_s / steps


def _sysbench(cpu: int, seconds: int, quota: float | None = None) -> float:
    proc = subprocess.Popen(["sysbench", "cpu", "--threads=1", f"--time={seconds}", "run"], stdout=subprocess.PIPE,
                            text=True, preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    cgroup = Quota(quota) if quota else None
    if cgroup is not None:
        cgroup.apply(proc.pid)
    out, _ = proc.communicate(timeout=seconds + 30)
    if cgroup is not None:
        cgroup.remove()
    match = re.search(r"events per second:\s*([\d.]+)", out)
    if match is None:
        raise RuntimeError(out)
    return float(match.group(1))


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "cpu": args.cpu,
                           "python": sys.version.split()[0], "pi4_nbody_us_per_step": PI4_NBODY_S_PER_STEP * 1e6,
                           "pi4_nbody_source": PI4_NBODY_SOURCE}
    here = [_nbody(args.cpu, args.steps) for _ in range(args.runs)]
    cpu_per_step = statistics.median(c for c, _ in here)
    factor = PI4_NBODY_S_PER_STEP / cpu_per_step
    quota = min(1.0, 1.0 / factor)
    out.update({"nbody_here_cpu_us_per_step_runs": [round(c * 1e6, 3) for c, _ in here],
                "nbody_here_cpu_us_per_step_median": round(cpu_per_step * 1e6, 3),
                "factor_pi4_over_here": round(factor, 2), "pi_class_quota": round(quota, 3)})
    checks = [_nbody(args.cpu, args.steps // 4, quota) for _ in range(args.runs)]
    out["nbody_under_quota_wall_us_per_step_runs"] = [round(w * 1e6, 3) for _, w in checks]
    out["nbody_under_quota_wall_us_per_step_median"] = round(statistics.median(w for _, w in checks) * 1e6, 3)
    if shutil.which("sysbench") is not None:
        bench = [_sysbench(args.cpu, args.ref_seconds) for _ in range(args.runs)]
        out.update({"sysbench_here_events_per_s_runs": bench, "pi4_sysbench_events_per_s": PI4_SYSBENCH_EVENTS_PER_S,
                    "pi4_sysbench_source": PI4_SYSBENCH_SOURCE,
                    "sysbench_factor_here_over_pi4": round(max(bench) / PI4_SYSBENCH_EVENTS_PER_S, 2)})
    for name, clients, rate in (("single", 0, 1000), ("many", args.clients, args.many_rate)):
        runs = [await run_part(clients, args.seconds, rate, args.cpu, quota) for _ in range(args.runs)]
        keys = ("probe_latency_ms_p50", "probe_latency_ms_p99", "probe_latency_ms_max", "probe_got_every_change",
                "writer_late_s", "hub_cpu_us_per_delivered", "clients_cut_off", "hub_rss_mib", "cpu_quota_applied")
        out[name] = {"clients": clients, "rate": rate, **{
            key: (statistics.median(r[key] for r in runs if r[key] is not None)
                  if not isinstance(runs[0][key], bool) else all(r[key] for r in runs)) for key in keys},
            "runs": [{key: r[key] for key in keys} for r in runs]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1, help="the core the hub gets")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ref-seconds", type=int, default=10, help="sysbench run length")
    parser.add_argument("--steps", type=int, default=300_000, help="n-body steps per reference run")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--many-rate", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_main(args)), indent=2))


if __name__ == "__main__":
    main()
