"""Fixtures for driver tests: a hub with a driver manager, and an mDNS advertiser on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qilu_hub.core import Hub
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.sdk.testing import MdnsAdvertiser


@pytest.fixture
async def advertiser() -> AsyncIterator[MdnsAdvertiser]:
    adv = MdnsAdvertiser("127.0.0.1")
    await adv.start()
    yield adv
    await adv.close()


@pytest.fixture
async def hub_with_drivers(tmp_path: Path) -> AsyncIterator[tuple[Hub, DriverManager]]:
    hub = Hub(tmp_path / "config", {}, recorder=False)
    manager = DriverManager(retry_initial=0.1, retry_max=0.5, start_timeout=5.0, command_timeout=2.0)
    hub.add_component(manager)
    await hub.async_start()
    yield hub, manager
    await hub.async_stop()
