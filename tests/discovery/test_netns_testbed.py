"""The emulated LAN test bed can run beside another run of the suite on the same machine."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import skip_outside_ci
from tests.testbeds import netns as netns_bed

pytestmark = pytest.mark.netns


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split(" ", 1)[0] for line in out.splitlines()}


def test_two_lans_of_one_area_coexist_and_a_dead_runs_lan_is_cleaned() -> None:
    """A second suite (same prefix, same subnet) must not delete the first one's namespaces; namespaces of a
    run that was killed are removed by the next one."""
    reason = netns_bed.can_build()
    if reason:
        skip_outside_ci(reason)
    dead_pid = 2**22 + 1  # above pid_max's largest value: no such process
    stale = f"qt-{dead_pid}x1-lan"
    subprocess.run(["ip", "netns", "add", stale], check=True, capture_output=True)
    try:
        with netns_bed.EmulatedLan(prefix="qt-", subnet="10.77.0", hosts=1) as first:
            assert stale not in _namespaces()
            with netns_bed.EmulatedLan(prefix="qt-", subnet="10.77.0", hosts=1) as second:
                assert {first.lan, first.hub, second.lan, second.hub} <= _namespaces()
            assert {first.lan, first.hub, first.app(1)} <= _namespaces()
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)
