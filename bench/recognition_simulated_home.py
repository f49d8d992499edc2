"""Finished models on a simulated home none of them was trained on: the one home where every scene is labelled.

    git show 87f9057:models/household_scene.onnx > /tmp/real_days_hmm.onnx
    python bench/recognition_simulated_home.py models/household_scene.onnx /tmp/real_days_hmm.onnx [--days 7]
        [--seed 11] [--out FILE]

Each model is run as the hub runs it (the graph, then its decoder, each day afresh; ``SceneModel.decode``) on
``--days`` simulated days of one home (simulator seed ``--seed``; the bundled recipe trains on seed 0), and
scored on all nine scenes: pooled class accuracy and each scene's recall.  The real homes cannot show a
confusion between scenes none of them labels (``guests``, ``waking_up``) and the ones they do; this can.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import emit, tree_name  # noqa: E402
from qilu_hub.recognition.evaluation import figures  # noqa: E402
from qilu_hub.recognition.features import DEFAULT_SPEC  # noqa: E402
from qilu_hub.recognition.runtime import SceneModel  # noqa: E402
from qilu_hub.recognition.simulator import SimConfig, simulate  # noqa: E402
from qilu_hub.recognition.training import build_matrix  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+", help="ONNX scene models to score")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    m = build_matrix(simulate(SimConfig(days=args.days, homes=1, seed=args.seed)), DEFAULT_SPEC)
    scenes = sorted(set(m.y.tolist()))
    scored = {}
    for path in args.models:
        model = SceneModel.load(path, DEFAULT_SPEC)
        decided = np.asarray(model.labels)[model.decode(model.predict_proba(m.X), m.days).argmax(axis=1)]
        f = figures(m.y, decided, m.days, scenes, n_boot=0)
        scored[path.name] = {
            "bytes": path.stat().st_size, "class_accuracy": f["class_accuracy"],
            "timeslice_accuracy": f["timeslice_accuracy"], "recall": f["per_class_accuracy"]}
    emit({"what": "finished models, each through its own decoder, on simulated days none was trained on",
          "simulator": {"days": args.days, "homes": 1, "seed": args.seed}, "scenes": scenes,
          "tree": tree_name(ROOT), "models": scored}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
