"""Supervised background tasks: a task that crashes is logged and restarted with backoff."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

BACKOFF_START = 0.1
BACKOFF_MAX = 30.0
# A run that lasted this long counts as healthy: the next crash starts the backoff afresh.
STABLE_AFTER = 60.0


@dataclass(slots=True)
class TaskInfo:
    name: str
    restarts: int = 0
    last_error: str | None = None
    running: bool = False


class Supervisor:
    """Owns the hub's long-running loops; ``stop`` cancels them all."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.info: dict[str, TaskInfo] = {}

    def spawn(
        self, name: str, factory: Callable[[], Awaitable[None]], restart: bool = True
    ) -> asyncio.Task[None]:
        """Run ``factory()`` as a task named ``name``; if it raises, restart it (unless ``restart`` is False)."""
        if name in self._tasks and not self._tasks[name].done():
            raise ValueError(f"a task named {name!r} is already running")
        info = self.info.setdefault(name, TaskInfo(name))
        task = asyncio.create_task(self._run(info, factory, restart), name=name)
        self._tasks[name] = task
        return task

    async def _run(self, info: TaskInfo, factory: Callable[[], Awaitable[None]], restart: bool) -> None:
        delay = BACKOFF_START
        while True:
            started = time.monotonic()
            info.running = True
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:
                info.last_error = f"{type(err).__name__}: {err}"
                if not restart:
                    _LOGGER.exception("Task %s failed", info.name)
                    return
                if time.monotonic() - started > STABLE_AFTER:
                    delay = BACKOFF_START
                info.restarts += 1
                _LOGGER.exception("Task %s crashed (restart %d in %.1fs)", info.name, info.restarts, delay)
            finally:
                info.running = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def task_count(self) -> int:
        return sum(1 for task in self._tasks.values() if not task.done())

    async def stop(self) -> None:
        tasks = [task for task in self._tasks.values() if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
