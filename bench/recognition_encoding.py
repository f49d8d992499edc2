"""The compact forest encoding against skl2onnx's, side by side on one model: file size, memory, latency, and
how far the probabilities move.  Prints one JSON document (and writes it with --out).

    git show 60ebf24:models/household_scene.onnx > /tmp/household_scene_classifier.onnx
    python bench/recognition_encoding.py ../shared/data /tmp/household_scene_classifier.onnx [--runs 5] [--out FILE]

The model given must be in skl2onnx's ``TreeEnsembleClassifier`` encoding (what ``model train`` wrote before
``recognition.tree_ensemble``; the bundled model at commit ``60ebf24``).  The bench rewrites it with
``tree_ensemble.rewrite_forests`` into a temporary file and measures both:

* bytes of each file;
* RSS added by onnxruntime's session and inference (``bench/recognition_rss.py``'s probe, median of ``--runs``
  fresh processes, each encoding in turn);
* per-window latency, features + model (``bench/recognition.py``'s ``bench_latency`` on house A's first 3,000
  windows), the two encodings alternating run by run, medians of ``--runs``;
* on every window of the six homes (``bench/recognition_homes.HOMES``): the largest change of any class
  probability and how many windows change their most probable class.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition import bench_latency  # noqa: E402
from bench.recognition_homes import HOMES  # noqa: E402
from bench.recognition_rss import probe  # noqa: E402
from bench.report import emit  # noqa: E402
from qilu_hub.recognition.datasets import load_dataset  # noqa: E402
from qilu_hub.recognition.features import DEFAULT_SPEC  # noqa: E402
from qilu_hub.recognition.runtime import SceneModel  # noqa: E402
from qilu_hub.recognition.training import build_matrix  # noqa: E402
from qilu_hub.recognition.tree_ensemble import rewrite_forests  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("model", type=Path, help="a model in skl2onnx's TreeEnsembleClassifier encoding")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import onnx

    classifier = onnx.load(args.model)
    if not rewrite_forests(classifier):
        parser.error(f"{args.model} holds no TreeEnsembleClassifier this bench can rewrite")
    with tempfile.TemporaryDirectory() as tmp:
        compact = Path(tmp) / "compact.onnx"
        onnx.save(classifier, compact)
        paths = {"classifier": args.model, "compact": compact}
        result: dict[str, Any] = {
            "what": "one model in skl2onnx's TreeEnsembleClassifier encoding and rewritten as ai.onnx.ml 5 "
                    "TreeEnsemble (recognition.tree_ensemble)",
            "model": args.model.name,
            "bytes": {k: p.stat().st_size for k, p in paths.items()},
            "rss_mib": {k: probe(p, "hub_options", args.runs) for k, p in paths.items()},
        }
        house_a = load_dataset(args.data_root / HOMES["kasteren_a"][0], ROOT / HOMES["kasteren_a"][1])
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in paths}
        for _ in range(args.runs):
            for k, p in paths.items():
                runs[k].append(bench_latency(p, house_a, 1))
        result["latency_ms"] = {k: {"p50": round(statistics.median(r["p50_ms"] for r in rs), 4),
                                    "p99": round(statistics.median(r["p99_ms"] for r in rs), 4),
                                    "p99_runs": [r["p99_ms"] for r in rs]} for k, rs in runs.items()}
        models = {k: SceneModel.load(p, DEFAULT_SPEC) for k, p in paths.items()}
        homes: dict[str, Any] = {}
        for name, (folder, mapping, *_shippable) in HOMES.items():
            X = build_matrix(load_dataset(args.data_root / folder, ROOT / mapping), DEFAULT_SPEC).X
            before, after = models["classifier"].predict_proba(X), models["compact"].predict_proba(X)
            homes[name] = {"windows": len(X), "max_probability_change": float(np.abs(before - after).max()),
                           "top_class_changed": int((before.argmax(axis=1) != after.argmax(axis=1)).sum())}
        result["homes"] = homes
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
