"""Helpers every driver needs: a polling coordinator per device and reconnect with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")


class Backoff:
    """Exponential delays with jitter (so a room of appliances rebooting together does not reconnect in step)."""

    __slots__ = ("attempt", "factor", "initial", "maximum")

    def __init__(self, initial: float = 0.5, maximum: float = 60.0, factor: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.attempt = 0


async def reconnect_with_backoff(
    connect: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff | None = None,
    attempts: int | None = None,
    timeout: float = 10.0,
    name: str = "device",
) -> T:
    """Call ``connect`` until it succeeds, each try time-limited, sleeping with backoff between tries.

    Raises the last error after ``attempts`` failures (never gives up when ``attempts`` is None).
    """
    backoff = backoff or Backoff()
    tries = 0
    while True:
        tries += 1
        try:
            return await asyncio.wait_for(connect(), timeout)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            if attempts is not None and tries >= attempts:
                raise
            delay = backoff.next()
            _LOGGER.debug("%s: connect failed (%r); retry %d in %.2f s", name, err, tries, delay)
            await asyncio.sleep(delay)


class PollingCoordinator(Generic[T]):
    """Polls one device on an interval and hands each result to listeners; one per device, not per entity.

    ``refresh()`` polls now (after a command, to show its effect at once). Failures are
    counted; after ``failures_before_unavailable`` in a row, ``on_unavailable`` runs once
    and polling continues with backoff until the device answers again.
    """

    def __init__(
        self,
        name: str,
        fetch: Callable[[], Awaitable[T]],
        interval: float,
        *,
        timeout: float = 10.0,
        failures_before_unavailable: int = 2,
        on_unavailable: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.name = name
        self._fetch = fetch
        self.interval = interval
        self.timeout = timeout
        self.failures_before_unavailable = failures_before_unavailable
        self.on_unavailable = on_unavailable
        self.data: T | None = None
        self.failures = 0
        self.available = False
        self.last_error: BaseException | None = None
        self._listeners: list[Callable[[T], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._backoff = Backoff(initial=interval, maximum=max(interval, 60.0))

    def add_listener(self, listener: Callable[[T], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def refresh(self) -> T:
        """Poll now; raises on failure (after counting it)."""
        try:
            data = await asyncio.wait_for(self._fetch(), self.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.failures += 1
            self.last_error = err
            if self.failures >= self.failures_before_unavailable and self.available:
                self.available = False
                if self.on_unavailable is not None:
                    self.on_unavailable(err)
            raise
        self.failures = 0
        self.available = True
        self._backoff.reset()
        self.data = data
        for listener in list(self._listeners):
            try:
                listener(data)
            except Exception:
                _LOGGER.exception("%s: listener failed", self.name)
        return data

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=f"poll-{self.name}")

    def request_refresh(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            delay = self.interval
            try:
                await self.refresh()
            except Exception:
                delay = self._backoff.next()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def spawn_tracked(tasks: set[asyncio.Task[Any]], coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
    """Create a task kept in ``tasks`` until it ends, so a connection can cancel everything it started."""
    task: asyncio.Task[Any] = asyncio.ensure_future(coro)
    task.set_name(name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    task.add_done_callback(_retrieve)
    return task


def _retrieve(task: asyncio.Task[Any]) -> None:
    # The connection reports its loss itself; the error must not also surface as "never retrieved".
    if not task.cancelled() and task.exception() is not None:
        _LOGGER.debug("%s ended: %r", task.get_name(), task.exception())
