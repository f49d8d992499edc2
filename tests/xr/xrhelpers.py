"""Helpers shared by the XR tests (kept out of conftest so test modules can import them)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# One panel with one toggle at the stage origin: the smallest scene a bridge test can run.
ONE_TOGGLE_SCENE = """\
version: 1
immersive_scenes:
  - name: s
    panels:
      - id: p
        placement: {relative_to: stage}
        controls:
          - {type: toggle, entity: light.living_room}
"""


class TraceReader:
    """Follows the bridge's --trace JSON-lines file. `wait` bounds how long we wait for the bridge to get
    somewhere (a failure bound, not a latency assertion)."""

    def __init__(self, path: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
        self.path = path
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._pos = 0

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as f:
            f.seek(self._pos)
            while True:
                line = f.readline()
                if not line.endswith("\n"):
                    break
                self._pos = f.tell()
                self.events.append(json.loads(line))

    def wait(
        self, pred: Callable[[dict[str, Any]], bool], what: str, start: int = 0, limit_s: float = 60.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + limit_s
        while True:
            self._read()
            for ev in self.events[start:]:
                if pred(ev):
                    return ev
            if self.proc is not None and self.proc.poll() is not None:
                self._read()
                raise AssertionError(f"bridge exited ({self.proc.returncode}) before: {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw: {what}; last events: {self.events[-5:]}")
            time.sleep(0.02)

    def index(self, ev: dict[str, Any]) -> int:
        return self.events.index(ev)
