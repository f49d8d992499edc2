"""A per-class decision bias: additive offsets on a classifier's log-probabilities.

A class-balanced forest over-predicts rare activities on ambiguous windows and a plain one drowns them;
offsets ``b`` (``p'(y|x) ∝ p(y|x) · exp(b_y)``) move the decision between the two.  They are learnt on
held-out days (``training.fit_class_bias``), stored in the model's ``qilu.class_bias`` metadata and applied
by ``SceneModel.predict_proba``, so the hub, ``model eval`` and the bench decide alike.  Imports only numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class ClassBiasError(ValueError):
    """Class-bias parameters in a model file are missing or inconsistent."""


class ClassBias:
    __slots__ = ("_scale", "labels", "offsets")

    def __init__(self, labels: Sequence[str], offsets: Sequence[float] | np.ndarray) -> None:
        self.labels = [str(c) for c in labels]
        self.offsets = np.asarray(offsets, dtype=np.float64).reshape(-1)
        if self.offsets.shape != (len(self.labels),):
            raise ClassBiasError(f"{self.offsets.size} class-bias offsets for {len(self.labels)} labels")
        if not np.all(np.isfinite(self.offsets)) or np.any(np.abs(self.offsets) > 50):
            raise ClassBiasError("class-bias offsets must be finite log-factors within ±50")
        self._scale = np.exp(self.offsets)

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Re-weighted probabilities (rows still sum to 1), same shape as the input."""
        p = np.asarray(probabilities, dtype=np.float64) * self._scale
        total = p.sum(axis=-1, keepdims=True)
        return np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[-1]), where=total > 0)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "class-bias", "labels": self.labels, "offsets": [round(float(v), 6) for v in self.offsets]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassBias:
        if data.get("kind") != "class-bias":
            raise ClassBiasError(f"unknown class-bias kind {data.get('kind')!r}")
        try:
            return cls([str(c) for c in data["labels"]], [float(v) for v in data["offsets"]])
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ClassBiasError):
                raise
            raise ClassBiasError(f"class-bias parameters are not valid: {exc}") from exc
