"""Look-ahead (offline) features: the causal extractor over the reversed day, seeing only what comes next."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qilu_hub.recognition.features import DEFAULT_SPEC, DeviceEvent, slice_times
from qilu_hub.recognition.lookahead import extract_lookahead, lookahead_names, mirror_events

T0 = 1_700_000_000.0
SPEC = DEFAULT_SPEC.with_sources(["fridge", "door"])


def column(name: str) -> int:
    return lookahead_names(SPEC).index(name)


def test_names_match_columns_and_skip_the_clock() -> None:
    names = lookahead_names(SPEC)
    rows = extract_lookahead([], slice_times(T0, T0 + 600, SPEC), SPEC)
    assert rows.shape == (10, len(names)) == (10, SPEC.n_features - 4)
    assert all(n.startswith("next.") for n in names)
    assert not any(n.endswith(("time.sin", "weekday.cos")) for n in names)


def test_a_future_firing_is_seen_before_it_happens_and_not_after() -> None:
    # The fridge opens at +150 s and closes at +200 s; slices end every 60 s.
    events = [DeviceEvent(T0 + 150, "kitchen", "contact", True, "fridge"),
              DeviceEvent(T0 + 200, "kitchen", "contact", False, "fridge")]
    times = slice_times(T0, T0 + 600, SPEC)  # T0+60 ... T0+600
    rows = extract_lookahead(events, times, SPEC)
    changed, first = column("next.device.fridge.changed"), column("next.device.fridge.last_fired")
    recency, count = column("next.device.fridge.recency"), column("next.kitchen.contact.count_600s")
    assert rows[:, changed].tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0, 0]  # a change in [t, t + 60)
    assert rows[0, first] == 1.0  # the fridge is the next device to fire after T0+60
    # Time until its next change: 90 s from T0+60 (the opening), on the causal recency scale.
    assert rows[0, recency] == pytest.approx(math.log1p(90) / math.log1p(SPEC.recency_cap), rel=1e-6)
    assert rows[0, count] == pytest.approx(math.log1p(1))  # one activation ahead within 10 minutes
    assert rows[4, count] == 0.0 and rows[4, changed] == 0.0  # after T0+300 nothing lies ahead


def test_mirror_swaps_edges_and_reverses_time() -> None:
    events = [DeviceEvent(10.0, "hall", "door", True, "door"), DeviceEvent(25.0, "hall", "door", False, "door")]
    mirrored = mirror_events(events, 100.0)
    assert [(e.ts, e.active) for e in mirrored] == [(75.0, True), (90.0, False)]


def test_times_must_ascend() -> None:
    with pytest.raises(ValueError):
        extract_lookahead([], np.array([T0 + 120, T0 + 60]), SPEC)
    assert extract_lookahead([], np.array([]), SPEC).shape == (0, SPEC.n_features - 4)


events_strategy = st.lists(
    st.builds(
        DeviceEvent,
        ts=st.floats(T0, T0 + 3 * 3600, allow_nan=False),
        area=st.sampled_from(["kitchen", "hall", "toilet"]),
        capability=st.sampled_from(["contact", "door", "water"]),
        active=st.booleans(),
        source=st.sampled_from(["fridge", "door", "flush"]),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(events_strategy, st.floats(T0, T0 + 3 * 3600))
def test_rows_depend_only_on_what_comes_after(events: list[DeviceEvent], cut: float) -> None:
    """Dropping every event before ``cut`` leaves the rows of windows ending at or after ``cut`` as they were."""
    times = slice_times(T0, T0 + 3 * 3600, SPEC)
    full = extract_lookahead(events, times, SPEC)
    later = extract_lookahead([e for e in events if e.ts >= cut], times, SPEC)
    keep = times >= cut
    np.testing.assert_array_equal(full[keep], later[keep])
