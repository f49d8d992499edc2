"""Shared fixtures for the whole suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hub import Hub
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
