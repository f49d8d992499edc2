"""Shared fixtures for the whole suite."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from qilu_hub import Hub
from tests.testbeds import bluez as bluez_bed


def skip_outside_ci(reason: str) -> None:
    """Without root a developer's run skips the test bed with its reason; CI must never skip it."""
    if os.environ.get("CI"):
        pytest.fail(f"test bed unavailable in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def bluez() -> Iterator[bluez_bed.MockBluez]:
    """python-dbusmock's BlueZ on a private system bus, for bleak's real BlueZ backend."""
    reason = bluez_bed.can_run()
    if reason:
        skip_outside_ci(reason)
    mock = bluez_bed.MockBluez().start()
    yield mock
    mock.stop()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """A started hub with a fresh config directory (no components beyond the recorder)."""
    instance = Hub(tmp_path / "config", {"recorder": {"commit_interval": 0.05}})
    await instance.async_start()
    yield instance
    await instance.async_stop()


# -- the clock ------------------------------------------------------------------------------------------------
# QILU_TEST_CLOCK="2026-12-06T00:05@UTC" (a local wall time @ an IANA zone) runs every test marked
# clock_sensitive with the wall clock set to that moment when the test starts, flowing on from there, and with
# TZ set to that zone (time-machine moves time.time, datetime and time.localtime, and calls tzset; the
# monotonic clock, and so asyncio's timers, keep running untouched). Several clocks, separated by spaces, run
# each marked test once per clock in the same pytest process (its id ends in [clock=...]): one start-up and one
# collection for all of them. scripts/clock-check.sh runs the marked tests so. Subprocesses a test starts see the
# real clock: marked tests run in-process.
CLOCK_ENV = "QILU_TEST_CLOCK"


def named_clocks() -> list[str]:
    """The clocks QILU_TEST_CLOCK names, in order (none: the real clock)."""
    return os.environ.get(CLOCK_ENV, "").split()


def parse_test_clock(text: str) -> dt.datetime:
    """``2026-03-29T01:59@Europe/Berlin`` -> an aware datetime in that zone (``@UTC`` when the zone is left out
    and the text names no offset); a wall time that does not exist in the zone (a DST gap) is refused."""
    moment, _, zone = text.strip().partition("@")
    parsed = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if parsed.tzinfo is not None and zone:
        raise ValueError(f"{CLOCK_ENV}={text!r}: give an offset or a zone, not both")
    tz = ZoneInfo(zone or "UTC")
    local = parsed.astimezone(tz) if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)
    if local.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ValueError(f"{CLOCK_ENV}={text!r}: that wall time does not exist in {tz.key}")
    return local


def pytest_configure(config: pytest.Config) -> None:
    for clock in named_clocks():
        try:
            parse_test_clock(clock)
        except (ValueError, KeyError) as err:  # KeyError: ZoneInfoNotFoundError
            raise pytest.UsageError(str(err)) from err


def pytest_report_header(config: pytest.Config) -> str | None:
    moments = ", ".join(parse_test_clock(clock).isoformat() for clock in named_clocks())
    return f"clock-sensitive tests start at {moments} ({CLOCK_ENV})" if moments else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Under QILU_TEST_CLOCK, a clock-sensitive test runs once per clock named there."""
    clocks = named_clocks()
    definition = metafunc.definition
    if clocks and (_listed_clock_sensitive(definition.nodeid) or definition.get_closest_marker("clock_sensitive")):
        metafunc.parametrize("test_clock", clocks, indirect=True, ids=[f"clock={c}" for c in clocks])


@pytest.fixture
def test_clock(request: pytest.FixtureRequest) -> dt.datetime | None:
    """The moment this clock-sensitive test starts at under QILU_TEST_CLOCK; None on the real clock."""
    clock = getattr(request, "param", None)
    return parse_test_clock(clock) if clock else None


@pytest.fixture(autouse=True)
def _test_clock(test_clock: dt.datetime | None) -> Iterator[None]:
    if test_clock is None:
        yield
        return
    import time_machine

    with time_machine.travel(test_clock, tick=True):
        yield


_SHARED_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/tty")


def _device_modes() -> dict[str, int]:
    modes = {}
    for path in _SHARED_DEVICES:
        with contextlib.suppress(OSError):
            modes[path] = os.stat(path).st_mode
    return modes


@pytest.fixture(autouse=True)
def _machine_left_alone(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test after which a shared device node changed mode (once, /dev/null became 0600 during a run, so
    every later ``apt-get update`` on the machine failed; this names the test, then puts the mode back)."""
    before = _device_modes()
    yield
    changed = {path: (mode, after) for path, mode in before.items()
               if (after := _device_modes().get(path, mode)) != mode}
    for path, (mode, _after) in changed.items():
        os.chmod(path, mode & 0o7777)
    if changed:
        pytest.fail(f"{request.node.nodeid} (or a process it started) changed "
                    + ", ".join(f"{p} from {oct(a)} to {oct(b)}" for p, (a, b) in changed.items()))


# Tests that read the wall clock or the time zone (directly, or through what they test: the recorder's
# retention and windows, labels, the recogniser's local zone, training from the recorder, schedules, token
# last_used). Kept here, in one place, so that a test file need not change to join the clock check; an entry is
# a file or a test id. Not here, because nothing they run reads the clock or the zone (each rerun at a clock
# cost minutes and could find nothing): the recognition tests on fixed simulated, Kasteren, CASAS or exported
# data with an explicit zone (test_evaluation, test_model_cli, test_review, test_features, test_datasets), and
# the recorder's write storm (its size cap; the age purge is the other recorder tests').
CLOCK_SENSITIVE = (
    "tests/api/test_label_suggestions.py",  # two simulated days ending at the last UTC midnight
    "tests/api/test_labels.py",  # label windows around now, "last night" in local time
    "tests/api/test_rest.py::test_history",  # history from a minute ago
    "tests/api/test_ha_format.py",  # timestamps formatted as UTC ISO text
    # retention against now (every start purges what is older than keep_days)
    "tests/core/test_recorder.py::test_history_is_recorded_and_queryable",
    "tests/core/test_recorder.py::test_corrupt_history_does_not_stop_the_hub",
    "tests/core/test_recorder.py::test_excluded_domains_are_not_recorded",
    "tests/core/test_recorder.py::test_full_disk_costs_history_not_the_hub",
    "tests/core/test_recorder.py::test_a_stop_keeps_the_batch_the_commit_loop_has_taken",
    "tests/core/test_recorder.py::test_a_cancelled_history_request_keeps_the_batch_it_flushed",
    "tests/core/test_tokens.py",  # last_used
    "tests/core/test_cli.py::test_token_list_shows_last_use",  # today's date in the local zone
    "tests/recognition/test_component.py",  # time-of-day features in the system's zone
    "tests/recognition/test_labels.py",  # labels against now, at most a year back
    "tests/recognition/test_recorder_source.py",  # training from the recorder's recent history (and its purge)
    "tests/scenes/test_scenes.py",  # schedules in local time
    "tests/core/test_backup.py",  # scheduled daily backups and archive names with the UTC time
    "tests/api/test_login_links.py",  # one-time sign-in links that expire
)


def _listed_clock_sensitive(nodeid: str) -> bool:
    test = nodeid.partition("[")[0]  # a parametrised test is listed by its function
    return any(test == entry or test.startswith(entry + "::") for entry in CLOCK_SENSITIVE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _listed_clock_sensitive(item.nodeid):
            item.add_marker(pytest.mark.clock_sensitive)
