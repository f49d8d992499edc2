"""Home Assistant's compressed state and diff shapes."""

from __future__ import annotations

from qilu_hub.api import ha_format
from qilu_hub.context import Context
from qilu_hub.states import State


def test_compressed_state_and_diff() -> None:
    ctx = Context("driver")
    old = State("light.a", "off", {"brightness": 0, "effect": "none"}, 10.0, 10.0, ctx)
    assert ha_format.compressed_state(old) == {"s": "off", "a": {"brightness": 0, "effect": "none"},
                                               "c": ctx.id, "lc": 10.0}
    new = State("light.a", "on", {"brightness": 200}, 12.0, 12.0, ctx)
    assert ha_format.state_diff(old, new) == {"+": {"s": "on", "lc": 12.0, "a": {"brightness": 200}},
                                              "-": {"a": ["effect"]}}
    attr_only = State("light.a", "on", {"brightness": 100}, 12.0, 13.0, Context("api", token_id="t1"))
    diff = ha_format.state_diff(new, attr_only)
    assert diff["+"]["lu"] == 13.0 and "s" not in diff["+"] and "lc" not in diff["+"]
    assert diff["+"]["c"]["user_id"] == "t1"


def test_state_dict_and_times() -> None:
    state = State("sensor.t", 21.5, {}, 0.0, 0.0, None)
    data = ha_format.state_dict(state)
    assert data["state"] == "21.5" and data["last_changed"] == "1970-01-01T00:00:00+00:00"
    assert ha_format.parse_time("1970-01-01T00:00:10Z") == 10.0
    assert ha_format.parse_time("1970-01-01T00:00:10") == 10.0
    assert ha_format.parse_time("nonsense") is None


def test_state_json_cache_reuses_per_state_object() -> None:
    cache = ha_format.StateJsonCache()
    state = State("sensor.t", 1, {}, 0.0, 0.0, None)
    assert cache.get(state) is cache.get(state)
    newer = State("sensor.t", 2, {}, 0.0, 1.0, None)
    assert '"state":"2"' in cache.get(newer)


def test_iso_matches_datetime() -> None:
    import random
    from datetime import UTC, datetime

    rng = random.Random(7)
    samples = [0.0, 1.5, 1700000000.0, 1700000000.000001, 1700000000.9999996, 1e9 + 0.25]
    samples += [rng.uniform(0, 2e9) for _ in range(5000)]
    samples += [1800000000 + i * 0.000137 for i in range(3000)]  # runs within one second
    mismatches = 0
    for ts in samples:
        expected = datetime.fromtimestamp(ts, UTC)
        got = datetime.fromisoformat(ha_format.iso(ts))
        assert abs((got - expected).total_seconds()) <= 1e-6, ts
        mismatches += got != expected
    assert mismatches < len(samples) // 1000  # float rounding may differ by a microsecond, rarely


def test_cached_json_equals_plain_encoding() -> None:
    import json

    cache = ha_format.StateJsonCache()
    for state in (State("sensor.t", 1.5, {"unit": "°C", "list": [1, 2]}, 1.0, 2.5, Context("x", token_id="tok")),
                  State("light.l", "on", {}, 3.0, 3.0, None)):
        assert json.loads(cache.get(state)) == ha_format.state_dict(state)
