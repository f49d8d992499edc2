"""Training, ONNX export and evaluation.  Needs the optional ``train`` extra (scikit-learn, skl2onnx, onnx,
matplotlib, tqdm); the hub runtime never imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

from .channel_hmm import ChannelHmm
from .datasets import Dataset
from .decision import ClassBias
from .decoder import HmmFilter
from .features import DEFAULT_SPEC, FeatureSpec, day_key, extract_windows
from .lookahead import extract_lookahead, lookahead_names
from .metadata import ModelMetadata
from .tree_ensemble import rewrite_forests

TRAIN_EXTRA_HINT = "training needs the optional extra: pip install 'qilu-hub[train]'"


def _require_training_deps() -> None:
    try:
        import onnx  # noqa: F401
        import skl2onnx  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(f"{TRAIN_EXTRA_HINT} ({exc})") from exc


def _progress(items: Iterable[Any], desc: str, total: int | None = None, enabled: bool = True) -> Iterable[Any]:
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is part of the train extra
        return items
    return tqdm(items, desc=desc, total=total, leave=False)


@dataclass
class Matrix:
    """Features, labels and day groups for a dataset, one row per time slice."""

    X: np.ndarray
    y: np.ndarray
    days: np.ndarray
    times: np.ndarray


def build_matrix(
    dataset: Dataset,
    spec: FeatureSpec = DEFAULT_SPEC,
    label_map: Callable[[str], str] | None = None,
    progress: bool = False,
    lookahead: bool = False,
) -> Matrix:
    """``lookahead=True`` appends ``lookahead.extract_lookahead`` columns: offline evaluation only, a model
    trained on them cannot run live.  Slices no label covers are left out when the dataset says unlabelled
    time is unknown (household labels), so a night nobody labelled does not teach "idle"."""
    times = dataset.slices(spec)

    def bar(rows: Iterable[tuple[int, float]]) -> Iterable[tuple[int, float]]:
        return _progress(rows, f"features ({dataset.name})", len(times), progress)

    X = extract_windows(dataset.events, times, spec, UTC, wrap=bar)
    if lookahead:
        X = np.hstack([X, extract_lookahead(dataset.events, times, spec, UTC)])
    found = dataset.labels_at(times, spec)
    keep = np.array([lbl is not None for lbl in found], dtype=bool)
    labels = [str(lbl) for lbl in found if lbl is not None]
    if label_map is not None:
        labels = [label_map(lbl) for lbl in labels]
    times = times[keep]
    days = np.array([day_key(float(t) - spec.slice_seconds / 2) for t in times])
    return Matrix(X[keep], np.array(labels), days, times)


ESTIMATORS = ("forest", "hgb")


@dataclass(frozen=True)
class TrainConfig:
    # Sized so the default model stays well under 1 MB as ONNX.
    n_estimators: int = 24
    max_depth: int | None = 10  # None: grow until min_samples_leaf (hgb: also max_leaf_nodes) stops it
    min_samples_leaf: int = 5
    seed: int = 0
    n_jobs: int = 2
    # Class weights are (balanced weight) ** balance: 1 = fully balanced, 0 = none.
    balance: float = 1.0
    # "forest": scikit-learn's RandomForestClassifier (n_estimators trees).  "hgb": its
    # HistGradientBoostingClassifier (max_iter rounds of one tree per class, max_leaf_nodes leaves each), with
    # early stopping off and no row or feature subsampling, so it draws nothing at random (``fit``).
    estimator: str = "forest"
    max_iter: int = 100  # hgb only, as are the three below
    max_leaf_nodes: int | None = 31
    learning_rate: float = 0.1
    l2_regularization: float = 0.0

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; one of {', '.join(ESTIMATORS)}")

    def __repr__(self) -> str:
        """The fields the estimator reads: a forest's reads as before the "hgb" fields existed, so the provenance
        ``model train`` embeds in a forest's ONNX file (``repr(config)``) is unchanged."""
        boosting = ("estimator", "max_iter", "max_leaf_nodes", "learning_rate", "l2_regularization")
        skip = {"n_estimators"} if self.estimator == "hgb" else set(boosting)
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name not in skip)
        return f"TrainConfig({shown})"


# The forest configurations nested selection chooses between on a home's own data (bench/recognition.py);
# ``qilu-hub model train --forest NAME`` trains the one it picks.  More trees with larger leaves trade
# time-slice accuracy (long idle stretches) for class-average accuracy (short activities).
FOREST_CONFIGS: dict[str, TrainConfig] = {
    "default": TrainConfig(),
    "leaf20_48trees": TrainConfig(n_estimators=48, min_samples_leaf=20),
}


def class_weights(
    y: np.ndarray, balance: float = 1.0, groups: np.ndarray | None = None, share: np.ndarray | None = None,
) -> np.ndarray:
    """Per-row class weights, (balanced weight) ** ``balance``.  With ``groups`` (e.g. one id per home), classes
    are balanced within each group instead of over all rows: every home teaches each of its scenes with the
    same weight, so a household's few labelled minutes of a scene are not outvoted by another home that has
    hours of it (with ``balance`` 1 each group's weights still sum to its number of rows).  ``share``: the part
    of a slice each row stands for (``evaluation.spread_unlabelled`` splits a slice over several labels), so
    a class is counted in slices, not rows."""
    y = np.asarray(y)
    part = np.ones(len(y)) if share is None else np.asarray(share, dtype=float)
    weights = np.empty(len(y), dtype=float)
    for group in (np.unique(groups) if groups is not None else [None]):
        rows = np.flatnonzero(np.asarray(groups) == group) if groups is not None else np.arange(len(y))
        _classes, inverse = np.unique(y[rows], return_inverse=True)
        counts = np.bincount(inverse, weights=part[rows])
        weights[rows] = ((part[rows].sum() / (len(counts) * counts)) ** balance)[inverse]
    return weights


def fit(
    X: np.ndarray, y: np.ndarray, config: TrainConfig = TrainConfig(), sample_weight: np.ndarray | None = None,
    groups: np.ndarray | None = None, share: np.ndarray | None = None,
) -> Any:
    """A class-balanced random forest (or, with ``config.estimator`` "hgb", gradient-boosted trees): balanced
    weights keep rare scenes (a shower) from being drowned by long ones (sleep, away), which is what the
    class-average accuracy measures. ``sample_weight`` multiplies in (e.g. a household's own slices against
    simulated ones); with ``groups`` the classes are balanced within each group (``class_weights``);
    ``share`` (already in ``sample_weight``) makes the balance count slices rather than rows."""
    _require_training_deps()
    weights = class_weights(y, config.balance, groups, share)
    if sample_weight is not None:
        weights = weights * sample_weight
    if config.estimator == "hgb":
        return _fit_hgb(X, y, config, weights)
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        n_jobs=config.n_jobs,
        random_state=config.seed,
    )
    model.fit(X, y, sample_weight=weights)
    return model


def _fit_hgb(X: np.ndarray, y: np.ndarray, config: TrainConfig, weights: np.ndarray) -> Any:
    """Gradient-boosted trees on the same weighted rows as the forest, behind a step that drops the features
    constant in the training rows.  Nothing is drawn at random: early stopping is off (it would hold out a
    random validation share) and every round sees every row and feature.  ``random_state`` is still passed
    because scikit-learn bins the features on a random subsample of 200 000 rows when there are more; below
    that (every leave-one-home-out fold here) the seed changes nothing.  Why the first step: a constant
    feature can never be split on, so the trees are the same without it, but every round builds a histogram
    for every feature and two thirds of ours are constant across homes (per-channel columns of channels the
    training homes lack): it makes a fit on five homes about three times faster.  OpenMP threads are capped
    at ``n_jobs`` like the forest's workers.  The result is a ``Pipeline``: ``classes_``, ``predict_proba``
    and ``to_onnx`` work as for a forest (its splits route missing values, so ``rewrite_forests`` leaves it in
    skl2onnx's encoding); the boosting step is ``model[-1]``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    boosted = HistGradientBoostingClassifier(
        max_iter=config.max_iter,
        max_leaf_nodes=config.max_leaf_nodes,
        max_depth=config.max_depth,
        learning_rate=config.learning_rate,
        min_samples_leaf=config.min_samples_leaf,
        l2_regularization=config.l2_regularization,
        early_stopping=False,
        random_state=config.seed,
    )
    model = Pipeline([("varying", VarianceThreshold(0.0)), ("boosted", boosted)])
    with threadpool_limits(limits=config.n_jobs, user_api="openmp"):
        model.fit(X, y, boosted__sample_weight=weights)
    return model


def class_mass(
    y: np.ndarray, balance: float = 1.0, sample_weight: np.ndarray | None = None, groups: np.ndarray | None = None,
    share: np.ndarray | None = None,
) -> dict[str, float]:
    """Each class's total training weight as ``fit`` weighs the rows (class weights times ``sample_weight``):
    the prior the forest's leaves learn.  Balanced over one pool it is the same for every class; balanced
    within each home it is larger for a scene every home labels than for one only a few homes label."""
    weights = class_weights(y, balance, groups, share)
    if sample_weight is not None:
        weights = weights * np.asarray(sample_weight, dtype=float)
    y = np.asarray(y).astype(str)
    return {str(c): float(weights[y == c].sum()) for c in np.unique(y)}


def prior_correction(mass: dict[str, float], power: float = 1.0) -> ClassBias:
    """Decision offsets that divide the forest's probabilities by the training prior ``mass`` (``class_mass``)
    so every class weighs the same when deciding (Bayes' rule with equal priors): what class accuracy, the
    mean per-class recall, rewards; ``power`` < 1 divides by the prior to that power only (half-way, in log
    terms).  Labels sorted, as a forest's ``classes_``; a class with no weight keeps offset 0 (it is never
    trained on, so its probability stays 0)."""
    labels = sorted(mass)
    values = np.array([mass[c] for c in labels], dtype=float)
    positive = values > 0
    offsets = np.zeros(len(labels))
    if positive.any():
        share = values[positive] / values[positive].sum()
        # Relative to the mean log-share, so offsets stay small numbers; only their differences matter.
        offsets[positive] = np.clip(-power * (np.log(share) - np.log(share).mean()), -50, 50)
    return ClassBias(labels, offsets)


# The powers a household's prior correction is chosen among (``choose_prior_power``): none, half-way, full.
PRIOR_POWERS = (0.0, 0.5, 1.0)


@dataclass(frozen=True)
class HeldOutDays:
    """One fold of a household's labelled days: their true labels, a forest's probabilities for them (trained
    without them), the forest's ``classes_`` and the class masses it learnt (``class_mass``)."""

    y: np.ndarray
    proba: np.ndarray
    classes: Sequence[str]
    mass: dict[str, float]


@dataclass(frozen=True)
class PriorChoice:
    """The prior-correction power chosen on a household's held-out labelled days, with each candidate's pooled
    class accuracy there (empty when fewer than two days were labelled: nothing to hold out, power 0)."""

    power: float
    scores: dict[float, float]
    folds: int


def choose_prior_power(folds: Sequence[HeldOutDays], powers: Sequence[float] = PRIOR_POWERS) -> PriorChoice:
    """The power (of ``powers``) whose ``prior_correction`` gives the highest class accuracy (mean per-class
    recall, pooled over every fold's slices) on the held-out days; ties go to the power listed first, so the
    correction is only used where the household's own days show it helps.  Whether a scene only a few homes
    label is worth lifting depends on the household (house C's meals: yes; ARAS's: no, docs/recognition.md
    "Adaptation"), and only its labelled days can tell."""
    if not folds:
        return PriorChoice(0.0, {}, 0)
    truth = np.concatenate([np.asarray(f.y).astype(str) for f in folds])
    scenes = np.unique(truth)
    scores: dict[float, float] = {}
    for power in powers:
        decided = []
        for f in folds:
            proba = prior_correction(f.mass, power).apply(f.proba) if power else f.proba
            decided.append(np.asarray(f.classes).astype(str)[np.asarray(proba).argmax(axis=1)])
        pred = np.concatenate(decided)
        scores[float(power)] = float(np.mean([np.mean(pred[truth == c] == c) for c in scenes]))
    best = max(scores.values())
    return PriorChoice(next(p for p, v in scores.items() if v == best), scores, len(folds))


# At most this many folds of a household's labelled days when choosing its prior correction: each is one more
# forest to train (a household with a month of labels should not train thirty).
PRIOR_CHOICE_FOLDS = 5


def prior_power_by_days(
    labelled: Matrix, train: Callable[[Matrix], tuple[Any, dict[str, float]]],
    powers: Sequence[float] = PRIOR_POWERS, max_folds: int = PRIOR_CHOICE_FOLDS,
) -> PriorChoice:
    """``choose_prior_power`` on a household's ``labelled`` days: dealt into at most ``max_folds`` folds, each
    predicted by ``train(the other labelled days)``, which returns a fitted forest and the class masses it learnt
    (``class_mass``), trained as the real model will be (beside the same homes, simulated days and weights).
    Fewer than two labelled days: power 0, nothing held out."""
    day_ids = np.unique(labelled.days)
    if len(day_ids) < 2:
        return PriorChoice(0.0, {}, 0)
    folds = []
    for block in day_blocks(labelled.days, min(max_folds, len(day_ids))):
        held = np.isin(labelled.days.astype(str), block)
        model, mass = train(Matrix(labelled.X[~held], labelled.y[~held], labelled.days[~held],
                                   labelled.times[~held]))
        folds.append(HeldOutDays(labelled.y[held], model.predict_proba(labelled.X[held]),
                                 [str(c) for c in model.classes_], mass))
    return choose_prior_power(folds, powers)


MAX_MODEL_BYTES = 1_000_000  # every model the hub writes stays under 1 MB (a home with ~100 sensors included)


def fit_within_bytes(
    X: np.ndarray, y: np.ndarray, config: TrainConfig, size_of: Callable[[Any], int],
    max_bytes: int = MAX_MODEL_BYTES, sample_weight: np.ndarray | None = None, groups: np.ndarray | None = None,
    share: np.ndarray | None = None,
) -> tuple[Any, TrainConfig]:
    """``fit``, then, while ``size_of(model)`` (its ONNX bytes) is over ``max_bytes``, fit again shallower: a
    forest's size is its number of nodes, which depth bounds.  The next depth is the deepest whose nodes in
    the forest just grown, at the bytes per node just measured, fit (at least one level less each round).
    Returns the model and the configuration that fitted (its ``max_depth`` says how far the cap cut).
    Raises ``ValueError`` if even depth 1 does not fit.

    Gradient-boosted trees (``config.estimator`` "hgb") are cut in rounds instead: every round adds trees of
    at most ``max_leaf_nodes`` leaves, so the size grows with the rounds, and the next ``max_iter`` is the
    largest whose rounds, at the bytes per round just measured, fit (at least one fewer each time)."""
    while True:
        model = fit(X, y, config, sample_weight, groups, share)
        size = size_of(model)
        if size <= max_bytes:
            return model, config
        if config.estimator == "hgb":
            rounds = int(model[-1].n_iter_)
            fewer = min(rounds - 1, int(rounds * max_bytes / size))
            if fewer < 1:
                raise ValueError(f"no gradient-boosted model of this configuration fits in {max_bytes} bytes")
            config = replace(config, max_iter=fewer)
            continue
        grown = max(int(e.tree_.max_depth) for e in model.estimators_)
        depth = min(config.max_depth or grown, grown) - 1
        if depth < 1:
            raise ValueError(f"no forest of this configuration fits in {max_bytes} bytes")
        counts = np.sum([np.bincount(_node_depths(e.tree_), minlength=grown + 1) for e in model.estimators_], axis=0)
        within = np.cumsum(counts)  # nodes at depth <= d
        per_node = size / within[-1]
        while depth > 1 and within[depth] * per_node > max_bytes:
            depth -= 1
        config = replace(config, max_depth=depth)


def _node_depths(tree: Any) -> np.ndarray:
    """Depth of every node of a fitted scikit-learn tree (nodes are numbered parents first)."""
    depth = np.zeros(tree.node_count, dtype=np.int64)
    for node in range(tree.node_count):
        for child in (tree.children_left[node], tree.children_right[node]):
            if child >= 0:
                depth[child] = depth[node] + 1
    return depth


def day_sequences(y: np.ndarray, days: np.ndarray) -> list[list[str]]:
    """Label sequences, one per day, in time order (rows of a ``Matrix`` are in time order)."""
    return [[str(v) for v in y[days == day]] for day in np.unique(days)]


def fit_decoder(
    y: np.ndarray, days: np.ndarray, labels: Sequence[str], config: TrainConfig = TrainConfig()
) -> HmmFilter:
    """The HMM decoder for a classifier trained with ``config`` on these labels (fixed a priori:
    add-one transition counts, no tempering, floor 1e-3)."""
    return HmmFilter.fit(day_sequences(y, days), labels, balance=config.balance)


def decode_out_of_fold(
    matrix: Matrix, labels: Sequence[str], proba: np.ndarray, config: TrainConfig = TrainConfig()
) -> np.ndarray:
    """Filter each day's out-of-fold probabilities with a decoder learnt from the other days only."""
    out = np.zeros_like(proba)
    for day in np.unique(matrix.days):
        test = matrix.days == day
        decoder = fit_decoder(matrix.y[~test], matrix.days[~test], labels, config)
        out[test] = decoder.filter(proba[test])
    return out


def to_onnx(
    model: Any,
    spec: FeatureSpec,
    extra: dict[str, str] | None = None,
    decoder: HmmFilter | None = None,
    class_bias: ClassBias | None = None,
    lookahead: bool = False,
    channel_hmm: ChannelHmm | None = None,
) -> bytes:
    """Export with probabilities as a plain tensor and our metadata embedded in ``metadata_props``.

    ``lookahead``: the model was trained on ``build_matrix(..., lookahead=True)``, a day-review model.
    ``channel_hmm``: the forest joined with it (``channel_hmm.ChannelHmm.attach``), whose filter is the decoder.
    A model without ``feature_importances_`` (gradient-boosted trees) carries none, and the hub's
    ``SceneModel.drivers`` then names no drivers."""
    _require_training_deps()
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    width = spec.n_features + (len(lookahead_names(spec)) if lookahead else 0)
    onx = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, width]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
        custom_conversion_functions=_hgb_converter(),
    )
    onx.graph.name = "qilu_scene_model"  # skl2onnx names the graph with a random UUID: same model, same bytes
    compact_trees(onx)
    rewrite_forests(onx)  # the compact ai.onnx.ml 5 encoding: about 2.3 times smaller
    if channel_hmm is not None:
        if decoder is not None or class_bias is not None or lookahead:
            raise ValueError("a channel HMM brings its own decoder: no other decoder, class bias or look-ahead")
        if channel_hmm.labels != [str(c) for c in model.classes_]:
            raise ValueError(f"channel HMM labels {channel_hmm.labels} differ from the forest's")
        channel_hmm.attach(onx)
        decoder = channel_hmm.decoder()
        extra = {"channel_hmm": f"forest weight {channel_hmm.forest_weight:g}", **(extra or {})}
    importances = getattr(model, "feature_importances_", None)
    meta = ModelMetadata(
        labels=[str(c) for c in model.classes_],
        spec_version=spec.version,
        spec=spec.to_dict(),
        window_seconds=spec.slice_seconds,
        importances=[round(float(v), 6) for v in importances] if importances is not None else [],
        extra=extra or {},
        decoder=decoder.to_dict() if decoder is not None else {},
        class_bias=class_bias.to_dict() if class_bias is not None else {},
        lookahead=lookahead,
    )
    for key, value in meta.to_props().items():
        prop = onx.metadata_props.add()
        prop.key, prop.value = key, value
    onx.doc_string = "qilu-hub household scene " + ("day review" if lookahead else "recogniser")
    return bytes(onx.SerializeToString())


class _IntegerFlagsContainer:
    """skl2onnx's conversion container, passing every call through but one: its HistGradientBoosting converter
    (skl2onnx 1.20) hands the per-node ``nodes_missing_value_tracks_true`` flags over as Python bools, which
    protobuf 7 refuses in an integer attribute ("Expected an int, got a boolean"); they go in as 0/1, the
    values the operator defines."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, *args: Any, **attrs: Any) -> Any:
        flags = attrs.get("nodes_missing_value_tracks_true")
        if flags is not None:
            attrs["nodes_missing_value_tracks_true"] = [int(v) for v in flags]
        return self._container.add_node(*args, **attrs)


def _hgb_converter() -> dict[type, Callable[[Any, Any, Any], None]]:
    """``convert_sklearn``'s ``custom_conversion_functions`` for gradient-boosted trees: skl2onnx's own
    converter, writing through ``_IntegerFlagsContainer``."""
    from skl2onnx.operator_converters.random_forest import convert_sklearn_random_forest_classifier
    from sklearn.ensemble import HistGradientBoostingClassifier

    def convert(scope: Any, operator: Any, container: Any) -> None:
        convert_sklearn_random_forest_classifier(scope, operator, _IntegerFlagsContainer(container))

    return {HistGradientBoostingClassifier: convert}


def compact_trees(onx: Any) -> None:
    """Shrink every TreeEnsembleClassifier in ``onx`` in place without changing a single output: a forest
    leaf lists a probability for every class, most of them 0 (two thirds in the default model), and
    the summed probabilities are the same without them; ``nodes_hitrates`` (all 1) and
    ``nodes_missing_value_tracks_true`` (all 0) only restate the operator's defaults.  Halves the file, and
    onnxruntime's in-memory copy with it.  Two-class ensembles are left alone: the operator reads a single
    weight per leaf as the binary case."""
    from onnx import helper

    for node in onx.graph.node:
        if node.op_type != "TreeEnsembleClassifier":
            continue
        attrs = {a.name: a for a in node.attribute}
        labels = attrs.get("classlabels_strings") or attrs.get("classlabels_int64s")
        n_labels = len(labels.strings) + len(labels.ints) if labels is not None else 0
        keep_attrs = [a for a in node.attribute
                      if not (a.name == "nodes_hitrates" and all(v == 1.0 for v in a.floats))
                      and not (a.name == "nodes_missing_value_tracks_true" and not any(a.ints))]
        if n_labels > 2 and "class_weights" in attrs:
            weights = np.asarray(attrs["class_weights"].floats, dtype=np.float32)
            trees = np.asarray(attrs["class_treeids"].ints, dtype=np.int64)
            leaves = np.asarray(attrs["class_nodeids"].ints, dtype=np.int64)
            ids = np.asarray(attrs["class_ids"].ints, dtype=np.int64)
            keep = weights != 0
            # Every leaf keeps at least one entry, so it stays a leaf the operator knows.
            leaf_key = trees * (int(leaves.max(initial=0)) + 1) + leaves
            _, first = np.unique(leaf_key, return_index=True)
            keep[first[~np.isin(leaf_key[first], leaf_key[keep])]] = True
            replaced = {
                "class_weights": helper.make_attribute("class_weights", weights[keep].tolist()),
                "class_treeids": helper.make_attribute("class_treeids", trees[keep].tolist()),
                "class_nodeids": helper.make_attribute("class_nodeids", leaves[keep].tolist()),
                "class_ids": helper.make_attribute("class_ids", ids[keep].tolist()),
            }
            keep_attrs = [replaced.get(a.name, a) for a in keep_attrs]
        del node.attribute[:]
        node.attribute.extend(keep_attrs)


def metrics(
    y_true: Sequence[str] | np.ndarray, y_pred: Sequence[str] | np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """Time-slice accuracy and class-average accuracy (mean per-class recall), as in van Kasteren 2008."""
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    present = [c for c in labels if np.any(yt == c)]
    per_class = {c: float(np.mean(yp[yt == c] == c)) for c in present}
    cm = confusion(yt, yp, labels)
    return {
        "timeslice_accuracy": float(np.mean(yt == yp)) if len(yt) else 0.0,
        "class_accuracy": float(np.mean(list(per_class.values()))) if per_class else 0.0,
        "per_class_accuracy": per_class,
        "n_slices": len(yt),
        "labels": list(labels),
        "confusion": cm.tolist(),
    }


def confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        if t in index and p in index:
            cm[index[t], index[p]] += 1
    return cm


def pyplot() -> Any:
    """matplotlib's pyplot on the headless Agg backend (imported on first use: the hub itself never plots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (its folder made if need be) and free it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    pyplot().close(fig)
    return out


def confusion_png(cm: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix as a PNG (headless Agg backend)."""
    plt = pyplot()
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(labels), 0.8 + 0.6 * len(labels)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion (row-normalised)")
    fig.tight_layout()
    return save_png(fig, path)


def leave_one_day_out(
    matrix: Matrix, config: TrainConfig = TrainConfig(), progress: bool = True
) -> tuple[list[str], np.ndarray]:
    """Out-of-fold class probabilities: each day is predicted by a model trained on all other days.

    Returns (labels, probabilities) with columns in ``labels`` order; a class missing from a fold's
    training days gets probability 0 on that day.
    """
    labels = sorted(map(str, np.unique(matrix.y)))
    column = {c: i for i, c in enumerate(labels)}
    proba = np.zeros((len(matrix.y), len(labels)))
    unique_days = list(np.unique(matrix.days))
    for day in _progress(unique_days, "leave-one-day-out", len(unique_days), progress):
        test = matrix.days == day
        model = fit(matrix.X[~test], matrix.y[~test], config)
        cols = [column[str(c)] for c in model.classes_]
        proba[np.ix_(test, cols)] = model.predict_proba(matrix.X[test])
    return labels, proba


Objective = Callable[[float, float], float]  # (time-slice accuracy, class accuracy) -> score, higher is better


def margin_objective(timeslice_ref: float, class_ref: float) -> Objective:
    """Score = the smaller of the two margins over a reference (e.g. a published model): maximising it
    seeks an operating point that beats the reference on both measures, not one at the other's expense."""
    return lambda ts, ca: min(ts - timeslice_ref, ca - class_ref)


def _mean_objective(ts: float, ca: float) -> float:
    return (ts + ca) / 2


def _accuracies(y: np.ndarray, proba: np.ndarray, labels: Sequence[str], offsets: np.ndarray) -> tuple[float, float]:
    """Time-slice and class accuracy of argmax(log p + offsets), vectorised (called thousands of times)."""
    with np.errstate(divide="ignore"):
        pred = (np.log(proba) + offsets).argmax(axis=1)
    truth = np.searchsorted(np.asarray(labels), y) if len(y) else np.zeros(0, dtype=np.int64)
    hit = pred == truth
    present = np.unique(truth)
    per_class = [hit[truth == c].mean() for c in present]
    return float(hit.mean()), float(np.mean(per_class)) if per_class else 0.0


BIAS_GRID = tuple(np.round(np.arange(-2.0, 2.0001, 0.25), 2))


def fit_class_bias(
    proba: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    objective: Objective = _mean_objective,
    grid: Sequence[float] = BIAS_GRID,
    sweeps: int = 3,
) -> tuple[ClassBias, float]:
    """Per-class log-offsets maximising ``objective`` on held-out probabilities, by coordinate ascent
    from zero over ``grid`` (``labels`` sorted, as ``leave_one_day_out`` returns them).  Returns the
    bias and its score; zero offsets win ties, so without a gain nothing changes."""
    if list(labels) != sorted(labels):
        raise ValueError("labels must be sorted")
    offsets = np.zeros(len(labels))
    best = objective(*_accuracies(y, proba, labels, offsets))
    for _ in range(sweeps):
        improved = False
        for c in range(len(labels)):
            for g in grid:
                trial = offsets.copy()
                trial[c] = g
                score = objective(*_accuracies(y, proba, labels, trial))
                if score > best + 1e-12:
                    best, offsets, improved = score, trial, True
        if not improved:
            break
    return ClassBias(labels, offsets), best


def day_blocks(days: np.ndarray, n_blocks: int = 4) -> list[list[str]]:
    """Days dealt round-robin into ``n_blocks`` groups (every block spans the whole recording)."""
    ordered = [str(d) for d in np.unique(days)]
    return [ordered[i::n_blocks] for i in range(n_blocks)]


def out_of_fold(matrix: Matrix, config: TrainConfig, use: np.ndarray, folds: int) -> np.ndarray:
    """Probabilities for the rows in ``use``, each day predicted by a model trained on the other folds of
    ``use`` only (days dealt round-robin into ``folds``); rows outside ``use`` stay zero."""
    labels = sorted(map(str, np.unique(matrix.y)))
    column = {c: i for i, c in enumerate(labels)}
    proba = np.zeros((len(matrix.y), len(labels)))
    for held in day_blocks(matrix.days[use], folds):
        test = np.isin(matrix.days, held) & use
        train = use & ~test
        model = fit(matrix.X[train], matrix.y[train], config)
        cols = np.array([column[str(c)] for c in model.classes_], dtype=np.int64)
        proba[np.ix_(test, cols)] = model.predict_proba(matrix.X[test])
    return proba


@dataclass
class NestedResult:
    """Out-of-fold probabilities whose configuration was chosen without the day they predict."""

    labels: list[str]
    proba: np.ndarray
    chosen: dict[str, str]  # test day -> configuration name
    inner_scores: list[dict[str, float]]  # per block: configuration name -> inner selection score
    biases: list[list[float]] = field(default_factory=list)  # per block: the chosen class-bias offsets


def nested_leave_one_day_out(
    matrix: Matrix,
    configs: dict[str, TrainConfig],
    outer: dict[str, tuple[list[str], np.ndarray]] | None = None,
    n_blocks: int = 4,
    progress: bool = True,
    *,
    inner_folds: int = 3,
    class_bias: bool = False,
    objective: Objective | None = None,
) -> NestedResult:
    """Leave-one-day-out where the configuration (and, with ``class_bias``, the decision offsets) for
    each test day is chosen by cross-validation that never sees that day.

    Days are dealt into ``n_blocks`` blocks.  For a test day in block b, each configuration is scored by
    ``inner_folds``-fold cross-validation over the days of the *other* blocks only (``objective`` of the
    pooled inner predictions, default the mean of the two accuracies; with ``class_bias`` the offsets are
    fitted on those same inner predictions first).  The winner's leave-one-day-out prediction for the day
    (a model trained on all other days, as in the plain protocol) is the nested prediction.  ``outer``
    may pass already computed ``leave_one_day_out`` results per configuration name.
    """
    score_of = objective or _mean_objective
    labels = sorted(map(str, np.unique(matrix.y)))
    outer = dict(outer or {})
    for name, config in configs.items():
        if name not in outer:
            outer[name] = leave_one_day_out(matrix, config, progress)
        if outer[name][0] != labels:
            raise ValueError(f"outer result for {name!r} has labels {outer[name][0]}, expected {labels}")
    blocks = day_blocks(matrix.days, n_blocks)
    proba = np.zeros((len(matrix.y), len(labels)))
    chosen: dict[str, str] = {}
    inner_scores: list[dict[str, float]] = []
    biases: list[list[float]] = []
    for block in _progress(blocks, "nested selection", len(blocks), progress):
        scored = ~np.isin(matrix.days, block)
        scores: dict[str, float] = {}
        fitted: dict[str, ClassBias] = {}
        for name, config in configs.items():
            inner = out_of_fold(matrix, config, scored, inner_folds)[scored]
            if class_bias:
                fitted[name], scores[name] = fit_class_bias(inner, matrix.y[scored], labels, score_of)
            else:
                scores[name] = score_of(*_accuracies(matrix.y[scored], inner, labels, np.zeros(len(labels))))
            scores[name] = round(scores[name], 6)
        best = max(configs, key=lambda n: scores[n])  # ties: the first listed
        inner_scores.append(scores)
        bias = fitted.get(best)
        biases.append(bias.offsets.tolist() if bias is not None else [0.0] * len(labels))
        for day in block:
            sel = matrix.days == day
            proba[sel] = bias.apply(outer[best][1][sel]) if bias is not None else outer[best][1][sel]
            chosen[day] = best
    return NestedResult(labels, proba, chosen, inner_scores, biases)
