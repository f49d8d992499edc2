"""The suite's clock (tests/conftest.py, scripts/clock-check.sh): clock-sensitive tests really run at the
moment and in the zone QILU_TEST_CLOCK names, and a wall time that does not exist is refused."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from tests.conftest import CLOCK_ENV, parse_test_clock


def test_clock_text_names_a_wall_time_in_a_zone() -> None:
    berlin = parse_test_clock("2026-03-29T01:59@Europe/Berlin")
    assert berlin.utcoffset() == dt.timedelta(hours=1) and berlin.astimezone(dt.UTC).hour == 0
    assert parse_test_clock("2026-12-06T00:05Z") == dt.datetime(2026, 12, 6, 0, 5, tzinfo=dt.UTC)
    assert parse_test_clock("2026-12-06T00:05").utcoffset() == dt.timedelta(0)
    with pytest.raises(ValueError, match="does not exist"):
        parse_test_clock("2026-03-29T02:30@Europe/Berlin")  # clocks jump from 02:00 to 03:00


@pytest.mark.clock_sensitive
def test_a_clock_sensitive_test_runs_at_the_given_clock() -> None:
    clock = os.environ.get(CLOCK_ENV)
    if not clock:
        pytest.skip(f"{CLOCK_ENV} is not set: the real clock")
    start = parse_test_clock(clock)
    now = time.time()
    assert 0 <= now - start.timestamp() < 120  # time flows on from the clock, for this test's few seconds
    local = time.localtime(now)
    assert local.tm_gmtoff == start.utcoffset().total_seconds()  # type: ignore[union-attr]
    assert dt.datetime.now().astimezone().utcoffset() == start.utcoffset()
