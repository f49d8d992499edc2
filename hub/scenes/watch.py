"""Scene files kept current while the hub runs: which files changed on disk, and the immersive (XR) scenes they hold.

``SceneFileWatch`` looks at the scene files every ``scenes.watch_interval`` seconds (modification time and size) and
hands the files that changed or went to the scenes component (``manager.SceneManager``), which parses each again
and swaps a valid file's home and immersive scenes in whole; a file that no longer validates keeps its last good
scenes (logged with file:line), so an edit half-way done never blanks a headset or drops a schedule.

``ImmersiveScenes`` holds the immersive scenes by name, with their file, for the scene API; when they change the
component fires ``EVENT_XR_SCENES_UPDATED`` naming them, so the API pushes them to clients at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from ..const import EVENT_XR_SCENES_UPDATED
from .model import ImmersiveScene

_LOG = logging.getLogger(__name__)

__all__ = ["EVENT_XR_SCENES_UPDATED", "ImmersiveScenes", "SceneFileWatch"]

Stamp = tuple[int, int]  # (mtime_ns, size)


def _stamp(path: Path) -> Stamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class ImmersiveScenes:
    """Immersive scenes by name, with the file each came from."""

    def __init__(self) -> None:
        self.scenes: dict[str, tuple[ImmersiveScene, Path]] = {}

    def get(self, name: str) -> tuple[ImmersiveScene, Path] | None:
        return self.scenes.get(name)

    def names_from(self, path: Path) -> set[str]:
        return {n for n, (_, p) in self.scenes.items() if p == path}

    def put_file(self, path: Path, scenes: tuple[ImmersiveScene, ...]) -> set[str]:
        """Replace what `path` held; returns the names that appeared, changed or went."""
        old = {n: s for n, (s, p) in self.scenes.items() if p == path}
        for name in old:
            del self.scenes[name]
        for scene in scenes:
            self.scenes[scene.name] = (scene, path)
        new = {s.name: s for s in scenes}
        return {n for n in old.keys() | new.keys() if old.get(n) != new.get(n)}


FilesChanged = Callable[[list[Path], list[Path]], None]  # (changed or new files, files that went)


class SceneFileWatch:
    """Which scene files changed since they were last read, checked every `interval` seconds (0: never)."""

    def __init__(self, files: Callable[[], list[Path]], interval: float, on_change: FilesChanged) -> None:
        self._files = files
        self.interval = interval
        self._on_change = on_change
        self._stamps: dict[Path, Stamp | None] = {}
        self._task: asyncio.Task[None] | None = None

    def remember(self, path: Path) -> None:
        """Called just before `path` is read: a write after this shows as a change at the next check."""
        self._stamps[path] = _stamp(path)

    def forget(self) -> None:
        self._stamps.clear()

    def start(self) -> None:
        for path in self._files():
            self._stamps.setdefault(path, _stamp(path))
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.check()
            except Exception:  # a bug here must not end the watching
                _LOG.exception("checking the scene files failed")

    def check(self) -> tuple[list[Path], list[Path]]:
        """Hand the files that changed or went since last read to `on_change`; returns them too."""
        files = self._files()
        listed = set(files)
        changed: list[Path] = []
        gone = [p for p in self._stamps if p not in listed]
        for path in gone:
            del self._stamps[path]
        for path in files:
            stamp = _stamp(path)
            if stamp == self._stamps.get(path, ()):
                continue
            if stamp is None:  # a file named in the configuration was deleted
                self._stamps[path] = None
                gone.append(path)
            else:
                changed.append(path)  # its stamp is taken when it is read (remember)
        if changed or gone:
            self._on_change(changed, gone)
        return changed, gone
