"""What choosing the prior correction on the household's own labelled days costs at training time.

``model train --prior-correction auto``, the household default: the household forest alone against the choice's
extra forests.

    python bench/recognition_prior_choice_cost.py ../shared/data [--home kasteren_c] [--runs 3] [--out FILE]

The household is ``--label-days`` days of ``--home`` (the first draw of ``bench/recognition_adaptation.py``),
trained beside the other five homes as ``model train --source recorder --home …`` trains it (``leaf20_48trees``,
scenes balanced per home, one home per labelled day).  Per run, in turn: the forest the household's model is
(``fit``), then ``evaluation.household_prior_choice`` (one forest per fold of the labelled days, each predicting
its fold).  Wall seconds, medians of ``--runs``; the ratio is what a gateway's training takes longer, whatever
its speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition_homes import HOMES, load_homes  # noqa: E402
from bench.report import emit, tree_name  # noqa: E402
from qilu_hub.recognition.evaluation import (  # noqa: E402
    PER_DAY_WEIGHT,
    homes_training_set,
    household_prior_choice,
    household_weight,
)
from qilu_hub.recognition.training import FOREST_CONFIGS, Matrix, fit  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--home", default="kasteren_c", choices=list(HOMES))
    parser.add_argument("--label-days", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    homes = load_homes(args.data_root)
    target = homes[args.home]
    others = [h for n, h in homes.items() if n != args.home]
    m, keep = target.matrix, set(target.scenes)
    rng = np.random.default_rng(args.seed)  # the first draw bench/recognition_adaptation.py makes
    draw = sorted(rng.choice(list(dict.fromkeys(m.days.tolist())), size=args.label_days, replace=False).tolist())
    chosen = np.isin(m.days, draw)
    part = Matrix(m.X[chosen], m.y[chosen], m.days[chosen], m.times[chosen])
    config = replace(FOREST_CONFIGS["leaf20_48trees"], seed=args.seed, n_jobs=args.n_jobs)
    seconds: dict[str, list[float]] = {"household_forest": [], "prior_choice": []}
    powers = []
    for _ in range(args.runs):  # in turn, so both see the same machine
        t0 = time.perf_counter()
        rows = homes_training_set(others, keep, [part], household_weight(len(draw), PER_DAY_WEIGHT), True)
        fit(rows.X, rows.y, config, sample_weight=rows.sample_weight, groups=rows.groups)
        seconds["household_forest"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        choice = household_prior_choice(others, keep, part, config, PER_DAY_WEIGHT, True)
        seconds["prior_choice"].append(time.perf_counter() - t0)
        powers.append(choice.power)
    medians = {k: statistics.median(v) for k, v in seconds.items()}
    result: dict[str, Any] = {
        "what": __doc__.split("\n")[0], "tree": tree_name(ROOT), "home": args.home, "labelled_days": draw,
        "other_homes": [h.name for h in others], "runs": args.runs, "n_jobs": args.n_jobs,
        "folds": choice.folds, "powers_chosen": powers,
        "seconds_median": {k: round(v, 2) for k, v in medians.items()},
        "seconds_range": {k: [round(min(v), 2), round(max(v), 2)] for k, v in seconds.items()},
        "training_time_ratio": round((medians["household_forest"] + medians["prior_choice"])
                                     / medians["household_forest"], 2),
    }
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
