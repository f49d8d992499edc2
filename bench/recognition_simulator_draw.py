"""Which seed decides "above the HMM": the forest's or the simulator's?  The day-one recipe, scored per seed pair.

    python bench/recognition_simulator_draw.py ../shared/data --pairs 0:0 1:0 2:0 4:0 0:1 0:2 0:4 [--out FILE]
    python bench/recognition_simulator_draw.py ../shared/data --pairs 0:0 1:1 2:2 3:3 \\
        --simulated-homes 8 --hmm-counts homes [--trees 24] [--weight 0.5] [--out FILE]

Each pair is FOREST_SEED:SIMULATOR_SEED (``model eval --seed S`` sets both to S).  For each pair and each home:
leave-one-home-out as the bundled model ships (the shippable homes other than the one scored, plus
``--simulated-homes`` simulated homes of 14 days, all of them one training home; the forest at depth 9 with
``--trees`` trees, joined with the channel HMM at ``--weight``), its pooled class accuracy on the home's own
scenes minus the rebuilt causal HMM's trained on the same real homes (which has no seed).  ``--hmm-counts
homes``: the channel HMM counts each training home (the simulated homes together as one) the same, as the
forest weighs them (``evaluation.with_channel_hmm(count_homes=True)``); ``days`` (as shipped): every day the
same.  The summary gives each home's smallest and largest margin over the pairs.  About 50 s a pair with 2
simulated homes, 70 s with 8, on 2 cores.
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

from bench.recognition_homes import DESIGN_DATA, SHIPPABLE, load_homes  # noqa: E402
from bench.report import emit, tree_name  # noqa: E402
from qilu_hub.recognition.evaluation import (  # noqa: E402
    Home,
    figures,
    hmm_predictions,
    homes_training_set,
    with_channel_hmm,
)
from qilu_hub.recognition.simulator import SimConfig, simulate  # noqa: E402
from qilu_hub.recognition.training import TrainConfig, build_matrix, fit  # noqa: E402


def pair(text: str) -> tuple[int, int]:
    forest, _, simulator = text.partition(":")
    if not (forest.isdigit() and simulator.isdigit()):
        raise argparse.ArgumentTypeError(f"a pair is FOREST_SEED:SIMULATOR_SEED, not {text!r}")
    return int(forest), int(simulator)


def class_accuracy(home: Home, pred: np.ndarray) -> float:
    return float(figures(home.matrix.y, pred, home.matrix.days, home.scenes, n_boot=0)["class_accuracy"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--pairs", type=pair, nargs="+", required=True, metavar="FOREST:SIMULATOR")
    parser.add_argument("--simulated-homes", type=int, default=2)
    parser.add_argument("--hmm-counts", choices=("days", "homes"), default="days")
    parser.add_argument("--trees", type=int, default=TrainConfig().n_estimators)
    parser.add_argument("--weight", type=float, default=0.5, help="the forest's weight in the joined model")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    homes = list(load_homes(args.data_root).values())
    baseline = {}
    for target in homes:
        train = [h for h in homes if h.name != target.name and h.name in SHIPPABLE]
        baseline[target.name] = class_accuracy(target, hmm_predictions(train, target, set(target.scenes))["causal"])
    runs: dict[str, Any] = {}
    for forest_seed, simulator_seed in args.pairs:
        started = time.perf_counter()
        config = TrainConfig(n_estimators=args.trees, max_depth=9, seed=forest_seed)
        sim = build_matrix(simulate(SimConfig(days=14, homes=args.simulated_homes, seed=simulator_seed)),
                           progress=False)
        run: dict[str, Any] = {}
        for target in homes:
            train = [h for h in homes if h.name != target.name and h.name in SHIPPABLE]
            keep = set(target.scenes)
            rows = homes_training_set(train, keep, [sim])
            forest = fit(rows.X, rows.y, config, sample_weight=rows.sample_weight)
            joined = with_channel_hmm(forest, rows, config, train, keep, args.weight, [sim],
                                      count_homes=args.hmm_counts == "homes")
            m = target.matrix
            pred = np.asarray(joined.labels)[joined.posterior(m.X, forest.predict_proba(m.X), m.days).argmax(axis=1)]
            ours = class_accuracy(target, pred)
            run[target.name] = {"ours": round(ours, 4), "minus_hmm": round(ours - baseline[target.name], 4)}
        runs[f"{forest_seed}:{simulator_seed}"] = {"homes": run, "seconds": round(time.perf_counter() - started)}
        print(f"{forest_seed}:{simulator_seed}", " ".join(f"{r['minus_hmm'] * 100:+5.1f}" for r in run.values()),
              file=sys.stderr, flush=True)
    summary = {}
    for home in homes:
        margins = [r["homes"][home.name]["minus_hmm"] for r in runs.values()]
        summary[home.name] = {"design_data": home.name in DESIGN_DATA, "hmm_causal": round(baseline[home.name], 4),
                              "smallest_margin": min(margins), "largest_margin": max(margins),
                              "pairs_above": sum(v > 0 for v in margins), "pairs": len(margins)}
    emit({"what": "leave-one-home-out class accuracy of the day-one recipe minus the rebuilt causal HMM's, per "
                  "forest:simulator seed pair",
          "simulated_homes": args.simulated_homes, "simulated_days_per_home": 14, "hmm_counts": args.hmm_counts,
          "trees": args.trees, "depth": 9, "weight": args.weight, "tree": tree_name(ROOT),
          "summary": summary, "pairs": runs}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
