"""Run the fuzz targets and print JSON: inputs tried per target, crashes found.

    python fuzz/run.py mdns --seconds 60
    python fuzz/run.py --all --seconds 30          # each target for 30 s
    python fuzz/run.py rest --seconds 60          # schemathesis against /api/openapi.json
    python fuzz/run.py --list

Each target runs in a child process under atheris (coverage-guided, libFuzzer). A crash stops
libFuzzer, so the runner records it (input file, last lines of the traceback) and starts the target
again until its time is spent; the corpus (fuzz/corpus/TARGET, not committed) carries over. Crash
inputs are written to fuzz/crashes/TARGET/. Replay one with
``python -m fuzz.main TARGET fuzz/crashes/TARGET/crash-...``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fuzz.targets import NAMES  # noqa: E402

# libFuzzer dictionaries: JSON targets get JSON tokens, or most mutations die in json.loads.
DICTS = {"ha_ws": "json.dict", "qoap": "json.dict", "mqtt_discovery": "json.dict"}
_DONE = re.compile(r"Done (\d+) runs in")
_PROGRESS = re.compile(r"^#(\d+)\s", re.M)
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


def _seed(name: str, corpus: Path) -> None:
    import importlib

    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for i, seed in enumerate(importlib.import_module(f"fuzz.targets.{name}").SEEDS):
        (corpus / f"seed-{i}").write_bytes(seed)


def _signature(log: str) -> str:
    """The exception line and the innermost frame: one line per distinct bug."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if "Uncaught Python exception" in line:
            error = lines[i + 1] if i + 1 < len(lines) else "?"
            frames = [ln for ln in lines[i + 1:] if ln.startswith("File ")]
            return f"{error} @ {frames[-1] if frames else '?'}"[:400]
    return next((ln for ln in reversed(lines) if "ERROR" in ln), lines[-1] if lines else "?")[:400]


def run_target(name: str, seconds: float, max_crashes: int = 5) -> dict[str, Any]:
    corpus = ROOT / "fuzz" / "corpus" / name
    crashes_dir = ROOT / "fuzz" / "crashes" / name
    crashes_dir.mkdir(parents=True, exist_ok=True)
    _seed(name, corpus)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    deadline = time.monotonic() + seconds
    tried, restarts = 0, 0
    crashes: list[dict[str, Any]] = []
    seen: set[str] = set()
    while (left := deadline - time.monotonic()) > 2 and len(crashes) < max_crashes:
        proc = subprocess.run(
            [sys.executable, "-m", "fuzz.main", name, f"-max_total_time={int(left)}", "-rss_limit_mb=2048",
             "-timeout=20", f"-artifact_prefix={crashes_dir}/", "-print_final_stats=1",
             *([f"-dict={ROOT / 'fuzz' / 'dicts' / DICTS[name]}"] if name in DICTS else []), str(corpus)],
            cwd=ROOT, env=env, capture_output=True, text=True, errors="replace", check=False,
        )
        log = proc.stdout + proc.stderr
        done = _DONE.search(log)
        if done:
            tried += int(done.group(1))
        else:
            progress = _PROGRESS.findall(log)
            tried += int(progress[-1]) if progress else 0
        artifact = _ARTIFACT.search(log)
        if proc.returncode == 0 and artifact is None:
            break
        restarts += 1
        signature = _signature(log)
        if signature not in seen:
            seen.add(signature)
            crashes.append({"input": artifact.group(1) if artifact else None, "error": signature})
        if artifact is None:  # died without an input to blame (setup error): stop, do not spin
            crashes[-1]["log_tail"] = log[-2000:]
            break
    return {"target": name, "seconds": seconds, "inputs_tried": tried, "restarts": restarts,
            "crashes": crashes, "corpus_files": sum(1 for _ in corpus.iterdir())}


def _run_rest(seconds: float) -> dict[str, Any]:
    import asyncio

    from fuzz.rest import run

    result = asyncio.run(run(seconds))
    result["crashes"] = [*result["failures"], *result["logged_exceptions"]]
    if result["exit_code"] != 0 or not result["hub_alive"]:
        result["crashes"].append(f"schemathesis exit {result['exit_code']}, hub alive: {result['hub_alive']}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", nargs="?", choices=(*NAMES, "rest"))
    parser.add_argument("--all", action="store_true", help="run every target, one after the other")
    parser.add_argument("--seconds", type=float, default=60.0, help="time per target")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        print(json.dumps([*NAMES, "rest"]))
        return 0
    names = [*NAMES, "rest"] if args.all else [args.target] if args.target else []
    if not names:
        parser.error("name a target or pass --all")
    results = [_run_rest(args.seconds) if name == "rest" else run_target(name, args.seconds) for name in names]
    print(json.dumps({"targets": results, "crashes": sum(len(r["crashes"]) for r in results)}, indent=2))
    return 1 if any(r["crashes"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
