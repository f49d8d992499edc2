"""Leave-one-home-out with the forest preset chosen without the test home: for each test home, each preset in
``training.FOREST_CONFIGS`` is scored by leave-one-home-out over the *other* homes only (mean class accuracy
over those inner held-out homes); the winner is trained on all the other homes and scored on the test home,
beside the rebuilt HMM trained on the same homes (paired bootstrap over days).  Prints one JSON document.

    python bench/recognition_homes_nested.py ../shared/data [--out bench/results/recognition-homes-nested.json]

Why: ``bench/recognition_homes.py`` uses the ``default`` preset everywhere; choosing between presets after
looking at its held-out figures would make them design data.  Here the choice for each home never sees it.
Homes, mapping files and scene sets as in ``bench/recognition_homes.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition_homes import DESIGN_DATA, load_homes  # noqa: E402
from bench.report import emit  # noqa: E402
from qilu_hub.recognition.evaluation import (  # noqa: E402
    figures,
    hmm_predictions,
    majority_baseline,
    paired_difference,
    train_on_homes,
)
from qilu_hub.recognition.training import FOREST_CONFIGS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    t0 = time.perf_counter()
    configs = {n: c.__class__(**{**c.__dict__, "n_jobs": args.n_jobs}) for n, c in FOREST_CONFIGS.items()}
    homes = list(load_homes(args.data_root).values())
    result: dict[str, Any] = {"what": "leave-one-home-out, forest preset chosen per test home by leave-one-home-out "
                                      "over the other homes only (mean class accuracy)",
                              "presets": {n: {k: v for k, v in c.__dict__.items() if k != "n_jobs"}
                                          for n, c in configs.items()},
                              "homes": {}}
    for target in homes:
        others = [h for h in homes if h.name != target.name]
        inner: dict[str, dict[str, float]] = {}
        for name, config in configs.items():
            inner[name] = {}
            for held in others:
                train = [h for h in others if h.name != held.name]
                m = held.matrix
                pred = train_on_homes(train, config, set(held.scenes)).predict(m.X)
                inner[name][held.name] = figures(m.y, pred, m.days, held.scenes, n_boot=0)["class_accuracy"]
        score = {n: round(float(np.mean(list(v.values()))), 4) for n, v in inner.items()}
        chosen = max(configs, key=lambda n: score[n])  # ties: the first listed
        keep, m = set(target.scenes), target.matrix
        pred = train_on_homes(others, configs[chosen], keep).predict(m.X)
        row: dict[str, Any] = {"shaped_the_design": target.name in DESIGN_DATA, "inner_class_accuracy": inner,
                               "inner_mean": score, "chosen": chosen,
                               "ours": figures(m.y, pred, m.days, target.scenes, args.boot),
                               "majority_class": figures(m.y, majority_baseline(m.y), m.days, target.scenes,
                                                         args.boot)}
        for decoding, hmm in hmm_predictions(others, target, keep).items():
            row[f"hmm_{decoding}"] = figures(m.y, hmm, m.days, target.scenes, args.boot)
            row[f"ours_minus_hmm_{decoding}"] = paired_difference(m.y, pred, hmm, m.days, target.scenes, args.boot)
        result["homes"][target.name] = row
        print(target.name, chosen, score, row["ours"]["class_accuracy"], row["ours_minus_hmm_causal"],
              file=sys.stderr, flush=True)
    result["mean_class_accuracy"] = round(float(np.mean([r["ours"]["class_accuracy"]
                                                         for r in result["homes"].values()])), 4)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
