"""Ours against the rebuilt HMM across homes, paired: how sure is "above the HMM" on each home?  Prints one
JSON document (and writes it with --out).

    python bench/recognition_paired.py ../shared/data [--forest NAME] [--seeds 0 1 2] \
        [--out bench/results/recognition-paired.json]

Per test home, leave-one-home-out as in ``bench/recognition_homes_nested.py``: ours (``--forest``, default
``leaf20_48trees``, the preset the nested choice picks for every home there) and the rebuilt HMM, both trained
on the other five homes, scored on the test home.  The paired difference in pooled class and time-slice
accuracy (ours − HMM, both on the same resampled days) is given three ways:

* ``day``: whole days resampled independently (as ``model eval`` and the nested bench report it);
* ``block7``: a circular moving-block bootstrap of 7 consecutive days (``evaluation.day_resample_weights``):
  a home's days are not independent (a week's routine, a cold, a visit), and single-day resampling makes
  intervals too narrow when neighbouring days move together;
* ``seeds``: the point difference for forest seeds ``--seeds`` (the HMM has no seed): the intervals above
  hold the trained forest fixed, so the spread over seeds says how much of a difference is the forest's draw.

``--forest`` also takes the gradient-boosted candidates of ``bench/recognition_seeds.py`` (``HGB_CONFIGS``,
not shipped presets); they draw nothing at random, so one seed (``--seeds 0``) says all.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition_homes import DESIGN_DATA, HOMES, load_homes  # noqa: E402
from bench.recognition_seeds import HGB_CONFIGS  # noqa: E402
from bench.report import emit  # noqa: E402
from qilu_hub.recognition.evaluation import (  # noqa: E402
    figures,
    hmm_predictions,
    paired_difference,
    train_on_homes,
)
from qilu_hub.recognition.training import FOREST_CONFIGS  # noqa: E402

BLOCK_DAYS = 7


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    configs = {**FOREST_CONFIGS, **HGB_CONFIGS}
    parser.add_argument("--forest", default="leaf20_48trees", choices=list(configs))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="forest seeds (the first: intervals)")
    parser.add_argument("--homes", nargs="+", default=list(HOMES), choices=list(HOMES), help="test homes")
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    t0 = time.perf_counter()
    homes = list(load_homes(args.data_root).values())
    rows: dict[str, Any] = {}
    for target in (h for h in homes if h.name in args.homes):
        others = [h for h in homes if h.name != target.name]
        keep, m, labels = set(target.scenes), target.matrix, target.scenes
        hmm = hmm_predictions(others, target, keep)
        ours = {seed: train_on_homes(others, replace(configs[args.forest], seed=seed, n_jobs=args.n_jobs),
                                     keep).predict(m.X) for seed in args.seeds}
        first = ours[args.seeds[0]]
        row: dict[str, Any] = {"shaped_the_design": target.name in DESIGN_DATA, "days": target.n_days,
                               "ours_class_accuracy": figures(m.y, first, m.days, labels, 0)["class_accuracy"]}
        for decoding, pred in hmm.items():
            hmm_class = figures(m.y, pred, m.days, labels, 0)["class_accuracy"]
            row[f"hmm_{decoding}_class_accuracy"] = hmm_class
            row[f"ours_minus_hmm_{decoding}"] = {
                "day": paired_difference(m.y, first, pred, m.days, labels, args.boot),
                f"block{BLOCK_DAYS}": paired_difference(m.y, first, pred, m.days, labels, args.boot,
                                                        block_days=BLOCK_DAYS),
                "seeds_class_difference": {
                    str(seed): round(figures(m.y, p, m.days, labels, 0)["class_accuracy"] - hmm_class, 4)
                    for seed, p in ours.items()},
            }
        rows[target.name] = row
        print(target.name, round(time.perf_counter() - t0), file=sys.stderr, flush=True)
    emit({"what": "ours minus the rebuilt HMM, leave-one-home-out, paired bootstrap over single days and over "
                  f"{BLOCK_DAYS}-day blocks, and the point difference over forest seeds",
          "forest": args.forest, "seeds": args.seeds, "bootstrap": f"{args.boot} resamples, 95% percentile intervals",
          "homes": rows, "seconds": round(time.perf_counter() - t0, 1)}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
