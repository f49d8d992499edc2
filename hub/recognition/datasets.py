"""Readers that turn activity datasets into ``DeviceEvent`` streams plus labelled intervals.

Every reader goes through a mapping file (``mapping_file.DatasetMapping``): the file names the format, the
sensors (area, capability, what value is "active") and the activity labels (which scene); ``load_dataset``
picks the reader.  Formats: van Kasteren houses A and C (tab-separated text dumps) and B (the TL epoch
conversion), ARAS day files, Ordóñez (UCI ADL), UCAmI Cup 2018, CASAS text, the hub's recorder history as
JSONL, and a Home Assistant recorder database.  ``load_kasteren`` and ``load_casas`` keep the old
entry points with the built-in mappings in ``hub/recognition/mappings/``.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from .features import DeviceEvent, FeatureSpec, slice_times
from .interval import Interval as Interval  # re-exported: callers name it with the datasets
from .mapping import CASAS_ACTIVE_VALUES, IDLE, is_active
from .mapping_file import UNKNOWN, DatasetMapping, load_mapping

BUILTIN_MAPPINGS = Path(__file__).with_name("mappings")


class DatasetError(ValueError):
    """A dataset file could not be understood."""


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
        return value if isinstance(value, str) and value != UNKNOWN else None

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
                    label = None if iv.label == UNKNOWN else iv.label  # a label the mapping calls unknown
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

    def to_scenes(self) -> Dataset:
        """Activity names -> household scenes, through the mapping the dataset was read with."""
        scene_of = self.meta.get("scene_of")
        if scene_of is None:  # recorder labels and the simulator already speak scenes
            return self
        out = self.relabel(scene_of)
        out.meta["scene_of"] = None
        return out


def _midnight(ts: float) -> float:
    d = datetime.fromtimestamp(ts, UTC)
    return d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


@dataclass
class RawData:
    """What a reader found, before the mapping: sensor values by sensor key, activity intervals by label key."""

    events: list[tuple[float, str, Any]] = field(default_factory=list)  # (ts, sensor key, raw value or bool)
    intervals: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, activity key)


def _local(text: str, fmt: str) -> float:
    # Datasets give local wall-clock times without a zone; we keep them as UTC so time-of-day stays local.
    return datetime.strptime(text.strip(), fmt).replace(tzinfo=UTC).timestamp()


def _kasteren_time(text: str) -> float:
    return _local(text, "%d-%b-%Y %H:%M:%S")


def _data_rows(path: Path) -> Iterable[list[str]]:
    for raw in path.read_text(encoding="latin-1").splitlines():
        parts = [p.strip() for p in raw.strip().split("\t")]
        if len(parts) >= 3 and parts[0][:2].isdigit() and "-" in parts[0]:
            yield parts


def _need(root: Path, *names: str) -> list[Path]:
    paths = [root / n for n in names]
    missing = [str(p.relative_to(root)) for p in paths if not p.exists()]
    if missing:
        raise DatasetError(f"{root}: expected {' and '.join(missing)}")
    return paths


def read_kasteren(root: Path, mapping: DatasetMapping) -> RawData:
    """Houses A and C: text dumps of the matlab structures, one interval per row (start, end, id)."""
    sense, act = _need(root, mapping.file("sensors", "kasterenSenseData.txt"),
                       mapping.file("activities", "kasterenActData.txt"))
    raw = RawData()
    for parts in _data_rows(sense):
        # Each row is one firing interval: active at start, inactive at end.
        raw.events.append((_kasteren_time(parts[0]), parts[2], True))
        raw.events.append((_kasteren_time(parts[1]), parts[2], False))
    raw.intervals = [(_kasteren_time(p[0]), _kasteren_time(p[1]), p[2]) for p in _data_rows(act)]
    return raw


def read_kasteren_tl(root: Path, mapping: DatasetMapping) -> RawData:
    """House B as converted by the TL project: ``epoch<TAB>duration<TAB>id`` (epoch = local clock time)."""
    sense, act = _need(root, mapping.file("sensors", "tl_epoch_format/houseB.sensors"),
                       mapping.file("activities", "tl_epoch_format/houseB.activities"))

    def rows(path: Path) -> Iterable[tuple[float, float, str]]:
        for lineno, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
            parts = line.split()
            if len(parts) < 3:
                continue
            try:
                start, length = float(parts[0]), float(parts[1])
            except ValueError as exc:
                raise DatasetError(f"{path}:{lineno}: expected epoch, duration, id") from exc
            yield start, start + length, parts[2]

    raw = RawData()
    for start, end, key in rows(sense):
        raw.events += [(start, key, True), (end, key, False)]
    raw.intervals = list(rows(act))
    return raw


def read_aras(root: Path, mapping: DatasetMapping) -> RawData:
    """ARAS: ``DAY_n.txt[.gz]``, one line per second, 20 sensor columns then one activity id per resident.

    The files carry no dates: day n is ``start_date`` + n - 1 (weekday features are therefore not real).
    Sensor keys are column numbers ("1".."20"); labels are those of resident ``mapping.resident``."""
    files = sorted(root.glob("DAY_*.txt*"), key=lambda p: int(re.sub(r"\D", "", p.name.split(".")[0]) or 0))
    if not files:
        raise DatasetError(f"{root}: expected DAY_1.txt … (ARAS day files)")
    base = datetime.strptime(mapping.start_date, "%Y-%m-%d").replace(tzinfo=UTC)
    raw = RawData()
    for path in files:
        day = int(re.sub(r"\D", "", path.name.split(".")[0]))
        t0 = (base + timedelta(days=day - 1)).timestamp()
        text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        try:
            grid = np.array(text.split(), dtype=np.int64).reshape(-1, 22)
        except ValueError as exc:
            raise DatasetError(f"{path}: expected 22 integer columns per line") from exc
        for col in range(20):
            values = grid[:, col]
            # The first second of a day counts as a change, so each day starts from a known state.
            changes = np.flatnonzero(np.diff(values, prepend=-1) != 0)
            raw.events += [(t0 + float(i), str(col + 1), int(values[i])) for i in changes]
        labels = grid[:, 19 + mapping.resident]
        cuts = np.flatnonzero(np.diff(labels) != 0) + 1
        for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(labels)], strict=True):
            raw.intervals.append((t0 + float(s), t0 + float(e), str(int(labels[s]))))
    return raw


def read_ordonez(root: Path, mapping: DatasetMapping) -> RawData:
    """UCI ADL (Ordóñez) home A or B: ``*_Sensors.txt`` rows start, end, location, type, place and
    ``*_ADLs.txt`` rows start, end, activity; columns are separated by tabs or runs of spaces.
    Sensor keys are "Place/Location" (home B has three "Door" PIRs in different rooms)."""
    sense, act = _need(root, mapping.file("sensors", "OrdonezA_Sensors.txt"),
                       mapping.file("activities", "OrdonezA_ADLs.txt"))
    fmt = "%Y-%m-%d %H:%M:%S"
    raw = RawData()
    for parts in _split_rows(sense):
        if len(parts) >= 7:
            key = f"{parts[6]}/{parts[4]}"
            raw.events += [(_local(f"{parts[0]} {parts[1]}", fmt), key, True),
                           (_local(f"{parts[2]} {parts[3]}", fmt), key, False)]
    for parts in _split_rows(act):
        if len(parts) >= 5:
            raw.intervals.append((_local(f"{parts[0]} {parts[1]}", fmt), _local(f"{parts[2]} {parts[3]}", fmt),
                                  parts[4]))
    return raw


def _split_rows(path: Path) -> Iterable[list[str]]:
    for line in path.read_text(encoding="latin-1").splitlines():
        parts = line.split()
        if parts and parts[0][:4].isdigit():
            yield parts


def read_ucami(root: Path, mapping: DatasetMapping) -> RawData:
    """UCAmI Cup 2018: ``<day>/<day>-{A,B,C}/<day>-X-sensors.csv`` (TIMESTAMP;OBJECT;STATE;HABITANT) and
    ``-activity.csv`` (DATE BEGIN;DATE END;ACTIVITY;HABITANT), under the folder given (e.g. Data/Training)."""
    fmt = "%Y/%m/%d %H:%M:%S.%f"
    sensors = sorted(root.glob(mapping.file("sensors", "*/*/*-sensors.csv")))
    if not sensors:
        raise DatasetError(f"{root}: expected <day>/<day>-A/<day>-A-sensors.csv files (UCAmI Cup 2018)")
    raw = RawData()
    for path in sensors:
        for row in _csv_rows(path):
            raw.events.append((_local(row[0], fmt), row[1], row[2]))
        act = path.with_name(path.name.replace("-sensors.csv", "-activity.csv"))
        if act.exists():
            raw.intervals += [(_local(r[0], fmt), _local(r[1], fmt), r[2]) for r in _csv_rows(act)]
    return raw


def _csv_rows(path: Path) -> Iterable[list[str]]:
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = [p.strip() for p in line.split(";")]
        if lineno == 1 or len(parts) < 3 or not parts[0][:4].isdigit():
            continue
        yield parts


def read_casas(path: Path, mapping: DatasetMapping) -> RawData:
    """CASAS text: ``date time sensor value [activity begin|end]``; activity names are lower-cased."""
    if path.is_dir():
        path = path / mapping.file("data", "data")
        if not path.exists() and path.with_suffix(".txt").exists():
            path = path.with_suffix(".txt")
    raw = RawData()
    open_acts: dict[str, float] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if len(parts) < 4:
            continue
        try:
            fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in parts[1] else "%Y-%m-%d %H:%M:%S"
            ts = _local(f"{parts[0]} {parts[1]}", fmt)
        except ValueError as exc:
            raise DatasetError(f"{path}:{lineno}: bad timestamp") from exc
        raw.events.append((ts, parts[2], parts[3]))
        if len(parts) >= 6:
            act, edge = parts[4].lower(), parts[5].lower()
            if edge == "begin":
                open_acts[act] = ts
            elif edge == "end" and act in open_acts:
                raw.intervals.append((open_acts.pop(act), ts, act))
    return raw


def read_recorder_jsonl(root: Path, mapping: DatasetMapping) -> RawData:
    """The hub's recorder history exported as JSONL rows {"ts", "entity_id", "value"} plus household labels
    {"start", "end", "label"}; entity ids are mapped through the mapping file's ``sensors``."""
    history, labels = _need(root, mapping.file("history", "history.jsonl"), mapping.file("labels", "labels.jsonl"))
    raw = RawData()
    raw.events = [(float(r["ts"]), str(r["entity_id"]), r["value"]) for r in _jsonl(history)]
    raw.intervals = [(iv.start, iv.end, iv.label) for iv in load_labels(labels)]
    return raw


HA_SCHEMA_NOTE = (
    "Home Assistant recorder schema as of SCHEMA_VERSION 41 (homeassistant/components/recorder/db_schema.py): "
    "states(state, last_updated_ts, metadata_id) joined to states_meta(metadata_id, entity_id)"
)
_HA_NO_STATE = frozenset({"unavailable", "unknown", ""})


def read_home_assistant(root: Path, mapping: DatasetMapping) -> RawData:
    """A Home Assistant recorder database (``home-assistant_v2.db``, opened read-only): the state changes of
    the entities the mapping names (``HA_SCHEMA_NOTE``), plus household labels from a JSONL file beside it
    (Home Assistant keeps no activity labels).  Rows whose state is unavailable/unknown are skipped."""
    db = root if root.is_file() else root / mapping.file("database", "home-assistant_v2.db")
    if not db.exists():
        raise DatasetError(f"{db}: no Home Assistant recorder database")
    entities = sorted(mapping.sensors)
    raw = RawData()
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
            marks = ",".join("?" * len(entities))
            rows = conn.execute(
                "SELECT m.entity_id, s.state, s.last_updated_ts FROM states s "
                "JOIN states_meta m ON s.metadata_id = m.metadata_id "
                f"WHERE m.entity_id IN ({marks}) AND s.last_updated_ts IS NOT NULL "
                "ORDER BY s.last_updated_ts, s.state_id",
                entities,
            ).fetchall()
    except sqlite3.Error as exc:
        raise DatasetError(f"{db}: not a Home Assistant recorder database ({exc}); {HA_SCHEMA_NOTE}") from exc
    raw.events = [(float(ts), str(eid), state) for eid, state, ts in rows if str(state).lower() not in _HA_NO_STATE]
    labels = db.parent / mapping.file("labels", "labels.jsonl")
    if labels.exists():
        raw.intervals = [(iv.start, iv.end, iv.label) for iv in load_labels(labels)]
    return raw


READERS: dict[str, Callable[[Path, DatasetMapping], RawData]] = {
    "kasteren": read_kasteren,
    "kasteren_tl": read_kasteren_tl,
    "aras": read_aras,
    "ordonez": read_ordonez,
    "ucami": read_ucami,
    "casas": read_casas,
    "recorder_jsonl": read_recorder_jsonl,
    "home_assistant": read_home_assistant,
}
# Formats whose rows are firing intervals (already on/off); the others carry raw values the mapping judges.
_DEFAULT_ACTIVE: dict[str, Callable[[str, Any], bool]] = {
    "casas": lambda cap, v: str(v).strip().upper() in CASAS_ACTIVE_VALUES,
    "ucami": lambda cap, v: str(v).strip().lower() in {"movement", "open", "pressure", "present"},
    "aras": lambda cap, v: float(v) != 0,
}
# Formats that keep only changes of a source's active state (value streams sampled or repeated).
_CHANGES_ONLY = frozenset({"aras", "home_assistant", "recorder_jsonl"})


def assemble(name: str, raw: RawData, mapping: DatasetMapping, where: str) -> Dataset:
    """Apply the mapping: sensor values -> channel events, activity keys -> activity names.  Sensors and
    labels the mapping does not name are an error (all of them listed) unless its ``unmapped`` says
    otherwise.  Intervals keep activity *names*; ``Dataset.relabel(mapping.scene_of)`` makes them scenes."""
    default = _DEFAULT_ACTIVE.get(mapping.format, is_active)
    if mapping.active_values is not None:
        values = mapping.active_values
        default = lambda cap, v: str(v).strip().lower() in values  # noqa: E731
    unknown_sensors: set[str] = set()
    events: list[DeviceEvent] = []
    last: dict[str, bool] = {}
    changes_only = mapping.format in _CHANGES_ONLY
    for ts, key, value in sorted(raw.events, key=lambda r: r[0]):
        try:
            sensor = mapping.sensor(key)
        except KeyError:
            unknown_sensors.add(key)
            continue
        if sensor is None:
            continue
        active = sensor.is_active(value, default)
        if changes_only:
            if last.get(key) is active:
                continue
            last[key] = active
        events.append(DeviceEvent(ts, sensor.area, sensor.capability, active, key))
    if unknown_sensors:
        listed = ", ".join(sorted(unknown_sensors)[:20])
        raise DatasetError(f"{where}: unknown sensor id(s) {listed}: not in mapping {mapping.path} "
                           "(add them under sensors:, or set unmapped: {sensors: ignore})")
    intervals = [Interval(s, e, mapping.activity_name(k)) for s, e, k in raw.intervals if e > s]
    unknown_acts = set()
    for iv in intervals:
        try:
            mapping.scene_of(iv.label)
        except KeyError:
            unknown_acts.add(iv.label)
    if unknown_acts:
        raise DatasetError(f"{where}: activity label(s) {', '.join(sorted(unknown_acts)[:20])} not in mapping "
                           f"{mapping.path} (add them under activities:, or set unmapped: {{activities: SCENE}})")
    if not events:
        raise DatasetError(f"{where}: no data rows on mapped sensors")
    first = min(events[0].ts, min((iv.start for iv in intervals), default=events[0].ts))
    end = max(events[-1].ts, max((iv.end for iv in intervals), default=events[-1].ts))
    if mapping.period == "labelled" and intervals:
        first = min(iv.start for iv in intervals)
        end = max(iv.end for iv in intervals)
    meta: dict[str, Any] = {"path": where, "mapping": mapping.path, "unlabelled": mapping.unlabelled,
                            "scene_of": mapping.scene_of, "dataset": mapping.dataset or name}
    return Dataset(name, events, intervals, _midnight(first), end, meta)


def load_dataset(data: str | Path, mapping: DatasetMapping | str | Path, scenes: bool = True) -> Dataset:
    """Read a dataset folder (or file) with a mapping (a ``DatasetMapping`` or the path of a mapping file).

    ``scenes``: relabel intervals as household scenes (else keep the dataset's activity names)."""
    m = mapping if isinstance(mapping, DatasetMapping) else load_mapping(mapping)
    root = Path(data)
    if not root.exists():
        raise DatasetError(f"{root}: no such file or folder")
    ds = assemble(m.format, READERS[m.format](root, m), m, str(root))
    return ds.to_scenes() if scenes else ds


def builtin_mapping(name: str) -> DatasetMapping:
    """One of the mapping files shipped with the hub (``hub/recognition/mappings/NAME.yaml``)."""
    return load_mapping(BUILTIN_MAPPINGS / f"{name}.yaml")


def load_kasteren(path: str | Path, mapping: DatasetMapping | str | Path | None = None) -> Dataset:
    """van Kasteren files in a folder, activity names kept; house A's built-in mapping unless one is given."""
    ds = load_dataset(path, mapping if mapping is not None else builtin_mapping("kasteren_a"), scenes=False)
    ds.name = "kasteren"
    return ds


def load_casas(path: str | Path, sensor_areas: dict[str, str] | None = None) -> Dataset:
    """A CASAS text file (aruba/milan) with the built-in mapping: capability from the sensor-name prefix,
    area from ``sensor_areas`` (CASAS ships floor plans, not area names; "other" when absent); activity
    names kept (lower-cased).  Temperature and battery sensors are skipped."""
    m = builtin_mapping("casas")
    m.prefix_areas = dict(sensor_areas or {})
    ds = assemble("casas", read_casas(Path(path), m), m, str(path))
    return ds


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
