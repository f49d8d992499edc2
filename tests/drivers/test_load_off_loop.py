"""A driver's first load runs off the event loop: the loop keeps turning while its module (and protocol library)
is imported, adverts that come meanwhile wait for that one import, and a driver that fails to import is reported
once and costs that driver only.

The drivers here live in a temporary package on ``sys.path`` whose module import really blocks: it waits for a
gate that a ticker task on the event loop opens after it has turned a few times while the driver was loading.
Imported on the loop, the import would wait for the gate until its bound, with the ticker never turning.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from qilu_hub.appliances import ApplianceLifecycle, StaticCatalog
from qilu_hub.appliances import lifecycle as lifecycle_module
from qilu_hub.core import Hub
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.sdk import DiscoveredAppliance, MdnsInfo
from qilu_hub.sdk._loading import LazyDriver, as_driver, import_object

from .test_lazy_drivers import SDK, write_package

TURNS_WHILE_LOADING = 5  # the ticker opens the gate after this many turns of the loop with the driver loading
GATE_BOUND = 5.0  # seconds an import waits for its gate at most (what a loop-blocking import would wait)

DRIVER = """
    import {gate}
    {gate}.OPEN.wait({bound})  # the import lasts until the event loop has turned (or the bound)
    import {sdk} as sdk
    {extra}
    class Conn(sdk.DeviceConnection):
        async def async_start(self): pass
        async def async_stop(self): pass
        async def async_command(self, entity, command, args, context): pass
    class Driver(sdk.Driver):
        from {name}.manifest import MANIFEST as manifest
        def identify(self, info): return sdk.DiscoveredAppliance(key=info.properties["id"], title="Gated")
        def connect(self, context, appliance): return Conn()
"""


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, keeping what was submitted (to count the imports sent to a thread)."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.submitted: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted.append(repr(fn))
        return super().submit(fn, *args, **kwargs)

    def imports_of(self, spec: str) -> int:
        return sum(repr(spec) in job for job in self.submitted)


class Ticker:
    """A task on the loop counting its turns while ``loading()`` holds; opens ``gate`` after enough of them."""

    def __init__(self, loading: Callable[[], bool], gate: threading.Event) -> None:
        self.loading, self.gate, self.while_loading = loading, gate, 0
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        for _ in range(20_000):  # bounded: a broken run ends with the test's own bound
            await asyncio.sleep(0.001)
            if self.loading():
                self.while_loading += 1
                if self.while_loading >= TURNS_WHILE_LOADING:
                    self.gate.set()

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def wait_for(predicate: Callable[[], bool], bound: float = 15.0) -> None:
    """Poll until true; the bound only ends a broken run, it asserts nothing about speed."""
    for _ in range(int(bound / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def loading(driver: Any) -> bool:
    return not (driver.loaded or driver.load_error)


@pytest.fixture
def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., threading.Event]]:
    """Writes a driver package (with entry point) whose driver module waits for a gate; returns the gate."""
    names: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(name: str, extra: str = "") -> threading.Event:
        gate = f"{name}_gate"
        (tmp_path / f"{gate}.py").write_text("import threading\nOPEN = threading.Event()\n")
        write_package(tmp_path, name, DRIVER.format(gate=gate, bound=GATE_BOUND, sdk=SDK, name=name, extra=extra))
        names.extend((name, gate))
        event: threading.Event = import_object(f"{gate}:OPEN")
        return event

    yield make
    for module in [m for m in sys.modules if m.split(".")[0] in names]:
        sys.modules.pop(module)


@pytest.fixture
def executor() -> Iterator[CountingExecutor]:
    pool = CountingExecutor()  # made the running loop's default executor by each test
    yield pool
    pool.shutdown(wait=True)


def advert(name: str, key: str) -> MdnsInfo:
    return MdnsInfo(f"_{name}._tcp.local.", f"{key}._{name}._tcp.local.", "x.local.", ("127.0.0.1",), 1, {"id": key})


async def start_hub(tmp_path: Path, executor: CountingExecutor) -> tuple[Hub, DriverManager, ApplianceLifecycle]:
    asyncio.get_running_loop().set_default_executor(executor)
    hub = Hub(tmp_path / "config", {}, recorder=False)
    manager = DriverManager(builtin=False)
    hub.add_component(manager)
    lifecycle = ApplianceLifecycle("drivers", mdns_enabled=False, ble_enabled=False)
    hub.add_component(lifecycle)
    await hub.async_start()
    return hub, manager, lifecycle


async def test_first_match_loads_off_the_loop_once_and_every_waiting_advert_is_handled(
        tmp_path: Path, gated: Callable[..., threading.Event], executor: CountingExecutor,
        monkeypatch: pytest.MonkeyPatch) -> None:
    gate = gated("acmegated")
    hub, manager, lifecycle = await start_hub(tmp_path, executor)
    try:
        driver = manager.drivers["acmegated"]
        ticker = Ticker(lambda: loading(driver), gate)
        # Adverts while the driver loads, as the mDNS source hands them over: three of two appliances first.
        lifecycle.handle(advert("acmegated", "k1"), "mdns:k1")
        lifecycle.handle(advert("acmegated", "k2"), "mdns:k2")
        lifecycle.handle(advert("acmegated", "k1"), "mdns:k1")
        # One gone before the load ended (an mDNS goodbye): not handled. One beyond the cap: dropped, counted.
        lifecycle.handle(advert("acmegated", "k3"), "mdns:k3")
        lifecycle.sighting_gone("mdns:k3")
        monkeypatch.setattr(lifecycle_module, "MAX_WAITING_FOR_LOAD", 2)
        lifecycle.handle(advert("acmegated", "k4"), "mdns:k4")
        assert lifecycle.inbox is not None
        inbox = lifecycle.inbox
        await wait_for(lambda: inbox.get("k1") is not None and inbox.get("k2") is not None)
        await ticker.stop()
        assert ticker.while_loading >= TURNS_WHILE_LOADING  # the loop turned while the module was imported
        assert driver.loaded and manager.load_errors == {}
        assert executor.imports_of("acmegated.driver:Driver") == 1  # one import, in a worker thread, for all
        await lifecycle.async_wait_for_loads()
        assert inbox.get("k3") is None and inbox.get("k4") is None and lifecycle.stats["load_wait_dropped"] == 1
    finally:
        await hub.async_stop()


async def test_a_driver_that_fails_to_import_is_reported_once_and_costs_that_driver_only(
        tmp_path: Path, gated: Callable[..., threading.Event], executor: CountingExecutor,
        caplog: pytest.LogCaptureFixture) -> None:
    gate = gated("acmefails", extra="import no_such_protocol_library  # not installed")
    gated("acmefine").set()  # a second driver, whose import does not wait
    hub, manager, lifecycle = await start_hub(tmp_path, executor)
    try:
        broken = manager.drivers["acmefails"]
        ticker = Ticker(lambda: loading(broken), gate)
        with caplog.at_level(logging.ERROR):
            lifecycle.handle(advert("acmefails", "b1"), "mdns:b1")
            lifecycle.handle(advert("acmefails", "b2"), "mdns:b2")
            await wait_for(lambda: broken.load_error is not None)
            await asyncio.sleep(0.05)  # the waiting adverts handled (and dropped)
            for _ in range(3):  # adverts keep coming: no new import, no new log line
                lifecycle.handle(advert("acmefails", "b1"), "mdns:b1")
        await ticker.stop()
        assert ticker.while_loading >= TURNS_WHILE_LOADING
        assert list(manager.load_errors) == ["entry point acmefails"]
        assert "no_such_protocol_library" in manager.load_errors["entry point acmefails"]
        assert len([r for r in caplog.records if "acmefails" in r.getMessage()]) == 1
        assert executor.imports_of("acmefails.driver:Driver") == 1
        assert lifecycle.inbox is not None and lifecycle.inbox.get("b1") is None and lifecycle.inbox.get("b2") is None

        # An adopted appliance of that driver fails to start with the import error; the hub and the other
        # driver go on.
        await manager.async_adopt("acmefails", DiscoveredAppliance(key="b1", title="Broken"))
        rec = manager.get("acmefails:b1")
        assert rec is not None
        await wait_for(lambda: rec.last_error is not None)
        assert "no_such_protocol_library" in str(rec.last_error)
        lifecycle.handle(advert("acmefine", "f1"), "mdns:f1")
        await wait_for(lambda: lifecycle.inbox is not None and lifecycle.inbox.get("f1") is not None)
    finally:
        await hub.async_stop()


async def test_an_adopted_appliance_starting_loads_its_driver_off_the_loop(
        tmp_path: Path, gated: Callable[..., threading.Event], executor: CountingExecutor) -> None:
    gate = gated("acmestart")
    asyncio.get_running_loop().set_default_executor(executor)
    hub = Hub(tmp_path / "config", {}, recorder=False)
    await hub.async_start()
    try:
        driver = as_driver(import_object("acmestart.manifest:MANIFEST"))
        assert isinstance(driver, LazyDriver) and not driver.loaded
        catalog = StaticCatalog(hub, [driver])
        ticker = Ticker(lambda: loading(driver), gate)
        # A caller that gives up waiting (cancelled) leaves the import running for the others.
        impatient = asyncio.get_running_loop().create_task(driver.async_load())
        await asyncio.sleep(0)
        impatient.cancel()
        device_id = await catalog.async_adopt("acmestart", DiscoveredAppliance(key="s1", title="Started"))
        await ticker.stop()
        assert ticker.while_loading >= TURNS_WHILE_LOADING
        assert hub.devices.get(device_id) is not None and driver.loaded
        assert executor.imports_of("acmestart.driver:Driver") == 1
        await catalog.async_stop()
    finally:
        await hub.async_stop()


async def test_identify_on_the_loop_loads_the_matching_drivers_off_it(
        tmp_path: Path, gated: Callable[..., threading.Event], executor: CountingExecutor) -> None:
    gate = gated("acmeident")
    gated("acmeidentbroken", extra="import no_such_protocol_library  # not installed").set()
    hub, manager, _ = await start_hub(tmp_path, executor)
    try:
        driver = manager.drivers["acmeident"]
        ticker = Ticker(lambda: loading(driver), gate)
        [(found, appliance)] = await manager.async_identify(advert("acmeident", "i1"))
        await ticker.stop()
        assert ticker.while_loading >= TURNS_WHILE_LOADING
        assert found is driver and appliance.key == "i1"
        assert await manager.async_identify(advert("acmeidentbroken", "x1")) == []  # reported, not raised
        assert list(manager.load_errors) == ["entry point acmeidentbroken"]
    finally:
        await hub.async_stop()
