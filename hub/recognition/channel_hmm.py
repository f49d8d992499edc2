"""The rebuilt HMM's evidence inside a scene model: a forest's posterior joined with an HMM over channel binaries.

A forest trained in other homes transfers badly to a home it has never seen where its clock, count and recency
features mean something else there; the van Kasteren HMM (``baselines.fit_hmm``) reads only which (area,
capability) channels changed state in a slice and which one changed last, and transfers better.  The hub's own
feature vector already holds those binaries (each channel's ``.changed`` and ``.last_fired`` columns are
``evaluation.channel_binary``'s changepoint + last-fired matrix: equal on simulated homes, tested, and on the six
real homes but for two changepoint cells in 2.2 million, on Ordóñez B, where a sensor reports "on" again while
on, which the hub does not count as a change), so the HMM needs no new feature code.

A model with a channel HMM decides per window with::

    log score(y) = log p_nb(x_t | y) + w * log(max(p_forest(y | x_t), floor) / prior(y))

(naive-Bayes emissions over the binaries, plus the forest's posterior as a scaled likelihood raised to the
weight ``w``, the hybrid trick of ``decoder``), filtered forward through the HMM's transitions.  With
``balanced`` the label is the filtered posterior's divided by the class frequencies the transitions settle to
(``decoder.stationary_distribution``): the decision for mean per-class recall rather than for the share of
windows right, so a scene the training homes spent little time in is not outvoted for that alone.  ``w = 0`` is
the HMM alone; the forest adds what it knows in proportion to ``w``.  In the ONNX file the scores are computed
by the graph (its ``probabilities`` output is their softmax) and the filtering is the model's decoder (an
``HmmFilter`` with a uniform prior), so the running hub needs nothing new.

``attach`` needs ``onnx`` (a training dependency); the rest only numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .baselines import fit_hmm, forward_filter
from .decoder import HmmFilter, stationary_distribution
from .features import FeatureSpec

__all__ = ["FOREST_FLOOR", "ChannelHmm", "channel_columns", "fit_channel_hmm", "forest_prior"]

FOREST_FLOOR = 1e-3  # as the decoder's floor: one overconfident zero of the forest never rules a scene out
# The decoder floors the graph's softmax: small enough to leave the HMM's own likelihood ratios as they are.
_SOFTMAX_FLOOR = 1e-30


def channel_columns(spec: FeatureSpec) -> list[int]:
    """Indices of the channel changepoint (``.changed``) then last-fired (``.last_fired``) columns."""
    names = spec.feature_names[: len(spec.channels) * (4 + len(spec.count_windows))]  # the channel block
    changed = [i for i, n in enumerate(names) if n.endswith(".changed")]
    last = [i for i, n in enumerate(names) if n.endswith(".last_fired")]
    return changed + last



def forest_prior(mass: Mapping[str, float], labels: Sequence[str]) -> np.ndarray:
    """The class prior a forest learnt, from its per-class training weight (``training.class_mass``), in the
    order of ``labels``; a label it never saw gets a negligible share rather than zero (its scaled likelihood
    divides by the prior)."""
    prior = np.array([max(float(mass.get(c, 0.0)), 1e-12) for c in labels])
    return prior / prior.sum()


@dataclass(frozen=True)
class ChannelHmm:
    """Naive-Bayes emissions over channel binaries, HMM transitions, and the forest's weight and prior."""

    labels: list[str]
    columns: list[int]
    emission: np.ndarray  # [columns + 1, labels]: log p(x | y) = [x, 1] @ emission
    log_transition: np.ndarray  # [labels, labels], from -> to
    log_initial: np.ndarray  # [labels]
    forest_weight: float
    forest_prior: np.ndarray  # [labels]: the class prior the forest learnt (its scaled likelihood divides it out)
    balanced: bool = False  # decide on the filtered posterior divided by the transitions' stationary distribution

    def decision_prior(self) -> np.ndarray | None:
        """What the filtered posterior is divided by before deciding (None: nothing)."""
        return stationary_distribution(np.exp(self.log_transition)) if self.balanced else None

    def scores(self, X: np.ndarray, forest_proba: np.ndarray) -> np.ndarray:
        """Per-window log scores ``[rows, labels]`` of feature rows ``X`` and the forest's probabilities."""
        binary = (np.asarray(X)[:, self.columns] > 0.5).astype(np.float64)
        nb = np.hstack([binary, np.ones((len(binary), 1))]) @ self.emission
        if self.forest_weight == 0:
            return nb
        scaled = np.log(np.maximum(np.asarray(forest_proba, dtype=np.float64), FOREST_FLOOR) / self.forest_prior)
        return nb + self.forest_weight * scaled

    def posterior(self, X: np.ndarray, forest_proba: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Causal posteriors ``[rows, labels]``, filtered forward within each day (rows in time order), divided
        by ``decision_prior`` when the model decides balanced (as its ``decoder`` returns them)."""
        scores = self.scores(X, forest_proba)
        out = np.zeros_like(scores)
        for day in dict.fromkeys(np.asarray(days).tolist()):
            rows = np.flatnonzero(np.asarray(days) == day)
            out[rows] = forward_filter(scores[rows], self.log_transition, self.log_initial)
        prior = self.decision_prior()
        if prior is not None:
            out = out / prior
            out /= out.sum(axis=1, keepdims=True)
        return out

    def decoder(self) -> HmmFilter:
        """The forward filter the running hub applies to the graph's softmax of ``scores``."""
        n = len(self.labels)
        return HmmFilter(self.labels, np.exp(self.log_transition), np.exp(self.log_initial), np.full(n, 1.0 / n),
                         power=1.0, floor=_SOFTMAX_FLOOR, decision_prior=self.decision_prior())

    def attach(self, onx: Any) -> None:
        """Rewrite ``onx`` (an ``onnx.ModelProto`` whose ``probabilities`` output is the forest's, over
        ``labels``, reading one ``features`` input) in place so that ``probabilities`` is the softmax of
        ``scores``; the forest's own output becomes an inner value."""
        from onnx import TensorProto, helper, numpy_helper

        graph = onx.graph
        source = graph.input[0].name
        forest = "forest_probabilities"
        producers = [n for n in graph.node if "probabilities" in n.output]
        if len(producers) != 1:
            raise ValueError("the model has no single node producing 'probabilities'")
        outputs = list(producers[0].output)
        outputs[outputs.index("probabilities")] = forest
        del producers[0].output[:]
        producers[0].output.extend(outputs)
        consts = {
            "hmm_columns": np.asarray(self.columns, dtype=np.int64),
            "hmm_half": np.asarray(0.5, dtype=np.float32),
            "hmm_emission": self.emission[:-1].astype(np.float32),
            "hmm_bias": self.emission[-1].astype(np.float32),
            "hmm_forest_floor": np.asarray(FOREST_FLOOR, dtype=np.float32),
            "hmm_forest_weight": np.asarray(self.forest_weight, dtype=np.float32),
            "hmm_forest_log_prior": (self.forest_weight * np.log(self.forest_prior)).astype(np.float32),
        }
        graph.initializer.extend(numpy_helper.from_array(v, name=k) for k, v in consts.items())
        graph.node.extend([
            helper.make_node("Gather", [source, "hmm_columns"], ["hmm_x"], axis=1),
            helper.make_node("Greater", ["hmm_x", "hmm_half"], ["hmm_on"]),
            helper.make_node("Cast", ["hmm_on"], ["hmm_binary"], to=TensorProto.FLOAT),
            helper.make_node("MatMul", ["hmm_binary", "hmm_emission"], ["hmm_nb0"]),
            helper.make_node("Add", ["hmm_nb0", "hmm_bias"], ["hmm_nb"]),
            helper.make_node("Max", [forest, "hmm_forest_floor"], ["hmm_forest_p"]),
            helper.make_node("Log", ["hmm_forest_p"], ["hmm_forest_log"]),
            helper.make_node("Mul", ["hmm_forest_log", "hmm_forest_weight"], ["hmm_forest_w"]),
            helper.make_node("Sub", ["hmm_forest_w", "hmm_forest_log_prior"], ["hmm_forest_scaled"]),
            helper.make_node("Add", ["hmm_nb", "hmm_forest_scaled"], ["hmm_scores"]),
            helper.make_node("Softmax", ["hmm_scores"], ["probabilities"], axis=1),
        ])


def fit_channel_hmm(
    X: np.ndarray, y: np.ndarray, days: np.ndarray, labels: Sequence[str], spec: FeatureSpec,
    forest_weight: float, forest_prior: np.ndarray, sample_weight: np.ndarray | None = None,
    balanced: bool = False,
) -> ChannelHmm:
    """The HMM of ``baselines.fit_hmm`` (add-one counts, as the paper) over ``spec``'s channel binaries of the
    rows ``X`` labelled ``y`` (each day in ``days`` one sequence), over ``labels``, joined with a forest's
    posterior at ``forest_weight``; ``forest_prior`` is the class prior the forest learnt (``class_mass``).

    Give it every day the forest learnt from, simulated days included, each day counted the same: the HMM
    then knows every scene the forest knows from the same evidence.  (Learnt on real days only, with the
    scenes only simulated days label taught by those days alone, the HMM compared emissions learnt in
    different homes: on simulated days it called ``eating`` ``guests``; and it transferred worse to unseen
    real homes: docs/recognition.md, "The forest joined with the HMM".)  ``sample_weight``: each row counted
    in proportion to it (``baselines.fit_hmm``), scaled to add up to the number of rows so the add-one
    smoothing stays as strong as unweighted (e.g. the forest's per-home weights, whatever their total);
    unweighted, every day counts the same.  ``balanced``: decide for mean per-class recall (``ChannelHmm``)."""
    if forest_weight < 0 or not np.isfinite(forest_weight):
        raise ValueError(f"the forest's weight must be a finite number >= 0, not {forest_weight}")
    prior = np.asarray(forest_prior, dtype=np.float64)
    if prior.shape != (len(labels),) or np.any(prior <= 0):
        raise ValueError("the forest's prior needs one positive value per label")
    columns = channel_columns(spec)
    counts = None
    if sample_weight is not None:
        counts = np.asarray(sample_weight, dtype=float) * len(y) / float(np.sum(sample_weight))
    hmm = fit_hmm(np.asarray(X)[:, columns] > 0.5, np.asarray(y).astype(str), np.asarray(days), list(labels),
                  sample_weight=counts)
    return ChannelHmm(list(labels), columns, hmm.state_weights, hmm.log_trans, hmm.log_init, float(forest_weight),
                      prior / prior.sum(), balanced)
