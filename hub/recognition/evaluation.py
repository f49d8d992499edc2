"""Cross-validation of scene recognition, as ``qilu-hub model eval --cv`` and the bench scripts run it.

* ``leave-one-day-out``: each day of one home predicted by a model trained on its other days;
* ``leave-one-home-out``: each home predicted by a model trained on the other homes only (day one in a
  home the model has never seen), beside that home's majority class and the rebuilt HMM trained the same way;
* ``days-of-labels``: the learning curve, a model trained on n labelled days of the target home (optionally
  with other homes' data) and tested on its remaining days, against the model trained on all other days.

Figures (``figures``): time-slice accuracy (share of slices right) and class accuracy (mean per-class recall,
van Kasteren 2008), each **pooled** over all slices and as the **mean of per-day** figures, per-class recall,
and 95 % bootstrap intervals that resample whole days.  Needs the ``train`` extra, like ``training``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from .baselines import fit_hmm, forward_filter, sensor_matrix
from .channel_hmm import ChannelHmm, fit_channel_hmm, forest_prior
from .datasets import Dataset
from .decision import ClassBias
from .decoder import stationary_distribution
from .features import DEFAULT_SPEC, DeviceEvent, FeatureSpec
from .training import (
    PRIOR_POWERS,
    Matrix,
    PriorChoice,
    TrainConfig,
    build_matrix,
    class_mass,
    fit,
    leave_one_day_out,
    metrics,
    prior_correction,
    prior_power_by_days,
    pyplot,
    save_png,
)

CV_CHOICES = ("leave-one-day-out", "leave-one-home-out", "days-of-labels")
# The scenes every benchmarked home can be scored on; a home's other scenes count as idle.
SHARED_SCENES = ("sleeping", "cooking", "bathing", "away", "idle", "relaxing", "eating")
IDLE = "idle"


@dataclass
class Home:
    """One home's slices (``DEFAULT_SPEC``-style features, scene labels) and the events behind them."""

    name: str
    matrix: Matrix
    events: list[DeviceEvent]
    spec: FeatureSpec = DEFAULT_SPEC

    @property
    def scenes(self) -> list[str]:
        return sorted(set(self.matrix.y.tolist()))

    @property
    def n_days(self) -> int:
        return len(np.unique(self.matrix.days))


def home_from_dataset(name: str, dataset: Dataset, spec: FeatureSpec = DEFAULT_SPEC,
                      keep: Sequence[str] | None = SHARED_SCENES) -> Home:
    """Build a home's matrix; with ``keep``, scenes outside it are counted as idle (a home that does not
    label "guests" calls that time idle too)."""
    matrix = build_matrix(dataset, spec)
    if keep is not None:
        allowed = set(keep)
        matrix.y = np.array([v if v in allowed else IDLE for v in matrix.y.tolist()])
    return Home(name, matrix, list(dataset.events), spec)


# --- figures -------------------------------------------------------------------------------------------


def figures(
    y: np.ndarray, pred: np.ndarray, days: np.ndarray, labels: Sequence[str] | None = None,
    n_boot: int = 1000, seed: int = 0,
) -> dict[str, Any]:
    """Pooled and per-day-mean time-slice and class accuracy, per-class recall, and 95 % intervals from
    ``n_boot`` bootstrap resamples of whole days (the unit that is independent, not the minute)."""
    y, pred = np.asarray(y).astype(str), np.asarray(pred).astype(str)
    labels = sorted(set(y.tolist())) if labels is None else list(labels)
    index = {c: i for i, c in enumerate(labels)}
    day_ids = list(dict.fromkeys(np.asarray(days).tolist()))
    K, D = len(labels), len(day_ids)
    count = np.zeros((D, K))
    right = np.zeros((D, K))
    for d, day in enumerate(day_ids):
        sel = days == day
        truth = np.array([index.get(v, -1) for v in y[sel]])
        hit = (y[sel] == pred[sel])
        known = truth >= 0
        np.add.at(count[d], truth[known], 1)
        np.add.at(right[d], truth[known], hit[known])

    def pooled(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Time-slice and class accuracy pooled over days weighted by ``w`` ([B, D])."""
        c, r = w @ count, w @ right
        ts = r.sum(axis=1) / np.maximum(c.sum(axis=1), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(c > 0, r / np.where(c > 0, c, 1), np.nan)
        return ts, np.nanmean(recall, axis=1)

    with np.errstate(invalid="ignore", divide="ignore"):
        day_ts = right.sum(axis=1) / np.maximum(count.sum(axis=1), 1)
        day_recall = np.where(count > 0, right / np.where(count > 0, count, 1), np.nan)
    day_cls = np.array([np.nanmean(r) if np.any(~np.isnan(r)) else np.nan for r in day_recall])
    ts, cls = pooled(np.ones((1, D)))
    rng = np.random.default_rng(seed)
    w = rng.multinomial(D, np.full(D, 1.0 / D), size=n_boot).astype(float) if D else np.zeros((0, 0))
    b_ts, b_cls = pooled(w) if D else (np.zeros(0), np.zeros(0))
    b_day_cls = (w @ np.nan_to_num(day_cls)) / np.maximum(w @ (~np.isnan(day_cls)), 1) if D else np.zeros(0)
    b_day_ts = (w @ day_ts) / D if D else np.zeros(0)

    def ci(samples: np.ndarray) -> list[float]:
        return [round(float(v), 4) for v in np.nanpercentile(samples, [2.5, 97.5])] if len(samples) else []

    total = count.sum(axis=0)
    return {
        "timeslice_accuracy": round(float(ts[0]), 4),
        "class_accuracy": round(float(cls[0]), 4),
        "timeslice_ci95": ci(b_ts),
        "class_ci95": ci(b_cls),
        "per_day_mean": {
            "timeslice_accuracy": round(float(np.mean(day_ts)), 4) if D else 0.0,
            "class_accuracy": round(float(np.nanmean(day_cls)), 4) if D else 0.0,
            "timeslice_ci95": ci(b_day_ts),
            "class_ci95": ci(b_day_cls),
        },
        "per_class_accuracy": {c: round(float(right[:, k].sum() / total[k]), 4)
                               for k, c in enumerate(labels) if total[k] > 0},
        "per_class_slices": {c: int(total[k]) for k, c in enumerate(labels) if total[k] > 0},
        "n_days": D,
        "n_slices": int(count.sum()),
    }


def day_resample_weights(n_days: int, n_boot: int, rng: np.random.Generator, block_days: int = 1) -> np.ndarray:
    """[n_boot, n_days] counts of each day in bootstrap resamples.  ``block_days`` 1: days drawn independently;
    more: a circular moving-block bootstrap, runs of ``block_days`` consecutive days (in the order given)
    drawn until ``n_days`` are drawn, which keeps the dependence between neighbouring days (a week's routine)
    that resampling single days breaks."""
    if block_days <= 1:
        return rng.multinomial(n_days, np.full(n_days, 1.0 / n_days), size=n_boot).astype(float)
    n_blocks = -(-n_days // block_days)
    starts = rng.integers(0, n_days, size=(n_boot, n_blocks))
    picked = (starts[:, :, None] + np.arange(block_days)).reshape(n_boot, -1)[:, :n_days] % n_days
    weights = np.zeros((n_boot, n_days))
    np.add.at(weights, (np.arange(n_boot)[:, None], picked), 1.0)
    return weights


def paired_difference(
    y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, days: np.ndarray, labels: Sequence[str],
    n_boot: int = 1000, seed: int = 0, block_days: int = 1,
) -> dict[str, list[float]]:
    """95 % bootstrap intervals of (a - b) in pooled time-slice and class accuracy, both models scored on
    the same resampled days: sharper than comparing two separate intervals, since a hard day is hard for
    both.  An interval wholly above 0 says a is better on these days.  ``block_days``: resample runs of that
    many consecutive days (``day_resample_weights``)."""
    y = np.asarray(y).astype(str)
    index = {c: i for i, c in enumerate(labels)}
    day_ids = list(dict.fromkeys(np.asarray(days).tolist()))
    K, D = len(labels), len(day_ids)
    count = np.zeros((D, K))
    right = {"a": np.zeros((D, K)), "b": np.zeros((D, K))}
    for d, day in enumerate(day_ids):
        sel = days == day
        truth = np.array([index.get(v, -1) for v in y[sel]])
        known = truth >= 0
        np.add.at(count[d], truth[known], 1)
        for key, pred in (("a", pred_a), ("b", pred_b)):
            np.add.at(right[key][d], truth[known], (np.asarray(pred).astype(str)[sel] == y[sel])[known])
    w = day_resample_weights(D, n_boot, np.random.default_rng(seed), block_days)
    c = w @ count

    def accuracies(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hits = w @ r
        ts = hits.sum(axis=1) / np.maximum(c.sum(axis=1), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(c > 0, hits / np.where(c > 0, c, 1), np.nan)
        return ts, np.nanmean(recall, axis=1)

    ts_a, cls_a = accuracies(right["a"])
    ts_b, cls_b = accuracies(right["b"])

    def ci(v: np.ndarray) -> list[float]:  # no resamples (n_boot 0): no interval, as ``figures`` gives
        return [round(float(x), 4) for x in np.nanpercentile(v, [2.5, 97.5])] if len(v) else []

    return {"timeslice_ci95": ci(ts_a - ts_b), "class_ci95": ci(cls_a - cls_b)}


def majority_baseline(y: np.ndarray) -> np.ndarray:
    """The home's own most frequent scene for every slice (an oracle's constant guess: the best any
    constant can do on time-slice accuracy)."""
    values, counts = np.unique(y, return_counts=True)
    return np.full(len(y), values[int(np.argmax(counts))])


# --- leave-one-day-out ------------------------------------------------------------------------------------


def lodo_predictions(matrix: Matrix, config: TrainConfig) -> np.ndarray:
    labels, proba = leave_one_day_out(matrix, config, progress=False)
    return np.asarray(labels)[proba.argmax(axis=1)]


# --- leave-one-home-out -----------------------------------------------------------------------------------


def _collapse(y: np.ndarray, keep: set[str]) -> np.ndarray:
    return np.array([v if v in keep else IDLE for v in y.tolist()])


def _home_weights(parts: Sequence[Matrix], scale: Sequence[float] | None = None) -> np.ndarray:
    """Each home weighs the same in training, whatever its number of days (times ``scale`` per part)."""
    factors = list(scale) if scale is not None else [1.0] * len(parts)
    per_row = [np.full(len(m.y), f / max(len(m.y), 1)) for m, f in zip(parts, factors, strict=True)]
    return np.concatenate(per_row) * sum(len(m.y) for m in parts) / sum(factors)


def train_on_homes(
    homes: Sequence[Home], config: TrainConfig, keep: set[str] | None = None, extra: Sequence[Matrix] = (),
    extra_weight: float = 1.0, balance_per_home: bool = False, open_unlabelled: bool = False,
) -> Any:
    """A forest trained on these homes (each weighted equally; each ``extra`` part ``extra_weight`` times a
    home), labels outside ``keep`` counted as idle; with ``balance_per_home`` the classes are balanced within
    each part rather than over all of them (``training.class_weights``); ``open_unlabelled``: see
    ``spread_unlabelled``."""
    rows = homes_training_set(homes, keep, extra, extra_weight, balance_per_home, open_unlabelled)
    return fit(rows.X, rows.y, config, sample_weight=rows.sample_weight, groups=rows.groups, share=rows.share)


def spread_unlabelled(y: np.ndarray, scenes: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One home's rows with its unlabelled time left open: a home that never labels a scene (van Kasteren A
    and B label no ``relaxing`` or ``eating``) calls the time its resident spent on it ``idle``, so its idle
    slices are no evidence against that scene.  Each idle slice becomes one row per label it may be, ``idle``
    and every scene in ``scenes`` the home never uses, sharing the slice equally.  Returns (row of ``y`` each
    new row comes from, its label, its share).  A home that labels every scene, or has no idle time, is
    returned as it is (shares of 1)."""
    y = np.asarray(y).astype(str)
    own = set(y.tolist())
    open_to = [IDLE, *sorted(set(scenes) - own - {IDLE})]
    if IDLE not in own or len(open_to) == 1:
        return np.arange(len(y)), y, np.ones(len(y))
    idle = y == IDLE
    rows = np.repeat(np.arange(len(y)), np.where(idle, len(open_to), 1))  # in time order, copies together
    copy = idle[rows]
    labels = y[rows].astype(object)  # a wider label than the home's own must not be cut to their width
    labels[copy] = np.tile(np.asarray(open_to, dtype=object), int(idle.sum()))
    return rows, labels.astype(str), np.where(copy, 1 / len(open_to), 1.0)


@dataclass
class TrainingSet:
    """The rows ``train_on_homes`` fits, with their weights and class-balance groups."""

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray
    groups: np.ndarray | None
    share: np.ndarray | None = None  # the part of a slice each row stands for (``spread_unlabelled``)

    def prior_correction(self, config: TrainConfig, power: float = 1.0) -> ClassBias:
        """``training.prior_correction`` of the class masses a forest trained with ``config`` learns."""
        return prior_correction(
            class_mass(self.y, config.balance, self.sample_weight, self.groups, self.share), power)


def homes_training_set(
    homes: Sequence[Home], keep: set[str] | None = None, extra: Sequence[Matrix] = (), extra_weight: float = 1.0,
    balance_per_home: bool = False, open_unlabelled: bool = False,
) -> TrainingSet:
    """The rows, weights and groups of ``train_on_homes`` (same arguments, less the forest)."""
    parts = [h.matrix for h in homes] + list(extra)
    X = np.vstack([m.X for m in parts])
    y = np.concatenate([m.y for m in parts])
    if keep is not None:
        y = _collapse(y, keep)
    scale = [1.0] * len(homes) + [extra_weight] * len(extra)
    weights = _home_weights(parts, scale)
    groups = np.concatenate([np.full(len(m.y), i) for i, m in enumerate(parts)]) if balance_per_home else None
    if not open_unlabelled:
        return TrainingSet(X, y, weights, groups)
    index, labels, share = spread_parts(y, [len(m.y) for m in parts])
    return TrainingSet(X[index], labels, weights[index] * share, groups[index] if groups is not None else None,
                       share)


def spread_parts(
    y: np.ndarray, sizes: Sequence[int], closed: Iterable[int] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``spread_unlabelled`` over consecutive parts of ``y`` (one per home, ``sizes`` rows each), against every
    label some part uses (what the forest will learn); the parts numbered in ``closed`` keep their rows as they
    are.  Returns (row of ``y`` each new row comes from, its label, its share)."""
    y = np.asarray(y).astype(str)
    scenes = set(y.tolist())
    kept = set(closed)
    starts = np.cumsum([0, *sizes]).tolist()
    rows, labels, shares = [], [], []
    for number, (start, end) in enumerate(pairwise(starts)):
        if number in kept:
            r, lab, sh = np.arange(end - start), y[start:end], np.ones(end - start)
        else:
            r, lab, sh = spread_unlabelled(y[start:end], scenes)
        rows.append(r + start)
        labels.append(lab)
        shares.append(sh)
    return np.concatenate(rows), np.concatenate(labels), np.concatenate(shares)


def channel_binary(home: Home, representation: str = "changepoint+last") -> np.ndarray:
    """The paper's binary representation over (area, capability) channels instead of sensor ids, so an HMM
    trained in other homes can read this one."""
    events = [replace(e, source=f"{e.area}.{e.capability}") for e in home.events]
    names = [f"{a}.{c}" for a, c in home.spec.channels]
    X, _ = sensor_matrix(events, home.matrix.times, home.spec.slice_seconds, representation, names)
    return X


def with_channel_hmm(
    forest: Any, rows: TrainingSet, config: TrainConfig, homes: Sequence[Home], keep: set[str] | None,
    weight: float, extra: Sequence[Matrix] = (), count_homes: bool = False, balanced: bool = False,
) -> ChannelHmm:
    """The channel HMM for ``forest`` (trained on ``rows`` with ``config``), learnt on the days the forest
    learnt from: ``homes``' and ``extra``'s (e.g. simulated days), each day counted the same; labels outside
    ``keep`` counted as idle.  Without ``extra``, at ``weight`` 0 it is the rebuilt HMM ``hmm_predictions``
    scores.  ``count_homes``: each home and each ``extra`` matrix counts the same in the HMM, however many
    days it holds, as the forest weighs them (``homes_training_set``); then simulating more days averages
    the simulator's draw instead of giving it more say.  ``balanced``: it decides for mean per-class recall
    (``ChannelHmm``)."""
    labels = [str(c) for c in forest.classes_]
    mass = class_mass(rows.y, config.balance, rows.sample_weight, rows.groups, rows.share)
    parts = [(h.name, h.matrix) for h in homes] + [(f"extra{i}", m) for i, m in enumerate(extra)]
    y = np.concatenate([m.y for _name, m in parts])
    days = np.concatenate([np.char.add(f"{name}:", m.days.astype(str)) for name, m in parts])
    counts = _home_weights([m for _name, m in parts]) if count_homes else None
    return fit_channel_hmm(np.vstack([m.X for _name, m in parts]), _collapse(y, keep) if keep is not None else y,
                           days, labels, homes[0].spec if homes else DEFAULT_SPEC, weight,
                           forest_prior(mass, labels), sample_weight=counts, balanced=balanced)


def hmm_predictions(train: Sequence[Home], test: Home, keep: set[str], balanced: bool = False,
                    ) -> dict[str, np.ndarray]:
    """The rebuilt HMM (``baselines.fit_hmm``) trained on ``train`` homes' channel features, decoded per day
    of ``test`` offline (Viterbi) and causally (forward filtering); with ``balanced`` also ``causal_balanced``:
    the causal posterior divided by the transitions' stationary distribution, the decision a ``balanced``
    channel HMM takes (so a comparison can tell the decision rule's share from the model's)."""
    X = np.vstack([channel_binary(h) for h in train])
    y = _collapse(np.concatenate([h.matrix.y for h in train]), keep)
    days = np.concatenate([np.char.add(f"{h.name}:", h.matrix.days.astype(str)) for h in train])
    labels = sorted(set(y.tolist()) | keep)
    model = fit_hmm(X, y, days, labels)
    Xt = channel_binary(test)
    kinds = ("offline", "causal", "causal_balanced") if balanced else ("offline", "causal")
    out = {k: np.empty(len(test.matrix.y), dtype=object) for k in kinds}
    names = np.asarray(labels)
    stationary = stationary_distribution(np.exp(model.log_trans)) if balanced else None
    for day in dict.fromkeys(test.matrix.days.tolist()):
        rows = np.flatnonzero(test.matrix.days == day)
        out["offline"][rows] = model.predict(Xt[rows], causal=False)
        # One forward pass gives both causal decisions (``ChainModel.predict(causal=True)`` is its argmax).
        posterior = forward_filter(model.scores(Xt[rows]), model.log_trans, model.log_init)
        out["causal"][rows] = names[posterior.argmax(axis=1)]
        if stationary is not None:
            out["causal_balanced"][rows] = names[(posterior / stationary).argmax(axis=1)]
    return {k: v.astype(str) for k, v in out.items()}


def leave_one_home_out(
    homes: Sequence[Home], config: TrainConfig, extra: Sequence[Matrix] = (), n_boot: int = 1000,
    hmm: bool = True, predictions: dict[str, np.ndarray] | None = None,
    train_pool: Sequence[str] | None = None, fixed: dict[str, Any] | None = None, open_unlabelled: bool = False,
    channel_hmm: float | None = None, all_scenes: bool = False, hmm_count_homes: bool = False,
    balanced: bool = False,
) -> dict[str, Any]:
    """For each home: ours (trained on the other homes, plus ``extra`` e.g. simulated days), the home's
    majority class and the rebuilt HMM trained on the same other homes; all scored on that home's scenes
    (scenes it does not label are idle in training too, since that home calls them idle; with ``all_scenes``
    the models learn every scene their training homes label, as a hub does before it knows the home's, and
    their decisions outside the home's scenes are scored as idle).

    ``train_pool``: only these homes may be trained on (e.g. those whose terms allow shipping a model);
    ``fixed``: finished models ({name: ``runtime.SceneModel``}) scored on every home as they are;
    ``channel_hmm``: ours is the forest joined with the channel HMM at this weight (``with_channel_hmm``;
    ``hmm_count_homes``: its ``count_homes``; ``balanced``: it decides for mean per-class recall, and the
    rebuilt HMM is also scored deciding so, as ``hmm_causal_balanced``)."""
    out: dict[str, Any] = {}
    for target in homes:
        others = [h for h in homes if h.name != target.name and (train_pool is None or h.name in train_pool)]
        home_scenes = set(target.scenes)
        keep = None if all_scenes else home_scenes
        m = target.matrix
        row: dict[str, Any] = {
            "trained_on": [h.name for h in others] + (["simulator"] if extra else []),
            "scenes": target.scenes,
            "ours": None,  # stays None when no other home may be trained on
            "majority_class": figures(m.y, majority_baseline(m.y), m.days, target.scenes, n_boot),
        }
        if others or extra:
            if channel_hmm is None:
                pred = train_on_homes(others, config, keep, extra, open_unlabelled=open_unlabelled).predict(m.X)
            else:
                rows = homes_training_set(others, keep, extra, open_unlabelled=open_unlabelled)
                forest = fit(rows.X, rows.y, config, sample_weight=rows.sample_weight, groups=rows.groups,
                             share=rows.share)
                joined = with_channel_hmm(forest, rows, config, others, keep, channel_hmm, extra,
                                          count_homes=hmm_count_homes, balanced=balanced)
                proba = joined.posterior(m.X, forest.predict_proba(m.X), m.days)
                pred = np.asarray(joined.labels)[proba.argmax(axis=1)]
            pred = _collapse(pred, home_scenes)
            if predictions is not None:
                predictions[target.name] = pred
            row["ours"] = figures(m.y, pred, m.days, target.scenes, n_boot)
        if hmm and others:
            hmm_keep = home_scenes | set(np.concatenate([h.matrix.y for h in others]).tolist()) if all_scenes \
                else home_scenes
            for decoding, hmm_out in hmm_predictions(others, target, hmm_keep, balanced).items():
                hmm_pred = _collapse(hmm_out, home_scenes)
                row[f"hmm_{decoding}"] = figures(m.y, hmm_pred, m.days, target.scenes, n_boot)
                if row["ours"] is not None:
                    row[f"ours_minus_hmm_{decoding}"] = paired_difference(
                        m.y, pred, hmm_pred, m.days, target.scenes, n_boot)
        for name, fixed_model in (fixed or {}).items():
            row[name] = figures(m.y, fixed_predictions(fixed_model, target), m.days, target.scenes, n_boot)
        out[target.name] = row
    return out


def fixed_predictions(model: Any, home: Home) -> np.ndarray:
    """A finished model's predictions on a home, its scenes outside the home's set counted as idle."""
    if model.spec.version != home.spec.version:
        raise ValueError(f"model feature spec {model.spec.version} differs from the home's {home.spec.version}")
    proba = model.decode(model.predict_proba(home.matrix.X), home.matrix.days)  # its decoder, if any, each day
    pred = np.asarray(model.labels)[proba.argmax(axis=1)]
    return _collapse(pred, set(home.scenes))


# --- days of labels (learning curve) ----------------------------------------------------------------------

# A household's labelled days weigh this many other homes per day when trained beside them: its own habits
# win over the other homes' once it has labelled them, more so as it labels more, while the scenes it has not
# labelled still come from the other homes (days-of-labels on six homes, docs/recognition.md "Adaptation").
PER_DAY_WEIGHT = 1.0


def household_weight(labelled_days: int, per_day: float = PER_DAY_WEIGHT) -> float:
    """How many homes a household's labelled days weigh beside other homes: ``per_day`` per labelled day
    (at least one home's worth once anything is labelled)."""
    return max(1.0, per_day * labelled_days) if labelled_days > 0 else 0.0


def household_prior_choice(
    others: Sequence[Home], keep: set[str] | None, labelled: Matrix, config: TrainConfig,
    per_day_weight: float | None = PER_DAY_WEIGHT, balance_per_home: bool = True,
    powers: Sequence[float] = PRIOR_POWERS, target_weight: float = 1.0,
) -> PriorChoice:
    """``training.prior_power_by_days`` for a household's ``labelled`` days trained beside ``others`` as
    ``homes_training_set`` joins them: each fold's forest trained on the other homes plus the household's other
    labelled days (weighing ``household_weight`` of their number, or ``target_weight`` homes when
    ``per_day_weight`` is None)."""
    def train(rest: Matrix) -> tuple[Any, dict[str, float]]:
        n_days = len(np.unique(rest.days))
        weight = target_weight if per_day_weight is None else household_weight(n_days, per_day_weight)
        rows = homes_training_set(others, keep, [rest], weight, balance_per_home)
        model = fit(rows.X, rows.y, config, sample_weight=rows.sample_weight, groups=rows.groups)
        return model, class_mass(rows.y, config.balance, rows.sample_weight, rows.groups)

    y = _collapse(labelled.y, keep) if keep is not None else np.asarray(labelled.y).astype(str)
    return prior_power_by_days(Matrix(labelled.X, y, labelled.days, labelled.times), train, powers)


def days_of_labels(
    target: Home, config: TrainConfig, counts: Sequence[int] = (1, 2, 3, 5, 7), repeats: int = 5,
    others: Sequence[Home] = (), reference: np.ndarray | dict[str, Any] | None = None, seed: int = 0,
    n_boot: int = 200,
    target_weight: float = 1.0, per_day_weight: float | None = None, balance_per_home: bool = False,
    prior_correction: float | str = 0.0,
) -> dict[str, Any]:
    """Class and time-slice accuracy after n labelled days of the target home (n in ``counts``; ``repeats``
    random draws of which days), tested on the home's remaining days; trained on those days alone or, with
    ``others``, on them plus the other homes (the target's days weighing ``target_weight`` homes, or with
    ``per_day_weight`` that many homes per labelled day: ``household_weight``; ``balance_per_home`` as for
    ``train_on_homes``; ``prior_correction``: decide with ``TrainingSet.prior_correction`` to that power, as
    ``model train --prior-correction`` embeds it; 0: not; ``"auto"``: the power ``household_prior_choice`` picks
    on each draw's labelled days, as ``model train --prior-correction auto`` does).  The reference is
    leave-one-day-out on the target (all other days); ``reference`` may pass its predictions, or its figures
    from an earlier run with the same ``config`` (leave-one-day-out is deterministic given the seed)."""
    m = target.matrix
    keep = set(target.scenes)
    day_ids = list(dict.fromkeys(m.days.tolist()))
    if isinstance(reference, dict):
        ref = reference
    else:
        ref_pred = lodo_predictions(m, config) if reference is None else reference
        ref = figures(m.y, ref_pred, m.days, target.scenes, n_boot)
    rng = np.random.default_rng(seed)
    curve = []
    for n in counts:
        if n >= len(day_ids):
            break
        runs = []
        powers: list[float] = []
        for _ in range(repeats if n > 0 else 1):
            chosen = set(rng.choice(day_ids, size=n, replace=False).tolist()) if n else set()
            train = np.isin(m.days, list(chosen))
            test = ~train
            part = Matrix(m.X[train], m.y[train], m.days[train], m.times[train])
            if others:
                weight = target_weight if per_day_weight is None else household_weight(n, per_day_weight)
                rows = homes_training_set(others, keep, [part] if n else [], weight, balance_per_home)
                model = fit(rows.X, rows.y, config, sample_weight=rows.sample_weight, groups=rows.groups)
                proba = model.predict_proba(m.X[test])
                power = prior_correction
                if power == "auto" and n:
                    power = household_prior_choice(others, keep, part, config, per_day_weight, balance_per_home,
                                                   target_weight=target_weight).power
                    powers.append(power)
                elif power == "auto":  # no labelled day to choose on: as model train, power 0
                    power = 0.0
                if power:
                    proba = rows.prior_correction(config, float(power)).apply(proba)
                pred = np.asarray(model.classes_).astype(str)[proba.argmax(axis=1)]
            else:
                pred = fit(part.X, part.y, config).predict(m.X[test])
            f = figures(m.y[test], pred, m.days[test], target.scenes, n_boot=0)
            runs.append((f["class_accuracy"], f["timeslice_accuracy"]))
        cls = np.array([r[0] for r in runs])
        ts = np.array([r[1] for r in runs])
        curve.append({
            "days": n,
            "class_accuracy": round(float(cls.mean()), 4),
            "class_accuracy_min_max": [round(float(cls.min()), 4), round(float(cls.max()), 4)],
            "timeslice_accuracy": round(float(ts.mean()), 4),
            "share_of_reference_class": round(float(cls.mean() / ref["class_accuracy"]), 3)
            if ref["class_accuracy"] else None,
            "repeats": len(runs),
            **({"prior_powers_chosen": powers} if powers else {}),
        })
    return {
        "home": target.name,
        "with_other_homes": [h.name for h in others],
        "target_weight": target_weight if others and per_day_weight is None else None,
        "per_day_weight": per_day_weight if others else None,
        "class_balance": ("per-home" if balance_per_home else "pooled") if others else None,
        "prior_correction": prior_correction if others else None,
        "reference_all_other_days": {k: ref[k] for k in ("timeslice_accuracy", "class_accuracy", "class_ci95")},
        "curve": curve,
    }


def learning_curve_png(curves: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Class accuracy against labelled days, one line per curve, with each reference and 90 % of it."""
    fig, ax = pyplot().subplots(figsize=(6.5, 4.2))
    for k, c in enumerate(curves):
        color = f"C{k % 10}"
        xs = [p["days"] for p in c["curve"]]
        ys = [p["class_accuracy"] for p in c["curve"]]
        lo = [p["class_accuracy_min_max"][0] for p in c["curve"]]
        hi = [p["class_accuracy_min_max"][1] for p in c["curve"]]
        label = c["home"] + (" (+ other homes)" if c.get("with_other_homes") else "")
        ax.plot(xs, ys, marker="o", color=color, label=label)
        ax.fill_between(xs, lo, hi, color=color, alpha=0.15)
        ref = c["reference_all_other_days"]["class_accuracy"]
        ax.axhline(ref, color=color, linestyle=":", linewidth=1)
        ax.axhline(0.9 * ref, color=color, linestyle="--", linewidth=0.8, alpha=0.6)
    ax.set_xlabel("labelled days in the target home")
    ax.set_ylabel("class accuracy (pooled)")
    ax.set_ylim(0, 1)
    ax.set_title(title or "learning curve (dotted: all other days; dashed: 90 % of it)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


def confusion_of(y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    return np.asarray(metrics(y, pred, labels)["confusion"])
