"""Readers that turn activity datasets into ``DeviceEvent`` streams plus labelled intervals.

Supported: van Kasteren (tab-separated sense/act files), CASAS (aruba/milan "date time sensor value
[activity begin|end]" text), and the hub's own recorder history with household labels (JSONL).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .features import DeviceEvent, FeatureSpec, slice_times
from .mapping import (
    CASAS_ACTIVE_VALUES,
    CASAS_PREFIX_CAPABILITY,
    IDLE,
    KASTEREN_ACTIVITIES,
    KASTEREN_SENSORS,
    is_active,
)


class DatasetError(ValueError):
    """A dataset file could not be understood."""


@dataclass(frozen=True, slots=True)
class Interval:
    start: float
    end: float
    label: str


@dataclass
class Dataset:
    name: str
    events: list[DeviceEvent]
    intervals: list[Interval]
    start: float
    end: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def unlabelled(self) -> str | None:
        """What time no interval covers means: ``idle`` in annotated datasets (Kasteren, CASAS, the
        simulator: everything was watched), None for household labels (nobody said; not trained on)."""
        value = self.meta.get("unlabelled", IDLE)
        return value if isinstance(value, str) else None

    def labels_at(self, times: Sequence[float] | np.ndarray, spec: FeatureSpec) -> list[str | None]:
        """Label of the slice ending at each time: the interval covering its midpoint, else ``unlabelled``."""
        ordered = sorted(self.intervals, key=lambda iv: iv.start)
        starts = np.array([iv.start for iv in ordered])
        out: list[str | None] = []
        for t in times:
            mid = float(t) - spec.slice_seconds / 2
            label = self.unlabelled
            # Latest-starting interval that covers the midpoint wins (nested activities, e.g. toilet at night).
            k = int(np.searchsorted(starts, mid, side="right")) - 1
            while k >= 0:
                iv = ordered[k]
                if iv.start <= mid < iv.end:
                    label = iv.label
                    break
                k -= 1
                if k >= 0 and mid - ordered[k].start > 3 * 86400:
                    break  # nothing this old can still be running
            out.append(label)
        return out

    def slices(self, spec: FeatureSpec) -> np.ndarray:
        return slice_times(self.start, self.end, spec)

    def relabel(self, fn: Callable[[str], str]) -> Dataset:
        ivs = [Interval(iv.start, iv.end, fn(iv.label)) for iv in self.intervals]
        return Dataset(self.name, self.events, ivs, self.start, self.end, dict(self.meta))


def _midnight(ts: float) -> float:
    d = datetime.fromtimestamp(ts, UTC)
    return d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _kasteren_time(text: str) -> float:
    # Local wall-clock times without a zone; we keep them as UTC so time-of-day features stay local.
    return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S").replace(tzinfo=UTC).timestamp()


def _data_rows(path: Path) -> Iterable[list[str]]:
    for raw in path.read_text(encoding="latin-1").splitlines():
        parts = [p.strip() for p in raw.strip().split("\t")]
        if len(parts) >= 3 and parts[0][:2].isdigit() and "-" in parts[0]:
            yield parts


def load_kasteren(path: str | Path) -> Dataset:
    """Read ``kasterenSenseData.txt`` and ``kasterenActData.txt`` from a directory."""
    root = Path(path)
    sense, act = root / "kasterenSenseData.txt", root / "kasterenActData.txt"
    if not sense.exists() or not act.exists():
        raise DatasetError(f"{root}: expected kasterenSenseData.txt and kasterenActData.txt")
    events: list[DeviceEvent] = []
    for parts in _data_rows(sense):
        sid = int(parts[2])
        if sid not in KASTEREN_SENSORS:
            raise DatasetError(f"{sense}: unknown sensor id {sid}")
        _name, area, cap = KASTEREN_SENSORS[sid]
        # Each row is one firing interval: active at start, inactive at end.
        events.append(DeviceEvent(_kasteren_time(parts[0]), area, cap, True, str(sid)))
        events.append(DeviceEvent(_kasteren_time(parts[1]), area, cap, False, str(sid)))
    intervals: list[Interval] = []
    for parts in _data_rows(act):
        aid = int(parts[2])
        intervals.append(Interval(_kasteren_time(parts[0]), _kasteren_time(parts[1]), KASTEREN_ACTIVITIES[aid]))
    if not events or not intervals:
        raise DatasetError(f"{root}: no data rows")
    events.sort(key=lambda e: e.ts)
    start = _midnight(min(events[0].ts, min(iv.start for iv in intervals)))
    end = max(events[-1].ts, max(iv.end for iv in intervals))
    return Dataset("kasteren", events, intervals, start, end, {"path": str(root)})


def _casas_time(date: str, clock: str) -> float:
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in clock else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(f"{date} {clock}", fmt).replace(tzinfo=UTC).timestamp()


def casas_capability(sensor: str) -> str | None:
    prefix = "".join(ch for ch in sensor if ch.isalpha()).upper()
    return CASAS_PREFIX_CAPABILITY.get(prefix)


def load_casas(path: str | Path, sensor_areas: dict[str, str] | None = None) -> Dataset:
    """Read a CASAS text file (aruba/milan): ``date time sensor value [activity begin|end]``.

    ``sensor_areas`` maps sensor names to areas (CASAS ships floor plans, not area names); unmapped
    sensors go to area "other".  Temperature and battery sensors are skipped.
    """
    areas = sensor_areas or {}
    events: list[DeviceEvent] = []
    intervals: list[Interval] = []
    open_acts: dict[str, float] = {}
    first = last = None
    for lineno, raw in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = raw.split()
        if len(parts) < 4:
            continue
        try:
            ts = _casas_time(parts[0], parts[1])
        except ValueError as exc:
            raise DatasetError(f"{path}:{lineno}: bad timestamp") from exc
        first = ts if first is None else first
        last = ts
        sensor, value = parts[2], parts[3]
        cap = casas_capability(sensor)
        if cap is not None:
            active = value.upper() in CASAS_ACTIVE_VALUES
            events.append(DeviceEvent(ts, areas.get(sensor, "other"), cap, active, sensor))
        if len(parts) >= 6:
            act, edge = parts[4].lower(), parts[5].lower()
            if edge == "begin":
                open_acts[act] = ts
            elif edge == "end" and act in open_acts:
                intervals.append(Interval(open_acts.pop(act), ts, act))
    if first is None or last is None:
        raise DatasetError(f"{path}: no data rows")
    events.sort(key=lambda e: e.ts)
    return Dataset("casas", events, intervals, _midnight(first), last, {"path": str(path)})


def load_recorder_export(history: str | Path, labels: str | Path) -> Dataset:
    """Recorder history exported as JSONL plus household labels as JSONL.

    history rows: {"ts": epoch, "area": str, "capability": str, "value": any}
    label rows:   {"start": epoch, "end": epoch, "label": str}
    """
    events: list[DeviceEvent] = []
    for row in _jsonl(history):
        cap = str(row["capability"])
        area, source = str(row.get("area") or "other"), str(row.get("entity_id", ""))
        events.append(DeviceEvent(float(row["ts"]), area, cap, is_active(cap, row["value"]), source))
    events.sort(key=lambda e: e.ts)
    return recorder_dataset(events, load_labels(labels))


def _jsonl(path: str | Path) -> Iterable[dict[str, Any]]:
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{lineno}: {exc}") from exc


def events_from_history(
    rows: Iterable[dict[str, Any]],
    resolve: Callable[[str], tuple[str, str] | None],
    last_active: dict[str, bool] | None = None,
) -> list[DeviceEvent]:
    """Turn rows of ``hub.recorder.async_history`` into events, using ``resolve`` (entity id -> channel),
    e.g. ``SceneRecognizer.channel_for``; rows of entities with no channel are dropped.

    Only changes of an entity's active state are kept: a power meter reporting 80 W, then 85 W, is one
    event, as in the on/off intervals of the training data. (The causal extractor ignores such repeats
    anyway; look-ahead features would not: mirrored in time, the repeat would end the interval early.)
    ``last_active`` carries each entity's state across calls, for history read in pages."""
    seen = last_active if last_active is not None else {}
    events: list[DeviceEvent] = []
    for row in sorted(rows, key=lambda r: float(r["last_updated"])):
        entity_id = str(row["entity_id"])
        channel = resolve(entity_id)
        if channel is None:
            continue
        area, cap = channel
        active = is_active(cap, row["state"])
        if seen.get(entity_id) is active:
            continue
        seen[entity_id] = active
        events.append(DeviceEvent(float(row["last_updated"]), area, cap, active, entity_id))
    return events


def load_labels(path: str | Path) -> list[Interval]:
    """Household labels, JSONL rows {"start": epoch, "end": epoch, "label": scene}."""
    return [Interval(float(r["start"]), float(r["end"]), str(r["label"])) for r in _jsonl(path)]


def recorder_dataset(events: list[DeviceEvent], labels: list[Interval]) -> Dataset:
    """Slices from midnight before the first event or label, but at most a day before the first event:
    the recorder keeps changes only, so a quiet stretch just before its first row (a night) is still
    knowable, while a label from long before any history has nothing to learn from."""
    if not events:
        raise DatasetError("recorder history has no events on known channels")
    first = events[0].ts
    earliest = min(first, min((iv.start for iv in labels), default=first))
    end = max(events[-1].ts, max((iv.end for iv in labels), default=events[-1].ts))
    return Dataset("recorder", events, labels, _midnight(max(earliest, first - 86400)), end, {"unlabelled": None})
