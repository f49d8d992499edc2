"""Adaptation in a new home: the learning curve when the household's labelled days are trained beside the
other homes, weighing ``evaluation.PER_DAY_WEIGHT`` homes per labelled day (as ``qilu-hub model train
--source recorder --home …`` weighs them).  Prints one JSON document (and writes it with --out).

    python bench/recognition_adaptation.py ../shared/data --reference bench/results/recognition-homes.json \\
        [--out bench/results/recognition-adaptation.json]

Per home: n labelled days (``--label-days``, ``--repeats`` random draws), trained with the other five homes,
tested on the home's remaining days; the share of the reference, the home's leave-one-day-out class accuracy
on all its other days.  The reference figures are read from ``bench/recognition_homes.py``'s output (same
forest configuration and seed, so the same predictions) rather than computed again: on two shared cores
leave-one-day-out over six homes is most of that bench's run.  The other homes include Ordóñez A/B (not
shippable): these are leave-one-home-out figures, like the rest of that bench, not the bundled model's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition_homes import HOMES  # noqa: E402
from qilu_hub.recognition.datasets import load_dataset  # noqa: E402
from qilu_hub.recognition.evaluation import PER_DAY_WEIGHT, days_of_labels, home_from_dataset  # noqa: E402
from qilu_hub.recognition.training import TrainConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--reference", type=Path, required=True,
                        help="bench/recognition_homes.py output holding each home's days_of_labels reference")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--homes", nargs="+", default=list(HOMES), choices=list(HOMES))
    parser.add_argument("--label-days", type=int, nargs="+", default=[3])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-day-weight", type=float, nargs="+", default=[PER_DAY_WEIGHT])
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    t0 = time.perf_counter()
    saved = json.loads(args.reference.read_text())
    config = TrainConfig(**{**saved["leave_one_home_out"]["config"], "n_jobs": args.n_jobs})
    homes = {n: home_from_dataset(n, load_dataset(args.data_root / HOMES[n][0], ROOT / HOMES[n][1]))
             for n in HOMES}
    result: dict[str, Any] = {"what": "days-of-labels with the other homes, household days weighted per day",
                              "config": saved["leave_one_home_out"]["config"], "homes": {}}
    for name in args.homes:
        curve = saved["days_of_labels"][name]["days_of_labels"][0]
        reference = curve["reference_all_other_days"]
        others = [h for n, h in homes.items() if n != name]
        runs = {}
        for w in args.per_day_weight:
            runs[str(w)] = days_of_labels(homes[name], config, args.label_days, args.repeats, others, reference,
                                          per_day_weight=w)["curve"]
        result["homes"][name] = {"reference_all_other_days": reference,
                                 "alone": [p for p in curve["curve"] if p["days"] in args.label_days],
                                 "with_other_homes_per_day_weight": runs}
        print(name, json.dumps(runs), file=sys.stderr, flush=True)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
