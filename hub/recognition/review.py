"""Day review: label a finished stretch of time, minute by minute, with what happened before *and after*.

The live recogniser sees only the past, so it cannot yet know, a minute after the cooker went off, whether
dinner is over. Looking back at a finished day it can: a day-review model (trained with
``build_matrix(..., lookahead=True)``, ``qilu-hub model train --review``) reads, for every window, the
causal features and their mirror image (``lookahead.extract_lookahead``). This is how the van Kasteren
paper's HMM and CRF are evaluated, whole days at a time, and where our model scores best
(``docs/recognition.md``).

The result is a list of segments: a timeline of the household's day, and suggestions the household can
accept as training labels (the dashboard's "Suggestions from a past day"). Runtime only: numpy,
onnxruntime and the feature extractor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo

import numpy as np

from .features import DeviceEvent, extract_windows, slice_times
from .lookahead import extract_lookahead
from .runtime import SceneModel

# The longest stretch one review may cover (a week), so one request cannot tie up the gateway for long.
MAX_REVIEW_SECONDS = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class Segment:
    """One run of minutes with the same recognised scene; ``confidence`` is the mean top probability."""

    scene: str
    start: float
    end: float
    confidence: float

    def to_dict(self) -> dict[str, object]:
        return {"scene": self.scene, "start": self.start, "end": self.end, "confidence": round(self.confidence, 4)}


def margin(model: SceneModel) -> float:
    """Seconds of history to read before and after a reviewed stretch: for every feature to be exact, as
    far as recency saturates (``spec.recency_cap``, a day), in both directions."""
    return float(model.spec.recency_cap)


def review_windows(model: SceneModel, events: Sequence[DeviceEvent], times: np.ndarray, tz: tzinfo) -> np.ndarray:
    """Class probabilities (columns in ``model.labels`` order) for the windows ending at ``times``; a live model
    with a decoder (the bundled one has: its channel HMM) is filtered through it from the first window on, as
    it would have run live."""
    if len(times) == 0:
        return np.zeros((0, len(model.labels)))
    columns = [extract_windows(events, times, model.spec, tz)]
    if model.lookahead:
        columns.append(extract_lookahead(events, times, model.spec, tz))
    return model.decode(model.predict_proba(np.hstack(columns)))


def segments(labels: Sequence[str], proba: np.ndarray, times: np.ndarray, window: float) -> list[Segment]:
    """Merge consecutive windows with the same most likely scene; window ``i`` covers (times[i] - window, times[i]]."""
    out: list[Segment] = []
    if len(times) == 0:
        return out
    best = np.argmax(proba, axis=1)
    top = proba[np.arange(len(best)), best]
    begin = 0
    for i in range(1, len(best) + 1):
        if i == len(best) or best[i] != best[begin]:
            out.append(Segment(labels[int(best[begin])], float(times[begin] - window), float(times[i - 1]),
                               float(np.mean(top[begin:i]))))
            begin = i
    return out


def absorb_short(found: list[Segment], min_seconds: float) -> list[Segment]:
    """Fold segments shorter than ``min_seconds`` into a neighbour, so a suggestion list has no one-minute
    flickers: a short run between two runs of the same scene joins them, otherwise it joins the longer
    neighbour. Confidence is averaged by duration."""
    if min_seconds <= 0 or len(found) < 2:
        return list(found)
    items = list(found)
    while len(items) > 1:
        lengths = [s.end - s.start for s in items]
        i = min(range(len(items)), key=lengths.__getitem__)
        if lengths[i] >= min_seconds:
            break
        left = items[i - 1] if i > 0 else None
        right = items[i + 1] if i + 1 < len(items) else None
        if left is not None and right is not None and left.scene == right.scene:
            lo, hi, scene = i - 1, i + 2, left.scene
        elif left is not None and (right is None or lengths[i - 1] >= lengths[i + 1]):
            lo, hi, scene = i - 1, i + 1, left.scene
        else:
            assert right is not None
            lo, hi, scene = i, i + 2, right.scene
        part = items[lo:hi]
        total = sum(s.end - s.start for s in part)
        conf = sum(s.confidence * (s.end - s.start) for s in part) / total
        items[lo:hi] = [Segment(scene, part[0].start, part[-1].end, conf)]
    return items


def review(
    model: SceneModel,
    events: Sequence[DeviceEvent],
    start: float,
    end: float,
    tz: tzinfo,
    min_seconds: float = 0.0,
) -> list[Segment]:
    """Segments covering [start, end) in whole windows, from ``events`` (which should reach ``margin(model)``
    before ``start`` and after ``end`` for exact features)."""
    if end - start > MAX_REVIEW_SECONDS:
        raise ValueError(f"at most {MAX_REVIEW_SECONDS / 86400:.0f} days can be reviewed at once")
    window = model.spec.slice_seconds
    times = slice_times(start, end, model.spec)
    proba = review_windows(model, events, times, tz)
    return absorb_short(segments(model.labels, proba, times, window), min_seconds)
