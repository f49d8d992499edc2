"""Adaptation in a new home: how much of the all-other-days class accuracy n labelled days reach when trained
beside the other homes, with the adaptation rule for each home chosen on the *other* homes only (nested).
Prints one JSON document (and writes it with --out).

    python bench/recognition_adaptation.py ../shared/data [--out bench/results/recognition-adaptation.json]

Per home: ``--draws`` random draws of n labelled days (``--label-days``, default 3); for each draw and each rule
(``RULES``: forest preset, class balance pooled over all homes or within each home; the household's days always
weigh ``evaluation.PER_DAY_WEIGHT`` homes per labelled day, as ``qilu-hub model train --source recorder --home …``
weighs them), a forest trained on the other five homes plus those days, scored on the home's remaining days. Each
rule also comes with ``_prior``: the same forest deciding with its probabilities divided by the class masses it
was trained with (``training.prior_correction``, what ``model train`` embeds as the model's class bias), so every
scene of the home weighs the same when deciding; ``_prior50``: divided by their square root;
``leaf20_48trees_per_home_prior_by_days``: the power (0, 0.5 or 1) the draw's own labelled days choose, each
predicted by a forest trained without it (``evaluation.household_prior_choice``: what ``model train`` does for a
household by default; three more forests per draw; ``chosen_by_days`` in the JSON gives each draw's). The reference is
leave-one-day-out on the home itself with the same forest preset (each day predicted by a model trained on all its
other days), scored on the *same* remaining days, so a draw's share is (adapted class accuracy) ÷ (reference class
accuracy) on identical slices. Everything is scored on the shared scene set (a home's other scenes are idle), the
reference included.

Nested choice: for each home the rule with the highest mean share over the other five homes' draws is its
rule (ties: the first listed); the home's own figures never take part in choosing it.  House A shaped the
feature design and the forest presets: its rows are marked.  The other homes include Ordóñez A/B (not
shippable): these are leave-one-home-out figures, not the bundled model's.  The 95 % interval of a home's
mean share resamples the remaining days of each draw (paired: the adapted and the reference predictions on
the same resampled days).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition_homes import DESIGN_DATA, HOMES, load_homes  # noqa: E402
from bench.report import emit  # noqa: E402
from qilu_hub.recognition.evaluation import (  # noqa: E402
    PER_DAY_WEIGHT,
    homes_training_set,
    household_prior_choice,
    household_weight,
    lodo_predictions,
    train_on_homes,
)
from qilu_hub.recognition.training import FOREST_CONFIGS, Matrix, fit  # noqa: E402


@dataclass(frozen=True)
class Rule:
    forest: str
    balance_per_home: bool
    # Divide the forest's probabilities by the class masses it was trained with (``training.prior_correction``):
    # a scene few homes label (eating) is otherwise decided against with the prior of one or two homes.
    # 1: divided by the masses; 0.5: by their square root (half-way in log terms); 0: not at all.
    prior_correction: float = 0.0
    # The power chosen per household (and per draw) among ``training.PRIOR_POWERS`` by its own labelled days, each
    # predicted by a forest trained without it (``evaluation.household_prior_choice``): what ``model train
    # --prior-correction auto`` does.
    prior_by_days: bool = False


# The candidates nested selection chooses between, the one model train used before this bench first
# (``model train --source recorder --home …`` now does what every home chose: leaf20_48trees, per home).
# The nested choice is also reported among the ``default``-forest rules alone (``model train --forest
# default``).  These draws label every scene; whether a rule keeps a scene the household has not labelled
# yet is bench/recognition_adaptation_unlabelled.py's question.
RULES: dict[str, Rule] = {
    "default_pooled": Rule("default", False),
    "default_per_home": Rule("default", True),
    "leaf20_48trees_pooled": Rule("leaf20_48trees", False),
    "leaf20_48trees_per_home": Rule("leaf20_48trees", True),
    "default_pooled_prior": Rule("default", False, 1.0),
    "default_per_home_prior": Rule("default", True, 1.0),
    "leaf20_48trees_pooled_prior": Rule("leaf20_48trees", False, 1.0),
    "leaf20_48trees_per_home_prior": Rule("leaf20_48trees", True, 1.0),
    "default_pooled_prior50": Rule("default", False, 0.5),
    "default_per_home_prior50": Rule("default", True, 0.5),
    "leaf20_48trees_pooled_prior50": Rule("leaf20_48trees", False, 0.5),
    "leaf20_48trees_per_home_prior50": Rule("leaf20_48trees", True, 0.5),
    "leaf20_48trees_per_home_prior_by_days": Rule("leaf20_48trees", True, prior_by_days=True),
}
DEFAULT_FOREST_RULES = tuple(name for name, rule in RULES.items()
                             if rule.forest == "default" and not rule.prior_correction and not rule.prior_by_days)


def class_counts(y: np.ndarray, pred: np.ndarray, days: np.ndarray, labels: list[str]) -> tuple[np.ndarray, ...]:
    """Per (day, class): slices and right answers, for pooled class accuracy over any resample of days."""
    day_ids = list(dict.fromkeys(days.tolist()))
    count = np.zeros((len(day_ids), len(labels)))
    right = np.zeros((len(day_ids), len(labels)))
    for d, day in enumerate(day_ids):
        sel = days == day
        for k, c in enumerate(labels):
            truth = y[sel] == c
            count[d, k] = truth.sum()
            right[d, k] = (pred[sel][truth] == c).sum()
    return count, right


def pooled_class_accuracy(count: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Mean per-class recall for each row of day weights already applied ([B, K] each)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(np.where(count > 0, right / np.where(count > 0, count, 1), np.nan), axis=-1)


def per_class(y: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict[str, float]:
    return {c: round(float(np.mean(pred[y == c] == c)), 3) for c in labels if np.any(y == c)}


def nest(rows: dict[str, Any], rules: list[str]) -> None:
    """Each home's rule chosen on the other scored homes only (highest mean share; ties: the first listed),
    among all ``rules`` (``chosen``), among the ``DEFAULT_FOREST_RULES`` (``default_forest_chosen``) and among
    the rules without prior correction (``plain_chosen``: what ``model train`` does by default)."""
    plain = [r for r in rules if not RULES[r].prior_correction and not RULES[r].prior_by_days]
    for key, among in (("", rules), ("default_forest_", [r for r in DEFAULT_FOREST_RULES if r in rules]),
                       ("plain_", plain)):
        for name, row in rows.items():
            if not among:
                continue
            peers = [rows[n] for n in rows if n != name]
            scores = {r: round(float(np.mean([p["rules"][r]["share_mean"] for p in peers])), 4) if peers else 0.0
                      for r in among}
            row[f"{key}rule_scores_on_other_homes"] = scores
            row[f"{key}chosen_rule"] = max(among, key=lambda r: scores[r])
            row[f"{key}chosen"] = row["rules"][row[f"{key}chosen_rule"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--homes", nargs="+", default=list(HOMES), choices=list(HOMES),
                        help="homes to score (every home is still trained on and takes part in the nested choice "
                             "only when scored)")
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--label-days", type=int, default=3)
    parser.add_argument("--draws", type=int, default=5, help="random draws of labelled days per home")
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    homes = load_homes(args.data_root)
    presets = {RULES[r].forest for r in args.rules}
    configs = {p: replace(FOREST_CONFIGS[p], seed=args.seed, n_jobs=args.n_jobs) for p in sorted(presets)}
    rows: dict[str, Any] = {}
    for name in args.homes:
        target = homes[name]
        m, labels, keep = target.matrix, target.scenes, set(target.scenes)
        others = [h for n, h in homes.items() if n != name]
        reference = {p: lodo_predictions(m, c) for p, c in configs.items()}
        day_ids = list(dict.fromkeys(m.days.tolist()))
        rng = np.random.default_rng(args.seed)
        draws = [sorted(rng.choice(day_ids, size=args.label_days, replace=False).tolist()) for _ in range(args.draws)]
        # Context: no labelled day (the other homes only) and the labelled days alone, default forest.
        base = configs.get("default", next(iter(configs.values())))
        unlabelled = train_on_homes(others, base, keep).predict(m.X)
        row: dict[str, Any] = {
            "shaped_the_design": name in DESIGN_DATA, "scenes": labels, "draws": draws,
            "reference_all_other_days": {
                p: {"class_accuracy": round(float(np.mean(list(per_class(m.y, r, labels).values()))), 4),
                    "per_class": per_class(m.y, r, labels)}
                for p, r in reference.items()},
            "rules": {},
        }
        alone, none = [], []
        for draw in draws:
            test = ~np.isin(m.days, draw)
            part = Matrix(m.X[~test], m.y[~test], m.days[~test], m.times[~test])
            pa = fit(part.X, part.y, base).predict(m.X[test])
            alone.append(float(np.mean([np.mean(pa[m.y[test] == c] == c) for c in labels if np.any(m.y[test] == c)])))
            pn = unlabelled[test]
            none.append(float(np.mean([np.mean(pn[m.y[test] == c] == c) for c in labels if np.any(m.y[test] == c)])))
        row["labelled_days_alone_class_accuracy"] = [round(v, 4) for v in alone]
        row["other_homes_only_class_accuracy"] = [round(v, 4) for v in none]
        # One forest per (preset, balance) and draw; the prior-corrected rules decide on its probabilities.
        predictions: dict[tuple[str, int], np.ndarray] = {}
        chosen_powers: dict[str, list[Any]] = {}
        for i, draw in enumerate(draws):
            test = ~np.isin(m.days, draw)
            part = Matrix(m.X[~test], m.y[~test], m.days[~test], m.times[~test])
            for forest, per_home in dict.fromkeys((RULES[r].forest, RULES[r].balance_per_home) for r in args.rules):
                train = homes_training_set(others, keep, [part], household_weight(len(draw), PER_DAY_WEIGHT),
                                           balance_per_home=per_home)
                model = fit(train.X, train.y, configs[forest], sample_weight=train.sample_weight, groups=train.groups)
                proba = model.predict_proba(m.X[test])
                scene_of = np.asarray(model.classes_).astype(str)
                for rule_name in args.rules:
                    rule = RULES[rule_name]
                    if (rule.forest, rule.balance_per_home) == (forest, per_home):
                        power = rule.prior_correction
                        if rule.prior_by_days:
                            choice = household_prior_choice(others, keep, part, configs[forest], PER_DAY_WEIGHT,
                                                             per_home)
                            power = choice.power
                            chosen_powers.setdefault(rule_name, []).append(
                                {"power": power, "held_out_class_accuracy": {
                                    str(k): round(v, 4) for k, v in choice.scores.items()}})
                        decided = train.prior_correction(configs[forest], power).apply(proba) if power else proba
                        predictions[rule_name, i] = scene_of[decided.argmax(axis=1)]
        for rule_name in args.rules:
            rule = RULES[rule_name]
            ref = reference[rule.forest]
            accs, refs, shares, classes, counts = [], [], [], [], []
            for i, draw in enumerate(draws):
                test = ~np.isin(m.days, draw)
                pred = predictions[rule_name, i]
                c_ad = class_counts(m.y[test], pred, m.days[test], labels)
                c_ref = class_counts(m.y[test], ref[test], m.days[test], labels)
                a = float(pooled_class_accuracy(c_ad[0].sum(0), c_ad[1].sum(0)))
                r = float(pooled_class_accuracy(c_ref[0].sum(0), c_ref[1].sum(0)))
                accs.append(a)
                refs.append(r)
                shares.append(a / r)
                classes.append((per_class(m.y[test], pred, labels), per_class(m.y[test], ref[test], labels)))
                counts.append((c_ad, c_ref))
            # Paired bootstrap of the mean share: each draw's remaining days resampled, both predictions alike.
            boot = np.random.default_rng(args.seed)
            samples = np.zeros(args.boot)
            for (ad_count, ad_right), (_, ref_right) in counts:
                D = len(ad_count)
                w = boot.multinomial(D, np.full(D, 1.0 / D), size=args.boot).astype(float)
                samples += pooled_class_accuracy(w @ ad_count, w @ ad_right) / pooled_class_accuracy(w @ ad_count,
                                                                                                     w @ ref_right)
            samples /= len(counts)
            row["rules"][rule_name] = {
                "class_accuracy": [round(v, 4) for v in accs],
                "reference_same_days": [round(v, 4) for v in refs],
                "share": [round(v, 3) for v in shares],
                **({"chosen_by_days": chosen_powers[rule_name]} if rule_name in chosen_powers else {}),
                "share_mean": round(float(np.mean(shares)), 3),
                "share_median": round(float(np.median(shares)), 3),
                "share_min_max": [round(float(min(shares)), 3), round(float(max(shares)), 3)],
                "share_mean_ci95": [round(float(v), 3) for v in np.percentile(samples, [2.5, 97.5])],
                "per_class_median": {c: round(float(np.median([d[c] for d, _ in classes if c in d])), 3)
                                     for c in labels},
                "reference_per_class_median": {c: round(float(np.median([d[c] for _, d in classes if c in d])), 3)
                                               for c in labels},
            }
        rows[name] = row
        print(name, json.dumps({k: v["share"] for k, v in row["rules"].items()}), round(time.perf_counter() - t0),
              file=sys.stderr, flush=True)
    nest(rows, args.rules)
    result: dict[str, Any] = {
        "what": f"{args.label_days} labelled days beside the other homes, share of the all-other-days class accuracy "
                "on the same remaining days; rule per home chosen on the other homes (nested)",
        "rules": {k: {"forest": v.forest, "balance_per_home": v.balance_per_home,
                      "prior_correction": v.prior_correction, "prior_by_days": v.prior_by_days}
                  for k, v in RULES.items() if k in args.rules},
        "forests": {p: {k: v for k, v in c.__dict__.items() if k != "n_jobs"} for p, c in configs.items()},
        "per_day_weight": PER_DAY_WEIGHT, "label_days": args.label_days, "draws": args.draws,
        "homes": rows,
        "default_forest_rules": [r for r in DEFAULT_FOREST_RULES if r in args.rules],
        "mean_share_at_least_0.9": {n: r["chosen"]["share_mean"] >= 0.9 for n, r in rows.items()},
        "plain_mean_share_at_least_0.9": {n: r["plain_chosen"]["share_mean"] >= 0.9 for n, r in rows.items()
                                          if "plain_chosen" in r},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
