"""Fixtures for discovery tests: hubs with a ApplianceLifecycle over the test driver, and the test beds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qilu_hub import Hub
from qilu_hub.appliances import ApplianceLifecycle, StaticCatalog
from tests.conftest import skip_outside_ci
from tests.testbeds import netns as netns_bed

from .qd_driver import QdDriver


async def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, step: float = 0.02) -> None:
    """Poll until true; the timeout only bounds a broken run, it asserts nothing about speed."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


class HubFactory:
    """Starts hubs on one config directory (a second start is a restart)."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.running: list[Hub] = []

    async def start(self, driver: QdDriver | None = None, **settings: Any) -> tuple[Hub, ApplianceLifecycle, QdDriver]:
        driver = driver or QdDriver()
        hub = Hub(self.config_dir, {"recorder": {"commit_interval": 0.05}}, recorder=False)
        catalog_holder: dict[str, StaticCatalog] = {}

        def make_catalog(h: Hub) -> StaticCatalog:
            catalog_holder["c"] = StaticCatalog(h, [driver])
            return catalog_holder["c"]

        settings.setdefault("ble_enabled", False)
        settings.setdefault("mdns_enabled", False)
        manager = ApplianceLifecycle(make_catalog, **settings)
        hub.add_component(manager)
        await hub.async_start()
        self.running.append(hub)
        return hub, manager, driver

    async def stop(self, hub: Hub) -> None:
        self.running.remove(hub)
        await hub.async_stop()

    async def close(self) -> None:
        for hub in list(self.running):
            await self.stop(hub)


@pytest.fixture
async def hubs(tmp_path: Path) -> AsyncIterator[HubFactory]:
    factory = HubFactory(tmp_path / "config")
    yield factory
    await factory.close()


@pytest.fixture
def lan() -> Iterator[netns_bed.EmulatedLan]:
    reason = netns_bed.can_build()
    if reason:
        skip_outside_ci(reason)
    with netns_bed.EmulatedLan(prefix="qd-", subnet="10.78.0", hosts=2) as built:
        yield built


def live(manager: ApplianceLifecycle, driver: QdDriver, count: int) -> bool:
    """``count`` connections started and recorded as adopted by the manager (the latter comes a moment later)."""
    return len(driver.connections) == count and all(key in manager._live for key in driver.connections)
