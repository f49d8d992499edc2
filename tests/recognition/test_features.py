"""Feature extraction: one definition, identical in batch (training) and streaming (runtime) use."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qilu_hub.recognition.features import (
    AREAS,
    CAPABILITIES,
    DEFAULT_SPEC,
    DeviceEvent,
    FeatureExtractor,
    FeatureSpec,
    extract_windows,
    slice_times,
)

T0 = 1_700_000_000.0

events_strategy = st.lists(
    st.builds(
        DeviceEvent,
        ts=st.floats(T0, T0 + 4 * 3600, allow_nan=False),
        area=st.sampled_from([*AREAS, "garage"]),
        capability=st.sampled_from([*CAPABILITIES, "temperature"]),
        active=st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(events_strategy)
def test_batch_equals_streaming(events: list[DeviceEvent]) -> None:
    """The training matrix equals what the runtime computes when fed the same events live."""
    times = slice_times(T0, T0 + 4 * 3600)
    batch = extract_windows(events, times)
    live = FeatureExtractor(DEFAULT_SPEC)
    pending = sorted(events, key=lambda e: e.ts)
    for row, t in zip(batch, times, strict=True):
        while pending and pending[0].ts <= t:
            live.observe(pending.pop(0))
        np.testing.assert_array_equal(row, live.features(float(t)))


def test_names_match_vector_and_values_are_bounded() -> None:
    ex = FeatureExtractor()
    ex.observe(DeviceEvent(T0, "kitchen", "motion", True))
    vec = ex.features(T0 + 30)
    assert vec.shape == (DEFAULT_SPEC.n_features,) == (len(DEFAULT_SPEC.feature_names),)
    assert np.all(np.isfinite(vec))
    assert np.all(np.abs(vec) <= math.log1p(10_000))


def test_kitchen_motion_sets_its_channel() -> None:
    ex = FeatureExtractor()
    ex.observe(DeviceEvent(T0, "kitchen", "motion", True))
    named = dict(zip(DEFAULT_SPEC.feature_names, ex.features(T0 + 10), strict=True))
    assert named["kitchen.motion.active"] == 1.0
    assert named["kitchen.motion.changed"] == 1.0
    assert named["kitchen.motion.last_fired"] == 1.0
    assert named["kitchen.motion.count_600s"] > 0
    assert named["bedroom.motion.active"] == 0.0
    assert named["kitchen.recency"] < named["bedroom.recency"] == 1.0
    later = dict(zip(DEFAULT_SPEC.feature_names, ex.features(T0 + 7200), strict=True))
    assert later["kitchen.motion.changed"] == 0.0 and later["kitchen.motion.count_600s"] == 0.0
    assert later["kitchen.recency"] > named["kitchen.recency"]


def test_unknown_area_folds_into_other_and_unknown_capability_is_ignored() -> None:
    ex = FeatureExtractor()
    assert ex.observe(DeviceEvent(T0, "garage", "door", True))
    assert not ex.observe(DeviceEvent(T0, "kitchen", "temperature", True))
    named = dict(zip(DEFAULT_SPEC.feature_names, ex.features(T0 + 1), strict=True))
    assert named["other.door.active"] == 1.0


def test_time_encodings_follow_the_clock() -> None:
    ex = FeatureExtractor()
    idx = DEFAULT_SPEC.feature_names.index("time.sin")
    midnight = 1_700_006_400.0  # 2023-11-15 00:00 UTC
    assert abs(ex.features(midnight)[idx]) < 1e-6
    assert abs(ex.features(midnight + 6 * 3600)[idx] - 1.0) < 1e-6


def test_spec_version_changes_with_content_and_round_trips() -> None:
    other = replace(DEFAULT_SPEC, count_windows=(300.0,))
    assert other.version != DEFAULT_SPEC.version
    assert FeatureSpec.from_dict(DEFAULT_SPEC.to_dict()).version == DEFAULT_SPEC.version
    assert DEFAULT_SPEC.version.startswith("qilu-scene-features/")


def test_only_transitions_count_per_source() -> None:
    """A power meter's repeated readings are one activation; two cupboards in one channel are two."""
    ex = FeatureExtractor()
    assert ex.observe(DeviceEvent(T0, "living_room", "power", True, "sensor.tv_power"))
    for k in range(1, 20):  # 80 W, 85 W, ... all "active"
        assert not ex.observe(DeviceEvent(T0 + k, "living_room", "power", True, "sensor.tv_power"))
    assert ex.observe(DeviceEvent(T0 + 30, "kitchen", "contact", True, "cups"))
    assert ex.observe(DeviceEvent(T0 + 31, "kitchen", "contact", True, "fridge"))
    assert ex.observe(DeviceEvent(T0 + 32, "kitchen", "contact", False, "cups"))
    named = dict(zip(DEFAULT_SPEC.feature_names, ex.features(T0 + 40), strict=True))
    assert named["living_room.power.count_600s"] == np.float32(math.log1p(1))
    assert named["kitchen.contact.count_600s"] == np.float32(math.log1p(2))
    assert named["kitchen.contact.active"] == 1.0  # the fridge is still open
    assert not ex.observe(DeviceEvent(T0 + 50, "kitchen", "contact", False, "cups"))  # a repeated "off"
    assert ex.observe(DeviceEvent(T0 + 51, "kitchen", "contact", False, "fridge"))
    assert dict(zip(DEFAULT_SPEC.feature_names, ex.features(T0 + 52), strict=True))["kitchen.contact.active"] == 0.0


def test_per_device_block_tells_devices_of_one_channel_apart() -> None:
    spec = DEFAULT_SPEC.with_sources(["fridge", "cups", "fridge"])
    assert spec.sources == ("cups", "fridge")
    assert spec.version != DEFAULT_SPEC.version and spec.without_sources().version == DEFAULT_SPEC.version
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert "sources" not in DEFAULT_SPEC.to_dict()  # the shared spec (and its hash) is unchanged
    ex = FeatureExtractor(spec)
    ex.observe(DeviceEvent(T0, "kitchen", "contact", True, "cups"))
    ex.observe(DeviceEvent(T0 + 5, "kitchen", "contact", False, "cups"))
    ex.observe(DeviceEvent(T0 + 10, "kitchen", "contact", True, "fridge"))
    vec = ex.features(T0 + 20)
    assert vec.shape == (spec.n_features,) == (len(spec.feature_names),)
    named = dict(zip(spec.feature_names, vec, strict=True))
    assert named["device.fridge.active"] == 1.0 and named["device.cups.active"] == 0.0
    assert named["device.fridge.last_fired"] == 1.0 and named["device.cups.last_fired"] == 0.0
    assert named["device.cups.count_600s"] == named["device.fridge.count_600s"] == math.log1p(1)
    assert named["kitchen.contact.count_600s"] == math.log1p(2)  # the channel block still folds them
    ex.observe(DeviceEvent(T0 + 30, "hall", "door", True, "unknown-door"))
    named = dict(zip(spec.feature_names, ex.features(T0 + 40), strict=True))
    assert named["device.fridge.last_fired"] == 0.0  # an unknown device fired last
    assert np.array_equal(ex.features(T0 + 40)[: DEFAULT_SPEC.n_features],
                          _replay_default(ex_events(), T0 + 40))


def ex_events() -> list[DeviceEvent]:
    return [
        DeviceEvent(T0, "kitchen", "contact", True, "cups"),
        DeviceEvent(T0 + 5, "kitchen", "contact", False, "cups"),
        DeviceEvent(T0 + 10, "kitchen", "contact", True, "fridge"),
        DeviceEvent(T0 + 30, "hall", "door", True, "unknown-door"),
    ]


def _replay_default(events: list[DeviceEvent], now: float) -> np.ndarray:
    ex = FeatureExtractor(DEFAULT_SPEC)
    ex.observe_many(events)
    return ex.features(now)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.builds(
    DeviceEvent,
    ts=st.floats(T0, T0 + 4 * 3600, allow_nan=False),
    area=st.sampled_from(["kitchen", "hall"]),
    capability=st.sampled_from(["contact", "door"]),
    active=st.booleans(),
    source=st.sampled_from(["a", "b", "c"]),
), max_size=40))
def test_per_device_batch_equals_streaming(events: list[DeviceEvent]) -> None:
    spec = DEFAULT_SPEC.with_sources(["a", "b"])  # "c" is unknown to the model
    times = slice_times(T0, T0 + 4 * 3600)
    batch = extract_windows(events, times, spec)
    live = FeatureExtractor(spec)
    pending = sorted(events, key=lambda e: e.ts)
    for row, t in zip(batch, times, strict=True):
        while pending and pending[0].ts <= t:
            live.observe(pending.pop(0))
        np.testing.assert_array_equal(row, live.features(float(t)))
