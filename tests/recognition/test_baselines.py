"""The paper's HMM and CRF, rebuilt: representations, decoding, and the causal/offline distinction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pycrfsuite
import pytest

from qilu_hub.recognition import baselines
from qilu_hub.recognition.baselines import fit_crf, fit_hmm, forward_filter, sensor_matrix, viterbi
from qilu_hub.recognition.features import DEFAULT_SPEC, DeviceEvent, day_key
from qilu_hub.recognition.simulator import SimConfig, simulate
from qilu_hub.recognition.training import metrics

TIMES = np.array([60.0, 120.0, 180.0, 240.0, 300.0])
EVENTS = [
    DeviceEvent(30, "kitchen", "contact", True, "a"),
    DeviceEvent(150, "kitchen", "contact", False, "a"),
    DeviceEvent(200, "hall", "door", True, "b"),
    DeviceEvent(210, "hall", "door", False, "b"),
]


def test_raw_is_one_while_firing() -> None:
    X, names = sensor_matrix(EVENTS, TIMES, 60, "raw")
    assert names == ["raw:a", "raw:b"]
    assert X[:, 0].tolist() == [1, 1, 1, 0, 0]
    assert X[:, 1].tolist() == [0, 0, 0, 1, 0]


def test_changepoint_marks_the_slices_where_a_sensor_changes() -> None:
    X, _ = sensor_matrix(EVENTS, TIMES, 60, "changepoint")
    assert X[:, 0].tolist() == [1, 0, 1, 0, 0]
    assert X[:, 1].tolist() == [0, 0, 0, 1, 0]


def test_last_carries_the_most_recent_sensor_forward() -> None:
    X, _ = sensor_matrix(EVENTS, TIMES, 60, "last")
    assert X.tolist() == [[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]]


def test_changepoint_plus_last_concatenates_both() -> None:
    X, names = sensor_matrix(EVENTS, TIMES, 60, "changepoint+last")
    assert X.shape == (5, 4)
    assert names == ["changepoint:a", "changepoint:b", "last:a", "last:b"]


def test_unknown_representation_is_refused() -> None:
    with pytest.raises(ValueError, match="representation"):
        sensor_matrix(EVENTS, TIMES, 60, "counts")


def _chain(rng: np.random.Generator, days: int, length: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two sticky states; feature 0 fires mostly in state "b", feature 1 mostly in "a", both noisily."""
    ys, xs, ds = [], [], []
    for d in range(days):
        state = 0
        for _ in range(length):
            if rng.random() < 0.05:
                state = 1 - state
            p = [0.1, 0.5] if state == 0 else [0.5, 0.1]
            xs.append([rng.random() < p[0], rng.random() < p[1]])
            ys.append("ab"[state])
            ds.append(f"d{d}")
    return np.array(xs, dtype=np.uint8), np.array(ys), np.array(ds)


def test_hmm_emission_scores_are_bernoulli_log_likelihoods() -> None:
    X, y, days = _chain(np.random.default_rng(0), 3)
    model = fit_hmm(X, y, days, ["a", "b"])
    p_on = np.array([[(X[y == c][:, f].sum() + 1) / ((y == c).sum() + 2) for c in "ab"] for f in range(2)])
    x = np.array([[1, 0]])
    expected = np.log(p_on[0]) + np.log(1 - p_on[1])
    assert np.allclose(model.scores(x)[0], expected)
    assert np.allclose(np.exp(model.log_trans).sum(axis=1), 1.0)


def test_sequence_decoding_beats_slice_by_slice_and_the_filter_sits_between() -> None:
    rng = np.random.default_rng(1)
    X, y, days = _chain(rng, 6)
    Xt, yt, _ = _chain(rng, 1, length=2000)
    model = fit_hmm(X, y, days, ["a", "b"])
    per_slice = np.mean(np.array(["a", "b"])[model.scores(Xt).argmax(axis=1)] == yt)
    causal = np.mean(model.predict(Xt, causal=True) == yt)
    offline = np.mean(model.predict(Xt, causal=False) == yt)
    assert per_slice < causal < offline


def test_the_causal_filter_never_looks_ahead() -> None:
    rng = np.random.default_rng(2)
    X, y, days = _chain(rng, 4)
    model = fit_hmm(X, y, days, ["a", "b"])
    Xt, _, _ = _chain(rng, 1, length=300)
    changed = Xt.copy()
    changed[150:] = 1 - changed[150:]
    assert (model.predict(Xt, causal=True)[:150] == model.predict(changed, causal=True)[:150]).all()
    # Viterbi does look ahead: the same change rewrites some earlier decisions.
    assert (model.predict(Xt, causal=False)[:150] != model.predict(changed, causal=False)[:150]).any()


def test_viterbi_and_filter_agree_without_transitions() -> None:
    scores = np.log(np.random.default_rng(3).dirichlet([1, 1, 1], size=50))
    flat = np.log(np.full((3, 3), 1 / 3))
    init = np.log(np.full(3, 1 / 3))
    assert (viterbi(scores, flat, init) == scores.argmax(axis=1)).all()
    assert (forward_filter(scores, flat, init).argmax(axis=1) == scores.argmax(axis=1)).all()


def test_crf_weights_decode_like_crfsuite_itself(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    X, y, days = _chain(rng, 4)
    model = fit_crf(X, y, days, ["a", "b"], max_iterations=100)
    Xt, yt, _ = _chain(rng, 1, length=500)
    ours = model.predict(Xt, causal=False)
    trainer = pycrfsuite.Trainer(verbose=False)
    for d in dict.fromkeys(days.tolist()):
        rows = days == d
        trainer.append([baselines._crf_items(x) for x in X[rows]], list(y[rows]))
    trainer.set_params({"c2": 1.0, "max_iterations": 100, "feature.possible_transitions": True})
    path = str(tmp_path / "crf.model")
    trainer.train(path)
    tagger = pycrfsuite.Tagger()
    tagger.open(path)
    assert tagger.tag([baselines._crf_items(x) for x in Xt]) == ours.tolist()
    assert np.mean(ours == yt) > 0.8


def test_leave_one_day_out_on_a_simulated_home_gives_both_decodings() -> None:
    sim_dataset = simulate(SimConfig(days=5, homes=1, seed=3))  # deterministic
    times = sim_dataset.slices(DEFAULT_SPEC)
    y = np.array(sim_dataset.labels_at(times, DEFAULT_SPEC))
    days = np.array([day_key(float(t) - 30) for t in times])
    X, _ = sensor_matrix(sim_dataset.events, times, DEFAULT_SPEC.slice_seconds, "changepoint+last")
    out = baselines.leave_one_day_out(X, y, days, "hmm")
    assert set(out) == {"offline", "causal"}
    for pred in out.values():
        assert len(pred) == len(y)
        # Far better than always answering the most common scene.
        majority = max(np.mean(y == c) for c in set(y.tolist()))
        assert metrics(y, pred, sorted(set(y.tolist())))["timeslice_accuracy"] > majority + 0.1


def test_hmm_counts_a_weighted_row_that_many_times() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((60, 5)) < 0.3
    y = rng.choice(["a", "b"], size=60)
    days = np.repeat(["d1", "d2"], 30)
    plain = fit_hmm(X, y, days, ["a", "b"])
    ones = fit_hmm(X, y, days, ["a", "b"], sample_weight=np.ones(60))
    np.testing.assert_array_equal(ones.state_weights, plain.state_weights)
    np.testing.assert_array_equal(ones.log_trans, plain.log_trans)
    # Row 0 (day 1's start) weighing 3: its emissions counted three times, as three copies would be.
    weight = np.ones(60)
    weight[0] = 3
    weighted = fit_hmm(X, y, days, ["a", "b"], sample_weight=weight)
    copies = fit_hmm(np.vstack([X[:1], X[:1], X]), np.r_[y[:1], y[:1], y], np.r_[["d0", "d00"], days], ["a", "b"])
    np.testing.assert_allclose(weighted.state_weights, copies.state_weights)
    assert not np.allclose(weighted.state_weights, plain.state_weights)
    # ... and its day's start too: two more starts in y[0]'s state.
    np.testing.assert_allclose(weighted.log_init, copies.log_init)
