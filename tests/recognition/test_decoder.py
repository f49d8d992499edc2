"""The causal HMM decoder: exact forward filtering, learning, metadata round trip."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from qilu_hub.recognition.decoder import DecoderError, HmmFilter, stationary_distribution
from qilu_hub.recognition.metadata import ModelMetadata


def _tiny() -> HmmFilter:
    transition = np.array([[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.3, 0.3, 0.4]])
    initial = np.array([0.5, 0.3, 0.2])
    prior = np.array([0.6, 0.3, 0.1])
    return HmmFilter(["a", "b", "c"], transition, initial, prior, power=0.7, floor=0.01)


def test_forward_filter_equals_brute_force_enumeration() -> None:
    hmm = _tiny()
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=5)
    probs[2] = [0.0, 0.995, 0.005]  # a zero: the floor must apply
    filtered = hmm.filter(probs)
    lik = [hmm.likelihood(p) for p in probs]
    for t in range(len(probs)):
        # p(y_t | x_1..x_t) by summing the joint over every path y_1..y_t.
        marginal = np.zeros(3)
        for path in itertools.product(range(3), repeat=t + 1):
            w = hmm.initial[path[0]] / hmm.initial.sum() * lik[0][path[0]]
            for s in range(1, t + 1):
                w *= hmm.transition[path[s - 1], path[s]] * lik[s][path[s]]
            marginal[path[-1]] += w
        np.testing.assert_allclose(filtered[t], marginal / marginal.sum(), rtol=1e-10)


def test_filter_is_causal() -> None:
    hmm = _tiny()
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=8)
    changed = probs.copy()
    changed[5:] = rng.dirichlet(np.ones(3), size=3)
    np.testing.assert_allclose(hmm.filter(probs)[:5], hmm.filter(changed)[:5])


def test_preview_does_not_move_the_filter_and_steps_skip_windows() -> None:
    hmm = _tiny()
    p = np.array([0.2, 0.5, 0.3])
    hmm.update(p)
    committed = hmm.update(p, commit=False)
    assert np.allclose(hmm.update(p), committed)  # the preview did not advance the state
    hmm.reset()
    hmm.update(p)
    two_steps = hmm.update(p, steps=2)
    hmm.reset()
    alpha = hmm.update(p)
    expected = alpha @ hmm.transition @ hmm.transition * hmm.likelihood(p)
    np.testing.assert_allclose(two_steps, expected / expected.sum())


def test_fit_counts_transitions_within_days_only() -> None:
    hmm = HmmFilter.fit([["a", "a", "b"], ["b", "a"]], ["a", "b"], pseudo=0.0, balance=1.0)
    # a->a once, a->b once; b->a once (the day boundary b|b is not a transition).
    np.testing.assert_allclose(hmm.transition, [[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(hmm.train_prior, [0.5, 0.5])  # fully balanced classifier: uniform
    unbalanced = HmmFilter.fit([["a", "a", "a", "b"]], ["a", "b"], balance=0.0)
    assert unbalanced.train_prior[0] > unbalanced.train_prior[1]


def test_sticky_transitions_suppress_a_one_window_blip() -> None:
    hmm = HmmFilter.fit([["a"] * 200 + ["b"] * 200], ["a", "b"])
    probs = np.array([[0.9, 0.1]] * 10 + [[0.4, 0.6]] + [[0.9, 0.1]] * 5)
    assert np.argmax(probs[10]) == 1
    assert all(np.argmax(row) == 0 for row in hmm.filter(probs))


def test_dict_round_trip_and_metadata_props() -> None:
    hmm = _tiny()
    again = HmmFilter.from_dict(json.loads(json.dumps(hmm.to_dict())))
    probs = np.random.default_rng(2).dirichlet(np.ones(3), size=6)
    np.testing.assert_allclose(hmm.filter(probs), again.filter(probs), rtol=1e-6)
    meta = ModelMetadata(["a", "b", "c"], "v", {}, 60.0, decoder=hmm.to_dict())
    props = meta.to_props()
    assert "qilu.decoder" in props
    assert ModelMetadata.from_props(props).decoder == json.loads(json.dumps(hmm.to_dict()))
    assert "qilu.decoder" not in ModelMetadata(["a"], "v", {}, 60.0).to_props()


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "viterbi"},
        {"transition": [[0.5, 0.5], [0.5, 0.5]]},
        {"transition": [[0.9, 0.9, 0.9], [0.1, 0.7, 0.2], [0.3, 0.3, 0.4]]},
        {"train_prior": [0.0, 0.5, 0.5]},
        {"labels": None},
        {"decision_prior": [0.5, 0.5]},
        {"decision_prior": [0.0, 0.5, 0.5]},
        {"decision_prior": [float("nan"), 0.5, 0.5]},
    ],
)
def test_bad_parameters_are_refused(change: dict[str, object]) -> None:
    data = _tiny().to_dict() | change
    with pytest.raises(DecoderError):
        HmmFilter.from_dict(data)


def test_stationary_distribution_is_where_the_chain_settles() -> None:
    two = np.array([[0.9, 0.1], [0.5, 0.5]])  # balance: 0.1 * pi_a = 0.5 * pi_b
    np.testing.assert_allclose(stationary_distribution(two), [5 / 6, 1 / 6])
    transition = _tiny().transition
    pi = stationary_distribution(transition)
    np.testing.assert_allclose(pi @ transition, pi, atol=1e-12)
    np.testing.assert_allclose(pi, np.linalg.matrix_power(transition, 200)[0], atol=1e-9)


def test_a_decision_prior_divides_what_is_decided_but_not_what_is_carried() -> None:
    """The output is the filtered posterior divided by the prior; the filter goes on from the undivided one, so
    the next window's posterior is the plain filter's (and a preview moves nothing either)."""
    plain = _tiny()
    prior = np.array([0.7, 0.2, 0.1])
    balanced = HmmFilter(plain.labels, plain.transition, plain.initial, plain.train_prior, plain.power, plain.floor,
                         decision_prior=prior)
    probs = np.random.default_rng(3).dirichlet(np.ones(3), size=8)
    alpha = plain.filter(probs)
    expected = alpha / prior
    np.testing.assert_allclose(balanced.filter(probs), expected / expected.sum(axis=1, keepdims=True))
    assert (balanced.filter(probs).argmax(axis=1) != alpha.argmax(axis=1)).any()  # it changes decisions here
    balanced.reset()
    balanced.update(probs[0])
    balanced.update(probs[1], commit=False)
    again = balanced.update(probs[1])
    np.testing.assert_allclose(again, expected[1] / expected[1].sum())
    round_trip = HmmFilter.from_dict(json.loads(json.dumps(balanced.to_dict())))
    np.testing.assert_allclose(round_trip.filter(probs), balanced.filter(probs), rtol=1e-6)
    assert "decision_prior" not in plain.to_dict()  # a file without one reads as before
