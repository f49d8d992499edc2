"""Look-ahead features for offline (whole-day) evaluation: what happens *after* each window.

The paper models we compare with on van Kasteren house A (HMM and CRF, van Kasteren et al., Ubicomp 2008)
decode a whole day at once, so each slice's label also depends on later sensor data.  A live hub cannot
do that; to compare like with like offline we give the classifier the mirror image of its causal
features: the same ``FeatureExtractor`` run over the time-reversed event stream.  For the window ending
at ``t`` this yields, per channel and device, "changes in the next slice", "fires first next",
"log time until its next change" and "activations in the next 10/60 minutes".

Never used at run time (it needs the future); training and the bench only.  Reusing the causal extractor
keeps one definition of every number: a look-ahead feature is a causal feature of the reversed day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, tzinfo

import numpy as np

from .features import DEFAULT_SPEC, DeviceEvent, FeatureSpec, extract_windows

PREFIX = "next."
# Clock features are the same looking forward or back; the mirrored clock would be meaningless anyway.
_CLOCK = ("time.sin", "time.cos", "weekday.sin", "weekday.cos")


def lookahead_names(spec: FeatureSpec = DEFAULT_SPEC) -> list[str]:
    return [PREFIX + n for n in spec.feature_names if n not in _CLOCK]


def mirror_events(events: Sequence[DeviceEvent], pivot: float) -> list[DeviceEvent]:
    """Events on the reversed time axis ``pivot - ts``: an on-interval [s, e] becomes [pivot-e, pivot-s],
    so every off edge turns into an on edge and vice versa."""
    mirrored = (DeviceEvent(pivot - e.ts, e.area, e.capability, not e.active, e.source) for e in events)
    return sorted(mirrored, key=lambda e: e.ts)


def extract_lookahead(
    events: Sequence[DeviceEvent],
    times: Sequence[float] | np.ndarray,
    spec: FeatureSpec = DEFAULT_SPEC,
    tz: tzinfo = UTC,
) -> np.ndarray:
    """One row per window end in ``times`` (ascending): features of the events at or after that time.

    Columns follow ``lookahead_names(spec)``.
    """
    t = np.asarray(times, dtype=np.float64)
    keep = [i for i, n in enumerate(spec.feature_names) if n not in _CLOCK]
    if t.size == 0:
        return np.zeros((0, len(keep)), dtype=np.float32)
    if np.any(np.diff(t) < 0):
        raise ValueError("times must be ascending")
    pivot = float(t[0] + t[-1])
    # The reversed extractor at pivot - t has seen exactly the events with ts >= t.
    rows = extract_windows(mirror_events(events, pivot), (pivot - t)[::-1], spec, tz)[::-1]
    return np.ascontiguousarray(rows[:, keep])
