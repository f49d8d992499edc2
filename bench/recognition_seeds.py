"""Does the forest's seed decide "above the HMM"?  Leave-one-home-out class accuracy per home for forest presets
and several forest seeds, against the rebuilt HMM (causal; it has no seed, so it is computed once per home), and
optionally the preset chosen per test home by the nested protocol.  Prints one JSON document.

    python bench/recognition_seeds.py ../shared/data --presets leaf20_48trees --seeds 0 1 2 \
        [--candidate NAME TREES DEPTH LEAF] [--hgb NAME ...] \
        [--nested [--inner-from bench/results/recognition-homes-nested.json]] \
        [--self-train [--self-train-share 0.5]] [--max-bytes 1000000] [--unlabelled open] [--paired] \
        [--out bench/results/recognition-seeds.json]

Per test home and preset: ours trained on the other five homes (each weighing the same, as
``evaluation.train_on_homes``), pooled class accuracy for each seed, its mean and spread (min, max) over seeds,
and ours − HMM for each seed.  Only the point figures: ``bench/recognition_paired.py`` gives the paired
bootstrap over days for one seed.  Why: with ``leaf20_48trees`` the seed moved the difference more than the
bootstrap's width (docs/recognition.md "How sure is above the HMM?"); a forest with more trees averages that out.
Per preset also the ONNX bytes (as ``to_onnx`` writes the file) and the fit seconds of the first seed's model, and a
digest of its predicted probabilities on the test home (equal digests: bit-identical outputs).  ``--paired``: for
the first seed, also the paired bootstrap of ours − HMM (causal and offline) over single days and 7-day blocks,
``evaluation.paired_difference`` exactly as ``bench/recognition_paired.py`` calls it (1000 resamples, seed 0), so
a candidate's intervals come without fitting it again.

``--hgb NAME`` (candidates, not shipped presets): gradient-boosted trees (``TrainConfig(estimator="hgb")``), in
``HGB_CONFIGS``.  Early stopping is off and nothing is subsampled, so they draw nothing at random and the seed
cannot move them (compare the digests of two seeds).  Both configurations were fixed before any of their scores
was seen, and not tuned after: a few rounds of large leaves at the usual step (``hgb_leaf15``), or twice the
rounds of small, well-filled leaves at half the step (``hgb_leaf7_slow``), both with l2 regularisation 1.

``--household-profile`` (exploration, not a shipped feature): appends to every home's slices two columns
computed from that home's own *unlabelled* event history, as a hub could before any label exists: the share of
its days with any event in the slice's half hour of the day, and that share's rank among the day's 48 half
hours (0..1).  The idea: silence at an hour this household is usually active suggests away, at its usual quiet
hours sleeping, whatever its clock.

``--self-train`` (exploration, not a shipped feature): one round of self-training on the test home's own
*unlabelled* slices, as a hub could before any label exists (it has the household's recorded history).  For each
seed: fit on the other five homes as above; predict the test home's slices; keep, within each predicted class,
the ``--self-train-share`` (0.5) of its slices with the highest top probability (the forest's vote share); refit
on the other five homes plus those pseudo-labelled slices, the test home weighing like one home (``extra`` of
``evaluation.train_on_homes``, weight 1); score the refit on the test home's true labels.  Why a share per
predicted class rather than one probability threshold: a threshold keeps mostly the long, easy scenes (sleeping,
away) and would drop exactly the near-tied classes whose flips make the sign depend on the seed, so the refit
would only learn the household's majority more firmly; a share per class keeps the predicted class mix.  The rule
and the 0.5 were fixed before any self-trained score was seen.  The labels are read only to score: the pseudo
labels' accuracy on the kept slices is reported as a diagnosis, never used to choose anything.

``--max-bytes N``: each forest is fitted as ``qilu-hub model train --max-bytes N`` fits it
(``training.fit_within_bytes``: refit shallower until its ONNX file is at most N bytes), so the figures are
those of a model that would ship; without it the forest is scored as grown, whatever its size.

``--unlabelled open``: a training home's unlabelled time is spread over ``idle`` and the scenes that home never
labels (``evaluation.spread_unlabelled``) instead of being taken as idle.

``--nested``: for each test home, each preset is scored by leave-one-home-out over the *other* five homes only
(mean class accuracy, seed 0), exactly as ``bench/recognition_homes_nested.py``; the winner's outer figures are
reported per seed.  ``--inner-from`` reuses inner means of presets already scored by that bench (same code,
same seed 0, so the same numbers) instead of refitting them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition_homes import DESIGN_DATA, HOMES, load_homes  # noqa: E402
from bench.report import emit  # noqa: E402
from qilu_hub.recognition.evaluation import (  # noqa: E402
    Home,
    figures,
    hmm_predictions,
    homes_training_set,
    paired_difference,
    train_on_homes,
)
from qilu_hub.recognition.training import FOREST_CONFIGS, Matrix, TrainConfig, fit_within_bytes, to_onnx  # noqa: E402

PROFILE_BINS = 48  # half hours
BLOCK_DAYS = 7  # --paired: as bench/recognition_paired.py

# ``--hgb`` candidates: fixed a priori (see the docstring), ``max_depth`` None as scikit-learn's default.
HGB_CONFIGS: dict[str, TrainConfig] = {
    "hgb_leaf15": TrainConfig(estimator="hgb", max_iter=100, max_leaf_nodes=15, learning_rate=0.1,
                              min_samples_leaf=20, l2_regularization=1.0, max_depth=None),
    "hgb_leaf7_slow": TrainConfig(estimator="hgb", max_iter=200, max_leaf_nodes=7, learning_rate=0.05,
                                  min_samples_leaf=100, l2_regularization=1.0, max_depth=None),
}
HGB_ONLY = ("max_iter", "max_leaf_nodes", "learning_rate", "l2_regularization")


def config_fields(config: TrainConfig) -> dict[str, Any]:
    """A configuration as reported: the fields its estimator reads (less seed and threads)."""
    skip = {"n_jobs", "seed"} | ({"n_estimators"} if config.estimator == "hgb" else {"estimator", *HGB_ONLY})
    return {k: v for k, v in config.__dict__.items() if k not in skip}


def add_household_profile(home: Home) -> None:
    """``--household-profile``: append the home's own time-of-day activity profile (from its events, no labels)."""
    ts = np.array([e.ts for e in home.events])
    day = np.floor(ts / 86400).astype(int)
    bins = ((ts % 86400) / 86400 * PROFILE_BINS).astype(int)
    active = np.zeros(PROFILE_BINS)
    for _day, b in set(zip(day.tolist(), bins.tolist(), strict=True)):
        active[b] += 1
    share = active / max(len(np.unique(day)), 1)
    rank = np.argsort(np.argsort(share)) / (PROFILE_BINS - 1)
    m = home.matrix
    at = (((m.times - home.spec.slice_seconds / 2) % 86400) / 86400 * PROFILE_BINS).astype(int)
    m.X = np.hstack([m.X, np.stack([share[at], rank[at]], axis=1)])


def class_accuracy(train: list[Home], test: Home, config: TrainConfig, sizes: list[int] | None = None,
                   facts: dict[str, Any] | None = None, *, max_bytes: int = 0, open_unlabelled: bool = False) -> float:
    """Pooled class accuracy on ``test`` of a forest trained on ``train``; appends its ONNX bytes to ``sizes``;
    ``facts`` gets the fit's seconds, a digest of the predicted probabilities and, with ``max_bytes`` (the forest
    as ``model train`` would write it, refit shallower until it fits), the depth it ended at."""
    m = test.matrix
    started = time.perf_counter()
    if max_bytes:
        rows = homes_training_set(train, set(test.scenes), open_unlabelled=open_unlabelled)
        model, used = fit_within_bytes(rows.X, rows.y, config, lambda f: len(to_onnx(f, test.spec)), max_bytes,
                                       rows.sample_weight, rows.groups, rows.share)
        if facts is not None:
            facts["max_depth"] = used.max_depth
    else:
        model = train_on_homes(train, config, set(test.scenes), open_unlabelled=open_unlabelled)
    fit_seconds = time.perf_counter() - started
    if sizes is not None and m.X.shape[1] == test.spec.n_features:  # a profile column has no ONNX input
        sizes.append(len(to_onnx(model, test.spec)))
    proba = np.ascontiguousarray(model.predict_proba(m.X))
    pred = model.classes_[proba.argmax(axis=1)]
    scored = figures(m.y, pred, m.days, test.scenes, n_boot=0)
    if facts is not None:
        facts.update(fit_seconds=round(fit_seconds, 1),
                     proba_sha256=hashlib.sha256(proba.tobytes()).hexdigest()[:16], pred=pred,
                     recall={c: round(float(v), 4) for c, v in scored["per_class_accuracy"].items()})
    return float(scored["class_accuracy"])


def self_trained(train: list[Home], test: Home, config: TrainConfig, share: float,
                 sizes: list[int] | None = None) -> dict[str, Any]:
    """``--self-train``: class accuracy before and after one round of self-training on ``test``'s own slices
    (its labels only score), with the pseudo labels' share kept and their accuracy on the kept slices, and per
    class the recall and the share of slices predicted, before and after."""
    m = test.matrix
    keep = set(test.scenes)
    model = train_on_homes(train, config, keep)
    proba = model.predict_proba(m.X)
    pred = model.classes_[proba.argmax(axis=1)]
    top = proba.max(axis=1)
    chosen = np.zeros(len(pred), dtype=bool)
    for scene in np.unique(pred):
        rows = np.flatnonzero(pred == scene)
        n_keep = int(np.ceil(share * len(rows)))
        chosen[rows[np.argsort(-top[rows], kind="stable")[:n_keep]]] = True
    pseudo = Matrix(m.X[chosen], pred[chosen], m.days[chosen], m.times[chosen])
    refit = train_on_homes(train, config, keep, extra=[pseudo], extra_weight=1.0)
    if sizes is not None and m.X.shape[1] == test.spec.n_features:
        sizes.append(len(to_onnx(refit, test.spec)))
    after_pred = refit.predict(m.X)
    after = figures(m.y, after_pred, m.days, test.scenes, n_boot=0)
    before = figures(m.y, pred, m.days, test.scenes, n_boot=0)
    return {"before": float(before["class_accuracy"]), "after": float(after["class_accuracy"]),
            "kept": float(chosen.mean()), "pseudo_label_accuracy": float(np.mean(pred[chosen] == m.y[chosen])),
            "recall_before": before["per_class_accuracy"], "recall_after": after["per_class_accuracy"],
            "predicted_share_before": {c: round(float(np.mean(pred == c)), 4) for c in test.scenes},
            "predicted_share_after": {c: round(float(np.mean(after_pred == c)), 4) for c in test.scenes}}


def self_train_row(others: list[Home], target: Home, config: TrainConfig, seeds: list[int], share: float,
                   hmm: float) -> dict[str, Any]:
    """One preset's ``--self-train`` figures on ``target``: without (as the default run) and with self-training."""
    sizes: list[int] = []
    runs = {s: self_trained(others, target, replace(config, seed=s), share, sizes if s == seeds[0] else None)
            for s in seeds}

    def summary(key: str) -> dict[str, Any]:
        acc = {s: runs[s][key] for s in seeds}
        diff = np.array([acc[s] - hmm for s in seeds])
        return {"class_accuracy": {str(s): round(v, 4) for s, v in acc.items()},
                "class_accuracy_mean": round(float(np.mean(list(acc.values()))), 4),
                "ours_minus_hmm": {str(s): round(float(d), 4) for s, d in zip(seeds, diff, strict=True)},
                "ours_minus_hmm_mean_min_max": [round(float(diff.mean()), 4), round(float(diff.min()), 4),
                                                round(float(diff.max()), 4)]}

    out = summary("before")
    out["self_trained"] = {**summary("after"), "onnx_bytes_first_seed": sizes[0] if sizes else None,
                           "kept_share": {str(s): round(runs[s]["kept"], 4) for s in seeds},
                           "pseudo_label_accuracy_on_kept": {str(s): round(runs[s]["pseudo_label_accuracy"], 4)
                                                             for s in seeds},
                           **{key: {str(s): runs[s][key] for s in seeds}
                              for key in ("recall_before", "recall_after", "predicted_share_before",
                                          "predicted_share_after")}}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--presets", nargs="*", default=list(FOREST_CONFIGS), choices=list(FOREST_CONFIGS))
    parser.add_argument("--candidate", nargs=4, action="append", default=[], metavar=("NAME", "TREES", "DEPTH", "LEAF"),
                        help="also a forest not among the presets (repeatable)")
    parser.add_argument("--hgb", nargs="*", default=[], choices=list(HGB_CONFIGS),
                        help="also these gradient-boosted candidates (HGB_CONFIGS)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--homes", nargs="+", default=list(HOMES), choices=list(HOMES), help="test homes")
    parser.add_argument("--nested", action="store_true", help="also choose the preset per test home, nested")
    parser.add_argument("--inner-from", type=Path, default=None,
                        help="bench/recognition_homes_nested.py JSON whose inner means to reuse")
    parser.add_argument("--household-profile", action="store_true",
                        help="exploration: add each home's own time-of-day activity profile (unlabelled history)")
    parser.add_argument("--self-train", action="store_true",
                        help="exploration: one round of self-training on the test home's unlabelled slices")
    parser.add_argument("--self-train-share", type=float, default=0.5,
                        help="share of each predicted class's slices kept as pseudo labels (fixed a priori)")
    parser.add_argument("--paired", action="store_true",
                        help="also the paired bootstrap of ours - HMM over days for the first seed")
    parser.add_argument("--max-bytes", type=int, default=0, metavar="N",
                        help="refit each forest shallower until its ONNX file is at most N bytes, as 'model train "
                             "--max-bytes' does (default: score the forest as grown)")
    parser.add_argument("--unlabelled", choices=("idle", "open"), default="idle",
                        help="a training home's unlabelled time: idle, or open to the scenes that home never labels "
                             "(evaluation.spread_unlabelled)")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    fit_options = {"max_bytes": args.max_bytes, "open_unlabelled": args.unlabelled == "open"}
    t0 = time.perf_counter()
    configs = {n: replace(FOREST_CONFIGS[n], n_jobs=args.n_jobs) for n in args.presets}
    for name, trees, depth, leaf in args.candidate:
        configs[name] = TrainConfig(n_estimators=int(trees), max_depth=int(depth) or None, min_samples_leaf=int(leaf),
                                    n_jobs=args.n_jobs)
    configs.update({n: replace(HGB_CONFIGS[n], n_jobs=args.n_jobs) for n in args.hgb})
    homes = list(load_homes(args.data_root).values())
    if args.household_profile:
        for home in homes:
            add_household_profile(home)
    reused: dict[str, dict[str, float]] = {}
    if args.inner_from is not None:
        previous = json.loads(args.inner_from.read_text())
        reused = {home: row["inner_mean"] for home, row in previous["homes"].items()}
    rows: dict[str, Any] = {}
    for target in (h for h in homes if h.name in args.homes):
        others = [h for h in homes if h.name != target.name]
        m = target.matrix
        hmm_pred = hmm_predictions(others, target, set(target.scenes))
        hmm = float(figures(m.y, hmm_pred["causal"], m.days, target.scenes, n_boot=0)["class_accuracy"])
        row: dict[str, Any] = {"shaped_the_design": target.name in DESIGN_DATA, "days": target.n_days,
                               "hmm_causal_class_accuracy": round(hmm, 4), "presets": {}}
        if args.paired:
            row["hmm_offline_class_accuracy"] = round(float(figures(m.y, hmm_pred["offline"], m.days, target.scenes,
                                                                    n_boot=0)["class_accuracy"]), 4)
        for name, config in configs.items():
            if args.self_train:
                row["presets"][name] = self_train_row(others, target, config, args.seeds, args.self_train_share, hmm)
                print(target.name, name, row["presets"][name]["self_trained"]["ours_minus_hmm"],
                      round(time.perf_counter() - t0), file=sys.stderr, flush=True)
                continue
            sizes: list[int] = []
            facts: dict[int, dict[str, Any]] = {s: {} for s in args.seeds}
            ours = {s: class_accuracy(others, target, replace(config, seed=s), sizes if s == args.seeds[0] else None,
                                      facts[s], **fit_options) for s in args.seeds}
            diff = np.array([ours[s] - hmm for s in args.seeds])
            first = facts[args.seeds[0]]["pred"]
            paired = {f"ours_minus_hmm_{decoding}_first_seed": {
                "day": paired_difference(m.y, first, pred, m.days, target.scenes, 1000),
                f"block{BLOCK_DAYS}": paired_difference(m.y, first, pred, m.days, target.scenes, 1000,
                                                        block_days=BLOCK_DAYS)}
                for decoding, pred in hmm_pred.items()} if args.paired else {}
            row["presets"][name] = {
                **({"max_depth_after_cap": {str(s): facts[s]["max_depth"] for s in args.seeds}}
                   if args.max_bytes else {}),
                "class_accuracy": {str(s): round(v, 4) for s, v in ours.items()},
                "class_accuracy_mean": round(float(np.mean(list(ours.values()))), 4),
                "onnx_bytes_first_seed": sizes[0] if sizes else None,
                "fit_seconds": {str(s): facts[s]["fit_seconds"] for s in args.seeds},
                "proba_sha256": {str(s): facts[s]["proba_sha256"] for s in args.seeds},
                "recall": {str(s): facts[s]["recall"] for s in args.seeds},
                "ours_minus_hmm": {str(s): round(float(d), 4) for s, d in zip(args.seeds, diff, strict=True)},
                "ours_minus_hmm_mean_min_max": [round(float(diff.mean()), 4), round(float(diff.min()), 4),
                                                round(float(diff.max()), 4)],
                **paired,
            }
            print(target.name, name, row["presets"][name]["ours_minus_hmm"], round(time.perf_counter() - t0),
                  file=sys.stderr, flush=True)
        if args.nested:
            inner: dict[str, float] = {}
            for name, config in configs.items():
                if name in reused.get(target.name, {}):
                    inner[name] = reused[target.name][name]
                    continue
                inner[name] = round(float(np.mean([
                    class_accuracy([h for h in others if h.name != held.name], held, replace(config, seed=0),
                                   **fit_options)
                    for held in others])), 4)
            chosen = max(configs, key=lambda n: inner[n])  # ties: the first listed
            row["nested"] = {"inner_mean": inner, "reused_from_file": sorted(set(reused.get(target.name, {}))
                                                                                & set(configs)),
                             "chosen": chosen}
            print(target.name, "nested", inner, chosen, file=sys.stderr, flush=True)
        rows[target.name] = row
    st = {"self_train_share_per_predicted_class": args.self_train_share} if args.self_train else {}
    result: dict[str, Any] = {
        "what": "leave-one-home-out pooled class accuracy per forest preset and seed, minus the rebuilt causal HMM "
                "trained on the same homes" + ("; preset chosen per test home by inner leave-one-home-out over "
                                               "the other homes (seed 0)" if args.nested else ""),
        "presets": {n: config_fields(c) for n, c in configs.items()},
        "seeds": args.seeds, "max_bytes": args.max_bytes or None, "unlabelled": args.unlabelled,
        "household_profile": args.household_profile,
        "self_train": args.self_train, **st,
        "homes": rows,
        "mean_class_accuracy": {n: round(float(np.mean([r["presets"][n]["class_accuracy_mean"]
                                                        for r in rows.values()])), 4) for n in configs},
        **({"mean_class_accuracy_self_trained": {
            n: round(float(np.mean([r["presets"][n]["self_trained"]["class_accuracy_mean"] for r in rows.values()])), 4)
            for n in configs}} if args.self_train else {}),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.inner_from is not None:
        result["inner_from"] = args.inner_from.name
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
