"""Adaptation without forgetting: a household that labels 3 days but never a given scene (its nights, by
default), trained beside the other homes; how well that scene is still recognised on its remaining days.
Prints one JSON document (and writes it with --out).

    python bench/recognition_adaptation_unlabelled.py ../shared/data \\
        [--out bench/results/recognition-adaptation-unlabelled.json]

Per home, ``--draws`` random draws of 3 days (the same draws as ``bench/recognition_adaptation.py``); the
scene's slices are left out of the household's days (unlabelled time is not trained on, as with household
labels); for each rule (``bench.recognition_adaptation.RULES``) the recall of that scene and the class
accuracy on the remaining days.  The draws of ``recognition_adaptation.py`` label every scene, so they cannot
show whether a rule keeps a scene the household has not labelled yet; this does, on real homes.  House A
shaped the design (marked).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition_adaptation import RULES, per_class  # noqa: E402
from bench.recognition_homes import DESIGN_DATA, HOMES, load_homes  # noqa: E402
from bench.report import emit  # noqa: E402
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
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--homes", nargs="+", default=list(HOMES), choices=list(HOMES))
    parser.add_argument("--rules", nargs="+", default=["default_pooled", "default_per_home",
                                                        "leaf20_48trees_per_home", "leaf20_48trees_per_home_prior"],
                        choices=list(RULES))
    parser.add_argument("--scene", default="sleeping", help="the scene the household never labels")
    parser.add_argument("--label-days", type=int, default=3)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    homes = load_homes(args.data_root)
    rows: dict[str, Any] = {}
    for name in args.homes:
        target = homes[name]
        m, labels, keep = target.matrix, target.scenes, set(target.scenes)
        others = [h for n, h in homes.items() if n != name]
        day_ids = list(dict.fromkeys(m.days.tolist()))
        rng = np.random.default_rng(args.seed)
        draws = [sorted(rng.choice(day_ids, size=args.label_days, replace=False).tolist()) for _ in range(args.draws)]
        row: dict[str, Any] = {"shaped_the_design": name in DESIGN_DATA, "draws": draws, "rules": {}}
        for rule_name in args.rules:
            rule = RULES[rule_name]
            config = replace(FOREST_CONFIGS[rule.forest], seed=args.seed, n_jobs=args.n_jobs)
            recall, accuracy, powers = [], [], []
            for draw in draws:
                chosen = np.isin(m.days, draw)
                train = chosen & (m.y != args.scene)
                part = Matrix(m.X[train], m.y[train], m.days[train], m.times[train])
                ts = homes_training_set(others, keep, [part], household_weight(len(draw), PER_DAY_WEIGHT),
                                        balance_per_home=rule.balance_per_home)
                model = fit(ts.X, ts.y, config, sample_weight=ts.sample_weight, groups=ts.groups)
                proba = model.predict_proba(m.X[~chosen])
                power = rule.prior_correction
                if rule.prior_by_days:  # chosen on the household's labelled days (its nights never among them)
                    power = household_prior_choice(others, keep, part, config, PER_DAY_WEIGHT,
                                                   rule.balance_per_home).power
                    powers.append(power)
                if power:
                    proba = ts.prior_correction(config, power).apply(proba)
                pred, y = np.asarray(model.classes_).astype(str)[proba.argmax(axis=1)], m.y[~chosen]
                recall.append(round(float(np.mean(pred[y == args.scene] == args.scene)), 3))
                accuracy.append(round(float(np.mean(list(per_class(y, pred, labels).values()))), 4))
            row["rules"][rule_name] = {f"{args.scene}_recall": recall, "class_accuracy": accuracy,
                                       **({"powers_chosen": powers} if rule.prior_by_days else {})}
        rows[name] = row
        print(name, json.dumps(row["rules"]), round(time.perf_counter() - t0), file=sys.stderr, flush=True)
    result = {"what": f"{args.label_days} labelled days without any '{args.scene}' label, beside the other homes: "
                      f"recall of '{args.scene}' and class accuracy on the remaining days",
              "per_day_weight": PER_DAY_WEIGHT, "homes": rows, "seconds": round(time.perf_counter() - t0, 1)}
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
