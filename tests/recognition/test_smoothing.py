"""Hysteresis keeps the scene from flickering but follows sustained change."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from qilu_hub.recognition.smoothing import SceneSmoother

COOK = {"cooking": 0.8, "eating": 0.2}
EAT = {"cooking": 0.2, "eating": 0.8}


def test_single_outliers_do_not_flip_the_scene() -> None:
    s = SceneSmoother()
    assert s.update(COOK) == "cooking"
    flips = 0
    for i in range(20):
        before = s.current
        s.update(EAT if i % 2 else COOK)  # raw argmax alternates every window
        flips += s.current != before
    assert flips == 0 and s.current == "cooking"


def test_sustained_change_switches_after_dwell() -> None:
    s = SceneSmoother(alpha=0.5, margin=0.1, dwell=2)
    s.update(COOK)
    seen = [s.update(EAT) for _ in range(4)]
    assert seen[0] == "cooking"
    assert seen[-1] == "eating"


def test_near_ties_keep_current() -> None:
    s = SceneSmoother()
    s.update({"a": 0.52, "b": 0.48})
    for _ in range(10):
        assert s.update({"a": 0.47, "b": 0.53}) == "a"  # within the margin
    s.reset()
    assert s.current is None and s.confidence == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_scene_holds_for_at_least_dwell_updates(values: list[float]) -> None:
    """Whatever the raw probabilities do, a new scene lasts at least ``dwell`` updates before the next change."""
    s = SceneSmoother(dwell=2)
    seen = [s.update({"a": v, "b": 1.0 - v}) for v in values]
    changes = [i for i in range(1, len(seen)) if seen[i] != seen[i - 1]]
    assert all(later - earlier >= 2 for earlier, later in pairwise(changes))
