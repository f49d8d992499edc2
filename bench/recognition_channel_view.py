"""Exploration: does the forest transfer like the HMM if it reads what the HMM reads?  Leave-one-home-out trained
as the bundled model ships (the four shippable homes only, no simulated days), pooled class accuracy of:

* the rebuilt causal HMM (``evaluation.hmm_predictions``), on the paper's changepoint + last-fired binaries over
  (area, capability) channels;
* a forest (``leaf20_48trees``, seed 0) on those same binaries only;
* a forest on those binaries plus the hub's own features (``DEFAULT_SPEC``: clock, counts, recencies).

    python bench/recognition_channel_view.py ../shared/data [--out FILE]

One seed, no nested choice, and the idea came from reading held-out homes' figures: a direction, not a result.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition_homes import SHIPPABLE, load_homes  # noqa: E402
from bench.report import emit  # noqa: E402
from qilu_hub.recognition.evaluation import (  # noqa: E402
    IDLE,
    channel_binary,
    figures,
    hmm_predictions,
    homes_training_set,
)
from qilu_hub.recognition.training import FOREST_CONFIGS, fit  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    homes = list(load_homes(args.data_root).values())
    binary = {h.name: channel_binary(h) for h in homes}
    config = replace(FOREST_CONFIGS["leaf20_48trees"], seed=0)
    rows: dict[str, Any] = {}
    for target in homes:
        others = [h for h in homes if h.name != target.name and h.name in SHIPPABLE]
        keep = set(target.scenes)
        m = target.matrix
        train = homes_training_set(others, keep)  # the rows, labels and home weights the forest gets
        row: dict[str, Any] = {
            "trained_on": [h.name for h in others],
            "hmm_causal": figures(m.y, hmm_predictions(others, target, keep)["causal"], m.days, target.scenes,
                                  n_boot=0)["class_accuracy"],
        }
        for view in ("binary", "binary+features"):
            def columns(home: Any, view: str = view) -> np.ndarray:
                return binary[home.name] if view == "binary" else np.hstack([binary[home.name], home.matrix.X])

            model = fit(np.vstack([columns(h) for h in others]), train.y, config, sample_weight=train.sample_weight)
            pred = model.predict(columns(target))
            row[f"forest_{view}"] = figures(m.y, pred, m.days, target.scenes, n_boot=0)["class_accuracy"]
        rows[target.name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        print(target.name, rows[target.name], file=sys.stderr, flush=True)
    emit({"what": "leave-one-home-out class accuracy, trained on the shippable homes only (no simulated days): the "
                  "causal HMM and a forest on the HMM's channel binaries, alone and beside the hub's features",
          "forest": "leaf20_48trees, seed 0", "idle_label": IDLE, "homes": rows}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
