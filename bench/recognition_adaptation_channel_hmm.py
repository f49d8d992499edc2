"""Exploration: does the channel HMM help a household's first labelled days?  Three labelled days of each home
plus the five other homes, trained as ``model train --source recorder --home ...`` trains a household (the
``leaf20_48trees`` forest, scenes balanced per home, the days weighing one home each), against the same forest
joined with a channel HMM whose counts carry the same row weights (so the household's days count in the HMM
as they do in the forest: ``baselines.fit_hmm``'s ``sample_weight``).  Share of the class accuracy that
leave-one-day-out on all the home's other days reaches, on the same remaining days; 5 draws of days.  Each
joined model is scored deciding on its filtered posterior (``joined_W``) and deciding balanced (``joined_W_balanced``:
that posterior divided by its transitions' stationary distribution, ``model train --decide balanced``).

    python bench/recognition_adaptation_channel_hmm.py ../shared/data [--homes NAME ...] [--out FILE]

One forest seed; the weights are read side by side, none chosen: a direction, not a result.
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

from bench.recognition_homes import load_homes  # noqa: E402
from bench.report import emit  # noqa: E402
from qilu_hub.recognition.baselines import fit_hmm  # noqa: E402
from qilu_hub.recognition.channel_hmm import ChannelHmm, channel_columns, forest_prior  # noqa: E402
from qilu_hub.recognition.evaluation import (  # noqa: E402
    PER_DAY_WEIGHT,
    homes_training_set,
    household_weight,
    lodo_predictions,
)
from qilu_hub.recognition.features import DEFAULT_SPEC  # noqa: E402
from qilu_hub.recognition.training import FOREST_CONFIGS, Matrix, class_mass, fit  # noqa: E402

WEIGHTS = (0.0, 0.5, 1.0, 2.0)


def class_accuracy(y: np.ndarray, pred: np.ndarray, labels: list[str]) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in labels if np.any(y == c)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--homes", nargs="+", default=None, metavar="NAME", help="score only these homes")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    homes = list(load_homes(args.data_root).values())
    scored = [h for h in homes if args.homes is None or h.name in args.homes]
    config = replace(FOREST_CONFIGS["leaf20_48trees"], seed=0)
    rows: dict[str, Any] = {}
    for target in scored:
        m, labels, keep = target.matrix, target.scenes, set(target.scenes)
        others = [h for h in homes if h.name != target.name]
        reference = lodo_predictions(m, config)
        day_ids = list(dict.fromkeys(m.days.tolist()))
        rng = np.random.default_rng(0)
        draws = [sorted(rng.choice(day_ids, size=3, replace=False).tolist()) for _ in range(5)]
        shares: dict[str, list[float]] = {"forest_alone": [], **{f"joined_{w:g}{how}": [] for w in WEIGHTS
                                                                  for how in ("", "_balanced")}}
        for draw in draws:
            test = ~np.isin(m.days, draw)
            part = Matrix(m.X[~test], m.y[~test], m.days[~test], m.times[~test])
            train = homes_training_set(others, keep, [part], household_weight(3, PER_DAY_WEIGHT), balance_per_home=True)
            forest = fit(train.X, train.y, config, sample_weight=train.sample_weight, groups=train.groups)
            proba = forest.predict_proba(m.X[test])
            scenes = [str(c) for c in forest.classes_]
            days = np.concatenate([np.char.add(f"{h.name}:", h.matrix.days.astype(str)) for h in others]
                                  + [np.char.add("own:", part.days.astype(str))])
            hmm = fit_hmm(train.X[:, channel_columns(DEFAULT_SPEC)] > 0.5, train.y, days, scenes,
                          sample_weight=train.sample_weight)
            mass = class_mass(train.y, config.balance, train.sample_weight, train.groups)
            prior = forest_prior(mass, scenes)
            y, test_days = m.y[test], m.days[test]
            ref = class_accuracy(y, reference[test], labels)
            shares["forest_alone"].append(class_accuracy(y, np.asarray(scenes)[proba.argmax(axis=1)], labels) / ref)
            for w in WEIGHTS:
                joined = ChannelHmm(scenes, channel_columns(DEFAULT_SPEC), hmm.state_weights, hmm.log_trans,
                                    hmm.log_init, w, prior)
                for how, model in (("", joined), ("_balanced", replace(joined, balanced=True))):
                    pred = np.asarray(scenes)[model.posterior(m.X[test], proba, test_days).argmax(axis=1)]
                    shares[f"joined_{w:g}{how}"].append(class_accuracy(y, pred, labels) / ref)
        rows[target.name] = {k: {"mean": round(float(np.mean(v)), 3), "draws": [round(x, 3) for x in v]}
                             for k, v in shares.items()}
        print(target.name, {k: v["mean"] for k, v in rows[target.name].items()}, file=sys.stderr, flush=True)
    emit({"what": "share of the all-other-days class accuracy after 3 labelled days beside the five other homes: "
                  "the household forest alone and joined with a row-weighted channel HMM at each weight, deciding on "
                  "its posterior or balanced",
          "forest": "leaf20_48trees, seed 0, scenes balanced per home", "draws": 5, "homes": rows}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
