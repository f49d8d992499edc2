"""Per-class decision offsets: what they do to probabilities, and how bad parameters are refused."""

from __future__ import annotations

import numpy as np
import pytest

from qilu_hub.recognition.decision import ClassBias, ClassBiasError

LABELS = ["a", "b", "c"]


def test_apply_reweights_and_renormalises() -> None:
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    bias = ClassBias(LABELS, [0.0, np.log(2.0), 0.0])
    out = bias.apply(p)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out[0], np.array([0.5, 0.6, 0.2]) / 1.3)  # b doubled, then renormalised
    assert out[0].argmax() == 1 and p[0].argmax() == 0  # the decision flips where it should
    np.testing.assert_allclose(bias.apply(p[1]), out[1])  # one row works too
    np.testing.assert_allclose(ClassBias(LABELS, [0, 0, 0]).apply(p), p)


def test_all_zero_row_stays_a_distribution() -> None:
    out = ClassBias(LABELS, [1.0, 0.0, -1.0]).apply(np.zeros((1, 3)))
    np.testing.assert_allclose(out, [[1 / 3, 1 / 3, 1 / 3]])


def test_round_trip() -> None:
    bias = ClassBias(LABELS, [0.25, -0.5, 1.0])
    again = ClassBias.from_dict(bias.to_dict())
    assert again.labels == LABELS
    np.testing.assert_allclose(again.offsets, bias.offsets)


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "other", "labels": LABELS, "offsets": [0, 0, 0]},
        {"kind": "class-bias", "labels": LABELS, "offsets": [0, 0]},
        {"kind": "class-bias", "labels": LABELS, "offsets": [0, "x", 0]},
        {"kind": "class-bias", "labels": LABELS, "offsets": [0, float("nan"), 0]},
        {"kind": "class-bias", "labels": LABELS, "offsets": [0, 1e9, 0]},
        {"kind": "class-bias", "offsets": [0, 0, 0]},
    ],
)
def test_bad_parameters_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ClassBiasError):
        ClassBias.from_dict(data)
