"""The immersive (XR) scenes the hub serves to headsets, kept current while the hub runs.

The scene files are checked every ``scenes.watch_interval`` seconds (modification time and size); a file that
changed is parsed again and, if valid, its immersive scenes replace the old ones and ``EVENT_XR_SCENES_UPDATED``
names them, so the scene API pushes them to clients at once. A file that no longer validates keeps its last good
scenes (logged with file:line): an edit half-way done never blanks a headset. Home scenes still load at start only
(their schedules and entities are the scenes component's)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..const import EVENT_XR_SCENES_UPDATED
from .catalog import HubCatalog
from .loader import SceneError, load_scene_file
from .model import ImmersiveScene

_LOG = logging.getLogger(__name__)

__all__ = ["EVENT_XR_SCENES_UPDATED", "ImmersiveScenes"]

Stamp = tuple[int, int]  # (mtime_ns, size)


def _stamp(path: Path) -> Stamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class ImmersiveScenes:
    """Immersive scenes by name, with the file each came from."""

    def __init__(self, files: Callable[[], list[Path]], interval: float) -> None:
        self._files = files
        self.interval = interval
        self.scenes: dict[str, tuple[ImmersiveScene, Path]] = {}
        self._stamps: dict[Path, Stamp | None] = {}
        self._task: asyncio.Task[None] | None = None
        self._hub: Any = None

    def get(self, name: str) -> tuple[ImmersiveScene, Path] | None:
        return self.scenes.get(name)

    def put_file(self, path: Path, scenes: tuple[ImmersiveScene, ...]) -> set[str]:
        """Replace what `path` held; returns the names that appeared, changed or went."""
        old = {n: s for n, (s, p) in self.scenes.items() if p == path}
        for name in old:
            del self.scenes[name]
        for scene in scenes:
            self.scenes[scene.name] = (scene, path)
        new = {s.name: s for s in scenes}
        return {n for n in old.keys() | new.keys() if old.get(n) != new.get(n)}

    def remember(self, path: Path) -> None:
        self._stamps[path] = _stamp(path)

    def start(self, hub: Any) -> None:
        self._hub = hub
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

    def check(self) -> set[str]:
        """Reload the files that changed; fires the event and returns the scene names that changed."""
        changed: set[str] = set()
        files = self._files()
        for path in files:
            stamp = _stamp(path)
            if stamp == self._stamps.get(path, ()):
                continue
            self._stamps[path] = stamp
            if stamp is None:
                changed |= self.put_file(path, ())
                continue
            try:
                sf = load_scene_file(path, HubCatalog(self._hub))
            except SceneError as e:
                _LOG.error("scene file changed but is refused; XR clients keep its last good scenes:\n%s", e)
                continue
            changed |= self.put_file(path, sf.immersive_scenes)
        for gone in set(self._stamps) - set(files):
            del self._stamps[gone]
            changed |= self.put_file(gone, ())
        if changed:
            _LOG.info("immersive scenes changed: %s", ", ".join(sorted(changed)))
            self._hub.bus.fire(EVENT_XR_SCENES_UPDATED, {"scenes": sorted(changed)})
        return changed
