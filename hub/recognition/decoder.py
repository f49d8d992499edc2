"""Causal hybrid HMM decoding of a classifier's per-window class probabilities.

The classifier's posterior p(y | x) is turned into a scaled likelihood p(y | x) / p_train(y) (the
hybrid generative/discriminative trick of speech recognition, used for activity recognition by
Ordóñez et al., Sensors 2013, doi:10.3390/s130505460) and filtered forward through a transition matrix
learnt from the training days' label sequences.  Only the forward pass is run, so a live hub can use it:
the posterior at window t depends on windows <= t only.  Imports only numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def stationary_distribution(transition: np.ndarray) -> np.ndarray:
    """The label distribution a row-stochastic ``transition`` matrix settles to: the class frequencies a
    posterior filtered far from the start of a sequence embeds."""
    matrix = np.asarray(transition, dtype=np.float64)
    n = len(matrix)
    # pi (A - I) = 0 with sum(pi) = 1, solved as one least-squares system; with add-one counts every entry of A is
    # positive, so the solution is unique and positive (the floor only guards rounding).
    system = np.vstack([matrix.T - np.eye(n), np.ones((1, n))])
    target = np.zeros(n + 1)
    target[-1] = 1.0
    pi = np.maximum(np.linalg.lstsq(system, target, rcond=None)[0], 1e-12)
    return np.asarray(pi / pi.sum())


class DecoderError(ValueError):
    """Decoder parameters in a model file are missing or inconsistent."""


class HmmFilter:
    """Forward filter: ``alpha_t ∝ (alpha_{t-1} @ A) * (p(y|x_t) / p_train(y)) ** power``.

    ``train_prior`` is the class prior the classifier effectively learnt (uniform for a fully
    class-balanced forest); dividing by it turns its posterior into a likelihood.  ``floor`` keeps one
    overconfident zero from ruling a class out for good.  ``power`` < 1 tempers evidence that is
    correlated across windows (our features overlap in time).

    ``decision_prior``: the posterior a window is decided on is the filtered one divided by this prior
    (renormalised); the filter itself carries on from the undivided posterior.  With the class frequencies
    the filter's posterior embeds (``stationary_distribution``), the most probable label of the divided
    posterior is the Bayes decision for mean per-class recall (a rare scene is not outvoted by a frequent one
    only for being rarer in the training homes) instead of for the share of windows right.  None: decide on
    the posterior itself.
    """

    __slots__ = ("_alpha", "decision_prior", "floor", "initial", "labels", "power", "train_prior", "transition")

    def __init__(
        self,
        labels: Sequence[str],
        transition: np.ndarray,
        initial: np.ndarray,
        train_prior: np.ndarray | None = None,
        power: float = 1.0,
        floor: float = 1e-3,
        decision_prior: np.ndarray | None = None,
    ) -> None:
        n = len(labels)
        self.labels = list(labels)
        self.transition = np.asarray(transition, dtype=np.float64)
        self.initial = np.asarray(initial, dtype=np.float64)
        prior = np.full(n, 1.0 / n) if train_prior is None else np.asarray(train_prior, dtype=np.float64)
        self.train_prior = prior
        self.power = float(power)
        self.floor = float(floor)
        if self.transition.shape != (n, n) or self.initial.shape != (n,) or prior.shape != (n,):
            raise DecoderError(f"decoder shapes do not match {n} labels")
        if not (np.all(self.transition >= 0) and np.allclose(self.transition.sum(axis=1), 1.0, atol=1e-6)):
            raise DecoderError("decoder transition rows must be probability distributions")
        if np.any(prior <= 0) or np.any(self.initial < 0) or self.initial.sum() <= 0:
            raise DecoderError("decoder priors must be positive")
        self.decision_prior = None if decision_prior is None else np.asarray(decision_prior, dtype=np.float64)
        if self.decision_prior is not None and (
            self.decision_prior.shape != (n,) or not np.all(np.isfinite(self.decision_prior))
            or np.any(self.decision_prior <= 0)
        ):
            raise DecoderError(f"the decision prior needs {n} positive finite values")
        self._alpha: np.ndarray | None = None

    # -- learning -----------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        sequences: Iterable[Sequence[str]],
        labels: Sequence[str],
        *,
        pseudo: float = 1.0,
        balance: float = 1.0,
        power: float = 1.0,
        floor: float = 1e-3,
    ) -> HmmFilter:
        """Transition counts from consecutive windows of each sequence (one per day), plus ``pseudo``.

        ``balance`` is the classifier's class-weight exponent (``TrainConfig.balance``): with weights
        ``n_y ** -balance`` its effective prior is ``∝ n_y ** (1 - balance)``.
        """
        index = {c: i for i, c in enumerate(labels)}
        n = len(labels)
        counts = np.full((n, n), float(pseudo))
        totals = np.zeros(n)
        for seq in sequences:
            ids = np.array([index[s] for s in seq if s in index], dtype=np.int64)
            if ids.size:
                np.add.at(totals, ids, 1.0)
            if ids.size > 1:
                np.add.at(counts, (ids[:-1], ids[1:]), 1.0)
        transition = counts / counts.sum(axis=1, keepdims=True)
        freq = (totals + 1.0) / (totals + 1.0).sum()
        prior = freq ** (1.0 - balance)
        return cls(labels, transition, np.full(n, 1.0 / n), prior / prior.sum(), power, floor)

    # -- running ------------------------------------------------------------------------
    def likelihood(self, probabilities: np.ndarray) -> np.ndarray:
        p = np.maximum(np.asarray(probabilities, dtype=np.float64), self.floor)
        return (p / self.train_prior) ** self.power

    def update(self, probabilities: np.ndarray, steps: int = 1, commit: bool = True) -> np.ndarray:
        """Posterior over labels after ``steps`` windows, the last of which produced ``probabilities`` (divided
        by ``decision_prior`` when the filter has one).

        ``commit=False`` previews (an inference between window boundaries) without moving the filter.
        """
        if self._alpha is None:
            predicted = self.initial / self.initial.sum()
        else:
            predicted = self._alpha
            for _ in range(max(1, min(int(steps), 1440))):  # a day of missed windows mixes fully anyway
                predicted = predicted @ self.transition
        alpha = predicted * self.likelihood(probabilities)
        total = alpha.sum()
        alpha = alpha / total if total > 0 and np.isfinite(total) else np.full(len(alpha), 1.0 / len(alpha))
        if commit:
            self._alpha = alpha
        if self.decision_prior is None:
            return alpha
        decided = alpha / self.decision_prior
        return decided / decided.sum()

    def filter(self, probabilities: np.ndarray) -> np.ndarray:
        """Posterior for each row of a [T, L] probability matrix (one window each), from a fresh start."""
        self.reset()
        return (
            np.vstack([self.update(row) for row in np.asarray(probabilities)])
            if len(probabilities)
            else (np.zeros((0, len(self.labels))))
        )

    def reset(self) -> None:
        self._alpha = None

    # -- metadata -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "hmm-forward",
            "labels": self.labels,
            "transition": [[round(float(v), 8) for v in row] for row in self.transition],
            "initial": [round(float(v), 8) for v in self.initial],
            "train_prior": [round(float(v), 8) for v in self.train_prior],
            "power": self.power,
            "floor": self.floor,
        } | ({} if self.decision_prior is None else
             {"decision_prior": [round(float(v), 8) for v in self.decision_prior]})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HmmFilter:
        if data.get("kind") != "hmm-forward":
            raise DecoderError(f"unknown decoder kind {data.get('kind')!r}")
        try:
            return cls(
                [str(x) for x in data["labels"]],
                np.asarray(data["transition"], dtype=np.float64),
                np.asarray(data["initial"], dtype=np.float64),
                np.asarray(data["train_prior"], dtype=np.float64),
                float(data.get("power", 1.0)),
                float(data.get("floor", 1e-3)),
                None if data.get("decision_prior") is None
                else np.asarray(data["decision_prior"], dtype=np.float64),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, DecoderError):
                raise
            raise DecoderError(f"decoder parameters are not valid: {exc}") from exc
