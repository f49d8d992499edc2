"""The hub's current problems (Home Assistant calls them repairs): what is wrong now and needs a person, such as a
scene file that no longer validates, each with where it is (file:line when known) and since when.

A part of the hub that finds such a problem reports it under an id of its own and clears it when it is gone (the
file healed, or was deleted); the list is what is wrong *now*, not a log. It lives in memory: at start every part
checks its files again and reports what is still wrong. ``GET /api/problems`` (``api/problems.py``) serves it and
the dashboard shows it; every change fires ``EVENT_PROBLEMS_UPDATED`` so an open dashboard refreshes at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .bus import EventBus

EVENT_PROBLEMS_UPDATED = "problems_updated"
Severity = Literal["error", "warning"]  # error: something configured does not work; warning: it waits for something


@dataclass(frozen=True, slots=True)
class Problem:
    id: str  # stable while the problem lasts, e.g. "scenes:/path/to/file.yaml"
    domain: str  # the part of the hub that reports it: "scenes", ...
    severity: Severity
    message: str  # the first thing to fix, one line
    since: float  # wall-clock time it was first reported (and not cleared since)
    file: str | None = None
    line: int | None = None
    details: tuple[str, ...] = field(default=())  # every issue found, "file:line: message" each

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "domain": self.domain, "severity": self.severity, "message": self.message,
                "file": self.file, "line": self.line, "details": list(self.details), "since": self.since}


class Problems:
    """The current problems by id; reporting one again updates it and keeps its ``since``."""

    def __init__(self, bus: EventBus, clock: Callable[[], float] = time.time) -> None:
        self._bus = bus
        self._clock = clock
        self._problems: dict[str, Problem] = {}

    def report(self, problem_id: str, domain: str, message: str, *, severity: Severity = "error",
               file: str | None = None, line: int | None = None, details: tuple[str, ...] = ()) -> Problem:
        old = self._problems.get(problem_id)
        new = Problem(problem_id, domain, severity, message, old.since if old else self._clock(), file, line,
                      tuple(details))
        if old != new:
            self._problems[problem_id] = new
            self._changed()
        return new

    def clear(self, problem_id: str) -> bool:
        """Whether there was such a problem (it is gone now)."""
        if self._problems.pop(problem_id, None) is None:
            return False
        self._changed()
        return True

    def get(self, problem_id: str) -> Problem | None:
        return self._problems.get(problem_id)

    def all(self) -> list[Problem]:
        """Oldest first."""
        return sorted(self._problems.values(), key=lambda p: (p.since, p.id))

    def _changed(self) -> None:
        self._bus.fire(EVENT_PROBLEMS_UPDATED, {"count": len(self._problems)})


__all__ = ["EVENT_PROBLEMS_UPDATED", "Problem", "Problems", "Severity"]
