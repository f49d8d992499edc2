"""RSS and start time of ``qilu-hub run`` itself (the command line, the standard components), fresh config.

    python bench/run_footprint.py [--runs 3]      # prints one JSON object

bench/hub_process.py measures a hub with only the API; this runs the real command, which also builds the
whole argument parser, validates the configuration through every part's section, and starts the drivers,
discovery, the recognizer, scenes and backups as configured. Two configurations: the defaults (the recognizer
on, with the bundled model) and the same with ``recognition: {enabled: false}``. For each run: seconds from
spawning the process to ``/api/health`` answering, and RSS 1 s later. No appliances are on the loopback
network, so the figure is what an idle hub holds. Compare trees by pointing PYTHONPATH at another checkout.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

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


def _one(config_text: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="qilu-run-") as tmp:
        (Path(tmp) / "configuration.yaml").write_text(config_text)
        port = _free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "qilu_hub", "run", "--config", tmp, "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
            ready = time.perf_counter() - t0
            time.sleep(1.0)
            return ready, _rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, object] = {"runs": args.runs, "python": sys.version.split()[0]}
    for name, text in CONFIGS.items():
        results = [_one(text) for _ in range(args.runs)]
        out[name] = {
            "start_to_api_ready_s_median": round(statistics.median(r[0] for r in results), 3),
            "rss_mib_median": round(statistics.median(r[1] for r in results), 1),
            "runs": [[round(r[0], 3), round(r[1], 1)] for r in results],
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
