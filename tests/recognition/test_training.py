"""Training and export: the ONNX model carries its metadata and agrees with scikit-learn."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qilu_hub.recognition.datasets import Dataset
from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.runtime import SceneModel
from qilu_hub.recognition.training import (
    Matrix,
    TrainConfig,
    build_matrix,
    confusion_png,
    day_blocks,
    fit_class_bias,
    leave_one_day_out,
    margin_objective,
    metrics,
    nested_leave_one_day_out,
)


def test_onnx_matches_sklearn_and_carries_metadata(trained: tuple[Any, Path], sim_dataset: Dataset) -> None:
    model, path = trained
    scene = SceneModel.load(path, DEFAULT_SPEC)
    assert scene.labels == list(model.classes_)
    assert scene.metadata.spec_version == DEFAULT_SPEC.version
    assert scene.metadata.window_seconds == DEFAULT_SPEC.slice_seconds
    assert len(scene.metadata.importances) == DEFAULT_SPEC.n_features
    X = build_matrix(sim_dataset).X[::97]
    np.testing.assert_allclose(scene.predict_proba(X), model.predict_proba(X), atol=1e-4)


def test_model_learns_the_simulator(trained: tuple[Any, Path]) -> None:
    from qilu_hub.recognition.simulator import SimConfig, simulate

    unseen = build_matrix(simulate(SimConfig(days=3, homes=2, seed=99)))
    scene = SceneModel.load(trained[1], DEFAULT_SPEC)
    pred = np.asarray(scene.labels)[scene.predict_proba(unseen.X).argmax(axis=1)]
    result = metrics(unseen.y, pred, scene.labels)
    _values, counts = np.unique(unseen.y, return_counts=True)
    # Far above what a constant guess gets, on both measures (a small 8-tree model, so no tight bound).
    assert result["timeslice_accuracy"] > counts.max() / counts.sum() + 0.1
    assert result["class_accuracy"] > 3 / len(counts)


def test_metrics_and_png(tmp_path: Path) -> None:
    m = metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert m["timeslice_accuracy"] == 0.75
    assert m["class_accuracy"] == 0.75  # mean of 0.5 and 1.0
    assert m["confusion"] == [[1, 1], [0, 2]]
    png = confusion_png(np.asarray(m["confusion"]), ["a", "b"], tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _toy_matrix(days: int = 8, rows: int = 60, seed: int = 0) -> Matrix:
    """Two informative features (one needs a deep tree), three noise ones; one label per row."""
    rng = np.random.default_rng(seed)
    n = days * rows
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = np.where(X[:, 0] > 0, np.where(X[:, 1] > 0, "a", "b"), np.where(X[:, 1] > 0.5, "c", "a"))
    day_ids = np.repeat([f"2008-02-{d + 10}" for d in range(days)], rows)
    return Matrix(X, y, day_ids, np.arange(n, dtype=np.float64))


CONFIGS = {
    "stump": TrainConfig(n_estimators=4, max_depth=1, min_samples_leaf=1, n_jobs=1),
    "deep": TrainConfig(n_estimators=4, max_depth=6, min_samples_leaf=1, n_jobs=1),
}


def test_nested_picks_the_better_config_and_uses_its_outer_predictions() -> None:
    matrix = _toy_matrix()
    outer = {name: leave_one_day_out(matrix, cfg, progress=False) for name, cfg in CONFIGS.items()}
    result = nested_leave_one_day_out(matrix, CONFIGS, outer, n_blocks=4, progress=False)
    assert set(result.chosen) == set(np.unique(matrix.days))
    assert set(result.chosen.values()) == {"deep"}  # a stump cannot express the two-feature rule
    assert all(s["deep"] > s["stump"] for s in result.inner_scores)
    np.testing.assert_array_equal(result.proba, outer["deep"][1])


def test_nested_selection_never_sees_the_test_block() -> None:
    """Scrambling the labels of block 0 cannot change the inner scores that choose its configuration."""
    matrix = _toy_matrix()
    first = day_blocks(matrix.days, 4)[0]
    scrambled = Matrix(matrix.X, matrix.y.copy(), matrix.days, matrix.times)
    in_block = np.isin(matrix.days, first)
    scrambled.y[in_block] = np.random.default_rng(1).permutation(scrambled.y[in_block])
    a = nested_leave_one_day_out(matrix, CONFIGS, n_blocks=4, progress=False)
    b = nested_leave_one_day_out(scrambled, CONFIGS, n_blocks=4, progress=False)
    assert a.inner_scores[0] == b.inner_scores[0]
    assert a.inner_scores[1] != b.inner_scores[1]  # ...while the other blocks' selection does see them


def test_day_blocks_deal_days_round_robin() -> None:
    days = np.array(["d1", "d1", "d2", "d3", "d4", "d5"])
    assert day_blocks(days, 2) == [["d1", "d3", "d5"], ["d2", "d4"]]


def test_build_matrix_lookahead_appends_the_future_block(sim_dataset: Dataset) -> None:
    from qilu_hub.recognition.lookahead import extract_lookahead, lookahead_names

    plain = build_matrix(sim_dataset)
    both = build_matrix(sim_dataset, lookahead=True)
    assert both.X.shape == (len(plain.y), DEFAULT_SPEC.n_features + len(lookahead_names()))
    np.testing.assert_array_equal(both.X[:, : DEFAULT_SPEC.n_features], plain.X)
    future = extract_lookahead(sim_dataset.events, sim_dataset.slices(DEFAULT_SPEC))
    np.testing.assert_array_equal(both.X[:, DEFAULT_SPEC.n_features :], future)


def test_fit_class_bias_recovers_an_under_scored_class() -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    y = rng.choice(labels, size=600, p=[0.6, 0.2, 0.2])
    onehot = (y[:, None] == np.array(labels)).astype(float)
    proba = 0.5 * onehot + 0.5 * rng.dirichlet(np.ones(3), size=len(y))
    proba[:, 1] *= 0.3  # a classifier that systematically under-scores "b"
    proba /= proba.sum(axis=1, keepdims=True)
    before = metrics(y, np.asarray(labels)[proba.argmax(axis=1)], labels)
    bias, score = fit_class_bias(proba, y, labels)
    after = metrics(y, np.asarray(labels)[bias.apply(proba).argmax(axis=1)], labels)
    assert bias.offsets[1] > max(bias.offsets[0], bias.offsets[2])
    assert after["per_class_accuracy"]["b"] > before["per_class_accuracy"]["b"] + 0.2
    assert score == pytest.approx((after["timeslice_accuracy"] + after["class_accuracy"]) / 2)


def test_fit_class_bias_keeps_zero_without_a_gain_and_margin_objective() -> None:
    labels = ["a", "b"]
    y = np.array(["a", "b", "a", "b"])
    perfect = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    bias, score = fit_class_bias(perfect, y, labels)
    assert bias.offsets.tolist() == [0.0, 0.0] and score == 1.0
    assert margin_objective(0.9, 0.5)(0.95, 0.7) == pytest.approx(0.05)  # the smaller margin counts
    with pytest.raises(ValueError):
        fit_class_bias(perfect, y, ["b", "a"])


def test_nested_with_class_bias_applies_each_blocks_offsets() -> None:
    matrix = _toy_matrix()
    outer = {name: leave_one_day_out(matrix, cfg, progress=False) for name, cfg in CONFIGS.items()}
    result = nested_leave_one_day_out(matrix, CONFIGS, outer, n_blocks=4, progress=False,
                                      class_bias=True, objective=margin_objective(0.5, 0.5))
    assert len(result.biases) == 4
    for block, offsets in zip(day_blocks(matrix.days, 4), result.biases, strict=True):
        sel = np.isin(matrix.days, block)
        name = result.chosen[block[0]]
        expected = outer[name][1][sel] * np.exp(offsets)
        np.testing.assert_allclose(result.proba[sel], expected / expected.sum(axis=1, keepdims=True))


def test_fit_within_bytes_cuts_depth_until_a_many_sensor_model_fits() -> None:
    """A home with ~100 sensors and a per-device block: the forest is refitted shallower until its ONNX
    file is under the cap, and the capped model still loads and recognises."""
    from dataclasses import replace

    from qilu_hub.recognition.simulator import SimConfig, simulate
    from qilu_hub.recognition.training import fit_within_bytes, to_onnx

    home = simulate(SimConfig(days=2, homes=1, seed=3))
    # Seven sensors for each area and capability: ~100 sources in all, each with its own column.
    events = [replace(e, source=f"{e.area}.{e.capability}.{k}") for e in home.events for k in range(7)]
    many = replace(home, events=events)
    spec = DEFAULT_SPEC.with_sources(e.source for e in events)
    assert len(spec.sources) >= 100
    matrix = build_matrix(many, spec)
    config = TrainConfig(n_estimators=3, max_depth=None, min_samples_leaf=1, n_jobs=1)

    def size(m: Any) -> int:
        return len(to_onnx(m, spec))

    uncapped, _ = fit_within_bytes(matrix.X, matrix.y, config, size, max_bytes=10**9)
    stump = size(fit_within_bytes(matrix.X, matrix.y, replace(config, max_depth=1), size, 10**9)[0])
    cap = (size(uncapped) + stump) // 2
    capped, used = fit_within_bytes(matrix.X, matrix.y, config, size, max_bytes=cap)
    assert size(capped) <= cap
    assert used.max_depth is not None and used.max_depth < max(e.tree_.max_depth for e in uncapped.estimators_)
    assert float(np.mean(capped.predict(matrix.X) == matrix.y)) > 0.5
    with pytest.raises(ValueError, match="fits in 10 bytes"):
        fit_within_bytes(matrix.X, matrix.y, config, size, max_bytes=10)


def test_class_weights_balance_within_each_group() -> None:
    from qilu_hub.recognition.training import class_weights

    y = np.array(["a", "a", "b", "b", "b", "b", "b", "b", "b", "b"])
    groups = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])  # group 0: a x2, b x4; group 1: b x4
    pooled = class_weights(y, 1.0)
    assert np.allclose(pooled, [2.5, 2.5] + [10 / 16] * 8)  # b counted over both groups
    within = class_weights(y, 1.0, groups)
    assert np.allclose(within, [1.5, 1.5, 0.75, 0.75, 0.75, 0.75, 1, 1, 1, 1])  # group 0: 6 / (2 * count)
    assert np.isclose(within[:6].sum(), 6) and np.isclose(within[6:].sum(), 4)  # each group keeps its rows' worth
    assert np.allclose(class_weights(y, 0.0, groups), 1.0)


def test_prior_correction_decides_as_if_every_scene_weighed_the_same() -> None:
    """Balanced within each home, a scene only one home labels ("eating") carries less training weight than one
    every home labels ("sleeping"), and a forest's leaves learn that prior; dividing it out turns a window the
    forest finds 70:30 sleeping:eating into eating, since eating had a third of sleeping's prior."""
    from qilu_hub.recognition.training import class_mass, prior_correction

    y = np.array(["sleeping"] * 50 + ["eating"] * 50 + ["sleeping"] * 80)
    groups = np.array([0] * 100 + [1] * 80)  # home 0 labels both scenes, home 1 only sleeping
    weights = np.concatenate([np.full(100, 1 / 100), np.full(80, 1 / 80)])  # each home weighs the same
    mass = class_mass(y, 1.0, weights, groups)
    assert mass["sleeping"] == pytest.approx(3 * mass["eating"])  # half of home 0 plus all of home 1
    bias = prior_correction(mass)
    assert bias.labels == ["eating", "sleeping"]
    assert bias.offsets[0] - bias.offsets[1] == pytest.approx(np.log(3))
    ambiguous = np.array([[0.3, 0.7]])  # columns in label order: eating, sleeping
    assert bias.apply(ambiguous).argmax() == 0
    assert np.allclose(bias.apply(np.array([[0.25, 0.75]])), 0.5)  # the prior itself becomes uniform
    assert class_mass(y, 1.0)["eating"] == pytest.approx(class_mass(y, 1.0)["sleeping"])  # pooled: already equal
    assert prior_correction({"a": 1.0, "b": 0.0}).offsets[1] == 0  # never trained on: left alone


def test_the_households_held_out_days_choose_the_prior_correction() -> None:
    """A household whose meals the forest decides against (the other homes' prior) gets them back with the full
    correction, and its held-out days show it; one whose days are already right keeps the plain decision, and
    a tie keeps it too: the correction is used only where the household's own days show it helps."""
    from qilu_hub.recognition.training import HeldOutDays, choose_prior_power

    truth = np.array(["eating"] * 10 + ["sleeping"] * 10)
    mass = {"eating": 1.0, "sleeping": 3.0}  # eating had a third of sleeping's training weight
    decided_against = np.array([[0.3, 0.7]] * 10 + [[0.1, 0.9]] * 10)  # columns: eating, sleeping
    choice = choose_prior_power([HeldOutDays(truth, decided_against, ["eating", "sleeping"], mass)])
    # Plain and half-way (0.3 * sqrt 3 < 0.7) call every meal sleeping; full (0.9 against 0.7) gets them all.
    assert choice.power == 1.0 and choice.folds == 1
    assert choice.scores == {0.0: 0.5, 0.5: 0.5, 1.0: 1.0}
    already_right = np.array([[0.6, 0.4]] * 10 + [[0.3, 0.7]] * 10)  # the full correction would call nights meals
    worse = choose_prior_power([HeldOutDays(truth, already_right, ["eating", "sleeping"], mass)])
    assert worse.power == 0.0 and worse.scores[1.0] == 0.5
    even = {"eating": 1.0, "sleeping": 1.0}  # no scene weighed less: every power decides alike
    level = choose_prior_power([HeldOutDays(truth, already_right, ["eating", "sleeping"], even)])
    assert level.power == 0.0 and len(set(level.scores.values())) == 1
    # Pooled over folds: a fold without meals still counts its nights.
    nights = HeldOutDays(np.array(["sleeping"] * 30), np.array([[0.3, 0.7]] * 30), ["eating", "sleeping"], mass)
    pooled = choose_prior_power([HeldOutDays(truth, decided_against, ["eating", "sleeping"], mass), nights])
    assert pooled.folds == 2 and pooled.scores[1.0] == pytest.approx((1.0 + 10 / 40) / 2) and pooled.power == 1.0
    assert choose_prior_power([]).power == 0.0 and choose_prior_power([]).scores == {}


def test_prior_power_by_days_holds_out_each_labelled_day_once_in_at_most_five_folds() -> None:
    """Every labelled day is predicted exactly once, by a forest that never saw it; a month of labels costs five
    forests, not thirty; a single labelled day leaves nothing to hold out (power 0)."""
    from sklearn.dummy import DummyClassifier

    from qilu_hub.recognition.training import PRIOR_CHOICE_FOLDS, Matrix, prior_power_by_days

    days = np.repeat([f"2026-01-{d:02d}" for d in range(1, 8)], 4)
    y = np.tile(["sleeping", "eating", "sleeping", "cooking"], 7)
    labelled = Matrix(np.zeros((len(y), 2)), y, days, np.zeros(len(y)))
    seen: list[set[str]] = []

    def train(rest: Matrix) -> tuple[object, dict[str, float]]:
        seen.append(set(rest.days.tolist()))
        model = DummyClassifier(strategy="prior").fit(rest.X, rest.y)
        return model, {str(c): float(np.sum(rest.y == c)) for c in model.classes_}

    choice = prior_power_by_days(labelled, train)
    assert choice.folds == len(seen) == PRIOR_CHOICE_FOLDS
    held_out = [set(days.tolist()) - trained for trained in seen]
    assert sorted(d for fold in held_out for d in fold) == sorted(set(days.tolist()))  # each day once
    # Plain calls every slice sleeping; the full correction levels the prior and the first class, cooking, wins:
    # both score 1/3, and the tie keeps plain.
    assert choice.power == 0.0 and set(choice.scores) == {0.0, 0.5, 1.0}
    one_day = Matrix(labelled.X[:4], y[:4], days[:4], np.zeros(4))
    assert prior_power_by_days(one_day, train).folds == 0 and prior_power_by_days(one_day, train).power == 0.0


HGB = TrainConfig(estimator="hgb", max_iter=6, max_leaf_nodes=5, min_samples_leaf=5, l2_regularization=1.0,
                  max_depth=None, n_jobs=1)


@pytest.fixture(scope="module")
def sim_rows(sim_dataset: Dataset) -> Matrix:
    """Every 60th slice of the simulated homes: fewer rows than histogram bins, so scikit-learn bins each feature
    at its distinct values instead of computing one weighted percentile per bin edge (seconds per fit)."""
    m = build_matrix(sim_dataset)
    return Matrix(m.X[::60], m.y[::60], m.days[::60], m.times[::60])


def test_default_config_is_a_random_forest_and_an_unknown_estimator_is_refused(sim_rows: Matrix) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from qilu_hub.recognition.training import fit

    assert isinstance(fit(sim_rows.X, sim_rows.y, TrainConfig(n_estimators=2, n_jobs=1)), RandomForestClassifier)
    # A forest's provenance (``model train`` embeds repr(config)) reads as before the boosting fields existed.
    forest = "TrainConfig(n_estimators=24, max_depth=10, min_samples_leaf=5, seed=0, n_jobs=2, balance=1.0)"
    assert repr(TrainConfig()) == forest
    boosted = repr(TrainConfig(estimator="hgb"))
    assert "max_iter=100" in boosted and "n_estimators" not in boosted
    with pytest.raises(ValueError, match="unknown estimator 'boosted'"):
        TrainConfig(estimator="boosted")


def test_gradient_boosting_is_deterministic_and_weighs_rows_as_the_forest_does() -> None:
    """No seed moves it (nothing is drawn at random), and the class balance within groups reaches it."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from qilu_hub.recognition.training import class_weights, fit

    toy = _toy_matrix(rows=30)  # 240 rows: fewer than bins, so quick to bin (``sim_rows``)
    first = fit(toy.X, toy.y, HGB)
    assert isinstance(first[-1], HistGradientBoostingClassifier) and first[-1].n_iter_ == HGB.max_iter
    proba = first.predict_proba(toy.X)
    assert np.array_equal(proba, fit(toy.X, toy.y, HGB).predict_proba(toy.X))
    assert np.array_equal(proba, fit(toy.X, toy.y, replace(HGB, seed=7)).predict_proba(toy.X))
    assert float(np.mean(first.predict(toy.X) == toy.y)) > 0.8
    groups = (np.arange(len(toy.y)) * 2 // len(toy.y)).astype(int)  # first and second half
    balanced = fit(toy.X, toy.y, HGB, groups=groups).predict_proba(toy.X)
    given = fit(toy.X, toy.y, replace(HGB, balance=0.0),
                sample_weight=class_weights(toy.y, 1.0, groups)).predict_proba(toy.X)
    assert np.array_equal(balanced, given)
    assert not np.array_equal(balanced, fit(toy.X, toy.y, replace(HGB, balance=0.0)).predict_proba(toy.X))


def test_gradient_boosting_without_the_constant_features_is_the_same_model(sim_rows: Matrix) -> None:
    """The step that drops features constant in training only saves time: the boosted trees are those
    scikit-learn grows on every column, to the bit."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from qilu_hub.recognition.training import class_weights, fit

    model = fit(sim_rows.X, sim_rows.y, HGB)
    assert 0 < model[0].get_support().sum() < sim_rows.X.shape[1]  # the simulated homes leave columns constant
    every_column = HistGradientBoostingClassifier(
        max_iter=HGB.max_iter, max_leaf_nodes=HGB.max_leaf_nodes, learning_rate=HGB.learning_rate,
        min_samples_leaf=HGB.min_samples_leaf, l2_regularization=HGB.l2_regularization, early_stopping=False,
    )
    with threadpool_limits(limits=1, user_api="openmp"):  # as ``fit`` with n_jobs=1
        every_column.fit(sim_rows.X, sim_rows.y, sample_weight=class_weights(sim_rows.y))
    assert np.array_equal(model.predict_proba(sim_rows.X), every_column.predict_proba(sim_rows.X))


def test_gradient_boosting_exports_to_onnx_with_the_same_probabilities(sim_rows: Matrix, tmp_path: Path) -> None:
    """skl2onnx's converter (through the bool-flag fix) and ``compact_trees``: onnxruntime gives scikit-learn's
    probabilities; no importances are embedded, so the hub names no drivers rather than wrong ones."""
    from qilu_hub.recognition.training import fit, to_onnx

    model = fit(sim_rows.X, sim_rows.y, HGB)
    path = tmp_path / "hgb.onnx"
    path.write_bytes(to_onnx(model, DEFAULT_SPEC))
    scene = SceneModel.load(path, DEFAULT_SPEC)
    assert scene.labels == list(model.classes_)
    assert scene.metadata.importances == []
    assert scene.drivers(sim_rows.X[0]) == {}
    np.testing.assert_allclose(scene.predict_proba(sim_rows.X), model.predict_proba(sim_rows.X), atol=1e-5)


def test_fit_within_bytes_cuts_boosting_rounds_until_the_model_fits(sim_rows: Matrix) -> None:
    from qilu_hub.recognition.training import fit_within_bytes, to_onnx

    def size(m: Any) -> int:
        return len(to_onnx(m, DEFAULT_SPEC))

    uncapped, _ = fit_within_bytes(sim_rows.X, sim_rows.y, HGB, size, max_bytes=10**9)
    cap = size(uncapped) * 3 // 5  # every round adds about as many bytes: two or three rounds fewer fit
    capped, used = fit_within_bytes(sim_rows.X, sim_rows.y, HGB, size, max_bytes=cap)
    assert size(capped) <= cap
    assert 1 <= used.max_iter < HGB.max_iter and capped[-1].n_iter_ == used.max_iter
    with pytest.raises(ValueError, match="no gradient-boosted model of this configuration fits in 10 bytes"):
        fit_within_bytes(sim_rows.X, sim_rows.y, HGB, size, max_bytes=10)
