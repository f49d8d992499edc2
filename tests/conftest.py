"""Shared fixtures for the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub import Hub


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """A started hub with a fresh config directory (no components beyond the recorder)."""
    instance = Hub(tmp_path / "config", {"recorder": {"commit_interval": 0.05}})
    await instance.async_start()
    yield instance
    await instance.async_stop()
