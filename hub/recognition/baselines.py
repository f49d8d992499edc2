"""The dataset paper's own models, rebuilt, so that our figures are compared on the same slices; the HMM also
lives inside models trained with ``--channel-hmm`` (``channel_hmm``).

van Kasteren et al. (Ubicomp 2008) compare a hidden Markov model and a linear-chain conditional random
field over per-sensor binary vectors in 60 s slices, in three representations (the dataset's README names
its converters ``convert2RawFeatMat``, ``convert2ChangeFeatMat``, ``convert2LastFiredFeatMat``):

* ``raw``: 1 while the sensor is firing during the slice;
* ``changepoint``: 1 when the sensor changes state (starts or stops firing) within the slice;
* ``last``: 1 for the sensor that changed state most recently, until another one does;
* ``changepoint+last``: both vectors side by side.

Both models decode a whole test day at once (Viterbi) in the paper. Here each also runs *causally*
(forward filtering: the slice's label from the slices up to it only), which is what a live hub can do,
so our causal recogniser can be compared with theirs under the same constraint.

Only numpy is needed for the HMM; the CRF uses python-crfsuite (the ``bench`` extra).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .features import DeviceEvent

REPRESENTATIONS = ("raw", "changepoint", "last", "changepoint+last")


def sensor_matrix(
    events: Sequence[DeviceEvent], times: np.ndarray, slice_seconds: float, representation: str,
    sensors: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Binary ``[slices, features]`` matrix for slices ending at ``times`` (each covers ``(t - slice, t]``).

    ``events`` are on/off changes with ``source`` naming the sensor; returns the matrix and its column names.
    """
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {representation!r}; expected one of {REPRESENTATIONS}")
    names = sorted({e.source for e in events}) if sensors is None else list(sensors)
    if representation == "changepoint+last":
        change, cn = sensor_matrix(events, times, slice_seconds, "changepoint", names)
        last, ln = sensor_matrix(events, times, slice_seconds, "last", names)
        return np.hstack([change, last]), cn + ln
    column = {name: i for i, name in enumerate(names)}
    times = np.asarray(times, dtype=np.float64)
    out = np.zeros((len(times), len(names)), dtype=np.uint8)
    ordered = sorted((e for e in events if e.source in column), key=lambda e: e.ts)
    # Index of the slice that holds time ts: the first slice end >= ts.
    index = np.searchsorted(times, [e.ts for e in ordered], side="left")
    if representation == "changepoint":
        for e, k in zip(ordered, index, strict=True):
            if k < len(times) and e.ts > times[k] - slice_seconds:
                out[k, column[e.source]] = 1
    elif representation == "raw":
        since: dict[str, int] = {}
        for e, k in zip(ordered, index, strict=True):
            if e.active:
                since.setdefault(e.source, int(k))
            elif e.source in since:
                out[since.pop(e.source): min(int(k), len(times) - 1) + 1, column[e.source]] = 1
        for source, k in since.items():  # still firing at the end of the data
            out[k:, column[source]] = 1
    else:  # last: the sensor that changed most recently, carried forward
        latest = np.full(len(times), -1)
        for e, k in zip(ordered, index, strict=True):
            if k < len(times):
                latest[k] = column[e.source]  # later events in the same slice overwrite earlier ones
        current = -1
        for k in range(len(times)):
            current = latest[k] if latest[k] >= 0 else current
            if current >= 0:
                out[k, current] = 1
    return out, [f"{representation}:{n}" for n in names]


def _sequences(days: np.ndarray) -> Iterable[np.ndarray]:
    """Row indices of each day, in time order (rows are already in time order)."""
    for day in dict.fromkeys(days.tolist()):
        yield np.flatnonzero(days == day)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def viterbi(log_emit: np.ndarray, log_trans: np.ndarray, log_init: np.ndarray) -> np.ndarray:
    """Most likely state sequence for one sequence of per-slice scores ``[T, K]``."""
    T, K = log_emit.shape
    back = np.zeros((T, K), dtype=np.int64)
    score = log_init + log_emit[0]
    for t in range(1, T):
        cand = score[:, None] + log_trans  # [from, to]
        back[t] = np.argmax(cand, axis=0)
        score = cand[back[t], np.arange(K)] + log_emit[t]
    path = np.empty(T, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def forward_filter(log_emit: np.ndarray, log_trans: np.ndarray, log_init: np.ndarray) -> np.ndarray:
    """Causal marginals ``[T, K]``: each slice's state distribution given the slices up to it only."""
    T, _K = log_emit.shape
    out = np.empty_like(log_emit, dtype=np.float64)
    alpha = log_init + log_emit[0]
    alpha -= _logsumexp(alpha, axis=0)
    out[0] = alpha
    for t in range(1, T):
        alpha = _logsumexp(alpha[:, None] + log_trans, axis=0) + log_emit[t]
        alpha -= _logsumexp(alpha, axis=0)
        out[t] = alpha
    return np.exp(out)


@dataclass
class ChainModel:
    """Per-slice state scores plus transition and initial scores: an HMM's log-probabilities or a CRF's
    weights. Both decode the same way."""

    labels: list[str]
    state_weights: np.ndarray  # [features + 1 (bias), K]: score(x, y) = [x, 1] @ W[:, y]
    log_trans: np.ndarray  # [K, K], from -> to
    log_init: np.ndarray  # [K]

    def scores(self, X: np.ndarray) -> np.ndarray:
        return np.hstack([X.astype(np.float64), np.ones((len(X), 1))]) @ self.state_weights

    def predict(self, X: np.ndarray, causal: bool) -> np.ndarray:
        """Labels for one sequence (a day): Viterbi over the whole sequence, or forward filtering."""
        s = self.scores(X)
        idx = (
            forward_filter(s, self.log_trans, self.log_init).argmax(axis=1) if causal
            else viterbi(s, self.log_trans, self.log_init)
        )
        return np.asarray(self.labels)[idx]


def fit_hmm(X: np.ndarray, y: np.ndarray, days: np.ndarray, labels: Sequence[str], alpha: float = 1.0,
            sample_weight: np.ndarray | None = None) -> ChainModel:
    """HMM with independent Bernoulli observations per feature (naive Bayes emissions), learnt by counting
    with add-``alpha`` smoothing, as in the paper. Emission log-likelihoods are written as a linear score
    in x so the HMM and the CRF share one decoder. ``sample_weight``: each row counted that many times (a
    transition by its later row's weight, a day's start by its first row's); unweighted, as the paper."""
    K = len(labels)
    index = {c: i for i, c in enumerate(labels)}
    yi = np.array([index[c] for c in y])
    Xf = X.astype(np.float64)
    w = np.ones(len(yi)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    counts = np.bincount(yi, weights=w, minlength=K)
    on = np.stack([w[yi == k] @ Xf[yi == k] for k in range(K)], axis=1)  # [F, K]
    p = (on + alpha) / (counts + 2 * alpha)
    # log p(x|y) = sum_f x_f log p + (1 - x_f) log(1 - p) = x @ (log p - log(1-p)) + sum log(1-p)
    weights = np.vstack([np.log(p) - np.log1p(-p), np.log1p(-p).sum(axis=0, keepdims=True)])
    trans = np.full((K, K), alpha)
    init = np.full(K, alpha)
    for rows in _sequences(days):
        seq = yi[rows]
        init[seq[0]] += w[rows[0]]
        np.add.at(trans, (seq[:-1], seq[1:]), w[rows[1:]])
    return ChainModel(
        list(labels), weights, np.log(trans / trans.sum(axis=1, keepdims=True)), np.log(init / init.sum())
    )


def fit_crf(
    X: np.ndarray, y: np.ndarray, days: np.ndarray, labels: Sequence[str], c2: float = 1.0,
    max_iterations: int = 200,
) -> ChainModel:
    """Linear-chain CRF trained with python-crfsuite (L-BFGS, L2 penalty ``c2``): state features are the
    binary inputs plus a bias, per label; transition features per label pair."""
    import pycrfsuite

    trainer = pycrfsuite.Trainer(verbose=False)
    for rows in _sequences(days):
        trainer.append([_crf_items(x) for x in X[rows]], [str(v) for v in y[rows]])
    trainer.set_params({"c2": c2, "max_iterations": max_iterations, "feature.possible_transitions": True})
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "crf.model")
        trainer.train(path)
        tagger = pycrfsuite.Tagger()
        tagger.open(path)
        info: Any = tagger.info()
        tagger.close()
    K, F = len(labels), X.shape[1]
    index = {c: i for i, c in enumerate(labels)}
    weights = np.zeros((F + 1, K))
    for (attr, label), w in info.state_features.items():
        if label in index:
            weights[F if attr == "bias" else int(attr[1:]), index[label]] = w
    log_trans = np.zeros((K, K))
    for (a, b), w in info.transitions.items():
        if a in index and b in index:
            log_trans[index[a], index[b]] = w
    # crfsuite has no separate start weights; the first slice is scored by its state features alone.
    return ChainModel(list(labels), weights, log_trans, np.zeros(K))


def _crf_items(x: np.ndarray) -> dict[str, float]:
    items = {f"f{i}": 1.0 for i in np.flatnonzero(x)}
    items["bias"] = 1.0
    return items


def leave_one_day_out(
    X: np.ndarray, y: np.ndarray, days: np.ndarray, model: str, labels: Sequence[str] | None = None,
    **params: Any,
) -> dict[str, np.ndarray]:
    """Out-of-fold predictions, ``{"offline": ..., "causal": ...}``: for each day, a ``model`` (``"hmm"``
    or ``"crf"``) trained on the other days, decoded both ways."""
    labels = sorted(set(y.tolist())) if labels is None else list(labels)
    if model not in ("hmm", "crf"):
        raise ValueError(f"unknown model {model!r}; expected 'hmm' or 'crf'")
    out = {"offline": np.empty(len(y), dtype=object), "causal": np.empty(len(y), dtype=object)}
    for rows in _sequences(days):
        train = np.ones(len(y), dtype=bool)
        train[rows] = False
        fitted = (fit_hmm if model == "hmm" else fit_crf)(X[train], y[train], days[train], labels, **params)
        out["offline"][rows] = fitted.predict(X[rows], causal=False)
        out["causal"][rows] = fitted.predict(X[rows], causal=True)
    return {k: v.astype(str) for k, v in out.items()}
