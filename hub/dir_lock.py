"""The lock a running hub holds on its configuration directory (``CONFIG_DIR/.lock``).

``qilu-hub backup restore`` replaces the registry under the hub's feet unless it can tell that a hub
runs on the directory; this lock is how it tells. It is an ``flock`` on an open file, so the kernel
releases it when the hub exits however it exits (SIGKILL, power cut): there is no stale pid file to
clean up. Where ``fcntl`` is missing (Windows) the lock is not taken and ``held_elsewhere`` says no.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .file_modes import PRIVATE_FILE

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "DirLock", "held_elsewhere"]

_LOGGER = logging.getLogger(__name__)

LOCK_FILE = ".lock"


class DirLock:
    """An exclusive, non-blocking lock on ``directory/.lock``; ``acquire`` says whether it was had."""

    __slots__ = ("_fd", "path")

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        if fcntl is None:  # pragma: no cover - Windows
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)  # closing the only descriptor drops the flock


def held_elsewhere(directory: Path) -> bool:
    """Whether another holder (a running hub) has the directory's lock. Takes and drops it to find out."""
    if not Path(directory).is_dir():
        return False
    probe = DirLock(directory)
    if probe.acquire():
        probe.release()
        return False
    return True
