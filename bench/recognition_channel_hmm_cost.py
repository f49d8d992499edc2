"""What the channel HMM costs at run time: the bundled model against an earlier file, side by side.

    git show 8276387:models/household_scene.onnx > /tmp/forest_only.onnx
    python bench/recognition_channel_hmm_cost.py ../shared/data /tmp/forest_only.onnx [--runs 5] [--out FILE]

Per file: bytes; RSS added by onnxruntime's session and inference (``bench/recognition_rss.py``'s probe,
median of ``--runs`` fresh processes, the files in turn); per-window latency, features + model + the model's
decoder as the hub runs it (``bench/recognition.py``'s ``bench_latency`` on house A's first 3,000 windows), the
two files alternating run by run, medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition import bench_latency  # noqa: E402
from bench.recognition_homes import HOMES  # noqa: E402
from bench.recognition_rss import probe  # noqa: E402
from bench.report import emit  # noqa: E402
from qilu_hub.recognition.datasets import load_dataset  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("earlier", type=Path, help="the model file to compare with (e.g. the forest-only file)")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "household_scene.onnx")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    files = {"bundled": args.model, "earlier": args.earlier}
    house_a = load_dataset(args.data_root / HOMES["kasteren_a"][0], ROOT / HOMES["kasteren_a"][1])
    latency: dict[str, list[dict[str, Any]]] = {name: [] for name in files}
    for _ in range(args.runs):  # alternate, so both see the same machine
        for name, path in files.items():
            latency[name].append(bench_latency(path, house_a, runs=1))
    result: dict[str, Any] = {"what": __doc__.split("\n")[0], "runs": args.runs, "files": {}}
    for name, path in files.items():
        p50 = [r["p50_ms"] for r in latency[name]]
        p99 = [r["p99_ms"] for r in latency[name]]
        result["files"][name] = {
            "bytes": path.stat().st_size,
            "rss": probe(path, "hub_options", args.runs),
            "p50_ms": round(statistics.median(p50), 4), "p99_ms": round(statistics.median(p99), 4),
            "p99_ms_range": [min(p99), max(p99)],
        }
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
