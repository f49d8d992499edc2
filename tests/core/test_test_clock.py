"""The suite's clock (tests/conftest.py, scripts/clock-check.sh): clock-sensitive tests really run at the
moment and in the zone QILU_TEST_CLOCK names, and a wall time that does not exist is refused."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.conftest import CLOCK_ENV, named_clocks, parse_test_clock


def test_clock_text_names_a_wall_time_in_a_zone() -> None:
    berlin = parse_test_clock("2026-03-29T01:59@Europe/Berlin")
    assert berlin.utcoffset() == dt.timedelta(hours=1) and berlin.astimezone(dt.UTC).hour == 0
    assert parse_test_clock("2026-12-06T00:05Z") == dt.datetime(2026, 12, 6, 0, 5, tzinfo=dt.UTC)
    assert parse_test_clock("2026-12-06T00:05").utcoffset() == dt.timedelta(0)
    with pytest.raises(ValueError, match="does not exist"):
        parse_test_clock("2026-03-29T02:30@Europe/Berlin")  # clocks jump from 02:00 to 03:00


@pytest.mark.clock_sensitive
def test_a_clock_sensitive_test_runs_at_the_given_clock(request: pytest.FixtureRequest,
                                                         test_clock: dt.datetime | None) -> None:
    if test_clock is None:
        pytest.skip(f"{CLOCK_ENV} is not set: the real clock")
    named = named_clocks()
    assert request.node.callspec.params["test_clock"] in named  # once per clock named, each with its own id
    assert f"[clock={request.node.callspec.params['test_clock']}]" in request.node.nodeid
    now = time.time()
    assert 0 <= now - test_clock.timestamp() < 120  # time flows on from the clock, for this test's few seconds
    local = time.localtime(now)
    assert local.tm_gmtoff == test_clock.utcoffset().total_seconds()  # type: ignore[union-attr]
    assert dt.datetime.now().astimezone().utcoffset() == test_clock.utcoffset()


@pytest.mark.clock_sensitive
def test_each_named_clock_is_a_run_of_every_clock_sensitive_test(request: pytest.FixtureRequest) -> None:
    """With several clocks named, the marked tests run once per clock in this one session."""
    named = named_clocks()
    marked = [item for item in request.session.items if item.get_closest_marker("clock_sensitive")]
    assert request.node in marked
    if not named:  # the real clock: each marked test runs once, as written
        assert not any("[clock=" in item.nodeid for item in marked)
        return
    for clock in named:
        assert any(item.nodeid.endswith(f"[clock={clock}]") for item in marked), clock
    assert all("[clock=" in item.nodeid for item in marked)
