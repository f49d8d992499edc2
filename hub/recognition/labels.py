"""Household labels: "we were cooking from 18:10 to 18:45", given through the API or dashboard.

A label is an interval of one scene. It may be *open* ("cooking, from now until I say stop"): then it
counts up to now (at most ``MAX_DURATION``) until it is ended. Labels live in the registry database
(``hub.storage``, committed at once with ``synchronous=FULL``), so a label the API acknowledged survives
a SIGKILL. The older hand-written ``CONFIG_DIR/recognition_labels.jsonl`` is still read: its rows are
imported into the store once per version of the file, and training reads it as well.

Overlaps are refused, so one moment has at most one label: a new label that overlaps another is a
``conflict`` naming it, except that starting a new open label ends the open one at the new start
("now we are eating" ends "cooking").
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .interval import Interval
from .mapping import SCENES

if TYPE_CHECKING:
    from qilu_hub import Hub
    from qilu_hub.storage import RegistryStore

_LOGGER = logging.getLogger(__name__)

KIND = "recognition_label"
IMPORT_KIND = "recognition_label_import"
LABELS_FILE = "recognition_labels.jsonl"
EVENT_LABELS_UPDATED = "recognition_labels_updated"

MAX_LABELS = 20_000  # years of a household's labels; bounds memory, the database and list answers
MAX_DURATION = 14 * 86400.0  # a holiday "away" fits; an open label forgotten for longer stops counting
MAX_AGE = 366 * 86400.0  # older than any recorder history kept, so useless for training
FUTURE_GRACE = 60.0  # a client clock a little ahead is not an error
MAX_NOTE = 200
EDITABLE = frozenset({"scene", "start", "end", "note"})
INF = float("inf")


class LabelError(ValueError):
    """A label request that cannot be done. ``code``: invalid_format, not_found, conflict or full."""

    def __init__(self, code: str, message: str, field: str | None = None, conflicts: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.conflicts = tuple(conflicts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.conflicts:
            out["conflicts"] = list(self.conflicts)
        return out


@dataclass(frozen=True, slots=True)
class Label:
    id: str
    scene: str
    start: float
    end: float | None  # None: open, "until I say stop"
    note: str = ""
    created_by: str = ""
    created: float = 0.0

    def effective_end(self, now: float) -> float:
        if self.end is not None:
            return self.end
        return max(self.start, min(now, self.start + MAX_DURATION))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "scene": self.scene, "start": self.start, "end": self.end, "note": self.note,
                "created_by": self.created_by, "created": self.created}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Label:
        end = data.get("end")
        return cls(str(data["id"]), str(data["scene"]), float(data["start"]), None if end is None else float(end),
                   str(data.get("note") or ""), str(data.get("created_by") or ""), float(data.get("created") or 0))


def parse_time(value: Any, field: str) -> float:
    """Epoch seconds, or an ISO 8601 time with a UTC offset ("2026-11-27T18:10:00+01:00", "...Z")."""
    if isinstance(value, bool):
        raise LabelError("invalid_format", f"{field} must be epoch seconds or an ISO 8601 time", field)
    if isinstance(value, int | float):
        ts = float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise LabelError("invalid_format", f"{field}: {value!r} is not an ISO 8601 time", field) from None
        if parsed.tzinfo is None:  # a naive time would silently mean the hub's zone, or UTC
            raise LabelError("invalid_format", f"{field}: {value!r} needs a UTC offset (e.g. +01:00 or Z)", field)
        ts = parsed.timestamp()
    else:
        raise LabelError("invalid_format", f"{field} must be epoch seconds or an ISO 8601 time", field)
    if ts != ts or ts in (float("inf"), float("-inf")):
        raise LabelError("invalid_format", f"{field} must be a finite number", field)
    return ts


def _overlaps(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    return a_start < b_end and b_start < a_end


def _file_id(start: float, end: float, scene: str) -> str:
    digest = hashlib.sha256(f"{start!r}|{end!r}|{scene}".encode()).hexdigest()
    return "file-" + digest[:16]


def read_labels_file(path: Path) -> list[Label]:
    """Rows ``{"start": epoch, "end": epoch, "label": scene}`` of a hand-written labels JSONL file.

    Bad rows are skipped with a log line naming the line (a typo must not lose the other rows).
    Ids are derived from the content, so importing the same row twice gives the same label.
    """
    out: list[Label] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                start, end = float(row["start"]), float(row["end"])
                scene = str(row.get("label", row.get("scene")))
                if not end > start or scene in ("", "None"):
                    raise ValueError("needs start < end and a label")
            except (ValueError, KeyError, TypeError) as err:
                _LOGGER.warning("%s:%d: label row skipped: %s", path, lineno, err)
                continue
            out.append(Label(_file_id(start, end, scene), scene, start, end, str(row.get("note") or ""),
                             f"file:{path.name}", 0.0))
    return out


def stored_labels(storage: RegistryStore) -> list[Label]:
    """The labels in a registry database, oldest first (training reads them without starting a hub)."""
    labels = []
    for key, data in storage.load(KIND).items():
        try:
            labels.append(Label.from_dict({**data, "id": key}))
        except (KeyError, TypeError, ValueError) as err:
            _LOGGER.warning("stored label %s unreadable, ignored: %s", key, err)
    return sorted(labels, key=lambda lb: (lb.start, lb.id))


def training_intervals(labels: Iterable[Label], now: float) -> list[Interval]:
    """Intervals for ``Dataset``: open labels count up to now; duplicates (a file row also imported) once."""
    seen: set[tuple[float, float, str]] = set()
    out = []
    for label in labels:
        key = (label.start, label.effective_end(now), label.scene)
        if key not in seen and key[1] > key[0]:
            seen.add(key)
            out.append(Interval(*key))
    return sorted(out, key=lambda iv: iv.start)


class LabelStore:
    """Hub component ``recognition_labels``: validated, persisted household labels.

    ``scenes()``: what may be labelled: the hub's scene list plus the labels of the loaded model.
    """

    name = "recognition_labels"

    def __init__(self, *, clock: Callable[[], float] = time.time, max_labels: int = MAX_LABELS,
                 labels_file: Path | None = None) -> None:
        self.clock = clock
        self.max_labels = max_labels
        self._labels_file = labels_file
        self._labels: dict[str, Label] = {}
        # Sorted by (start, id), kept in step with _labels: listing and the overlap check then look at
        # the few labels near the new one instead of all 20,000.
        self._keys: list[tuple[float, str]] = []
        self._order: list[Label] = []
        self._longest = 0.0  # longest closed label ever stored: how far back an overlap can start
        self._open: dict[str, Label] = {}
        self._hub: Hub | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def async_start(self, hub: Hub) -> None:
        self._hub = hub
        self._labels, self._keys, self._order, self._longest, self._open = {}, [], [], 0.0, {}
        for label in stored_labels(hub.storage):
            self._remember(label)
        path = self._labels_file or hub.config_dir / LABELS_FILE
        if path.is_file():
            try:
                self._import_file(path)
            except OSError as err:  # an unreadable file costs its labels, not the hub
                _LOGGER.error("household labels %s not imported: %s", path, err)

    async def async_stop(self) -> None:
        pass  # every change is already committed; the API may still answer until it stops

    def _import_file(self, path: Path) -> None:
        """Import the hand-written file once per content (a label deleted since stays deleted)."""
        assert self._hub is not None
        storage = self._hub.storage
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        done = storage.get(IMPORT_KIND, path.name)  # by name: a moved config dir is not imported again
        if done is not None and done.get("sha256") == digest:
            return
        new = [lb for lb in read_labels_file(path) if lb.id not in self._labels]
        new = new[: max(0, self.max_labels - len(self._labels))]
        with storage.transaction() as conn:
            for label in new:
                storage.put(KIND, label.id, label.to_dict(), conn)
            storage.put(IMPORT_KIND, path.name, {"sha256": digest, "imported": len(new)}, conn)
        for label in new:
            self._remember(label)
        _LOGGER.info("imported %d household labels from %s", len(new), path)

    # -- queries ------------------------------------------------------------------------
    def scenes(self) -> list[str]:
        known = list(SCENES)
        recognizer = self._hub.components.get("scene_recognition") if self._hub is not None else None
        model = getattr(recognizer, "model", None)
        for label in getattr(model, "labels", ()) or ():
            if label not in known:
                known.append(str(label))
        return known

    def get(self, label_id: str) -> Label | None:
        return self._labels.get(label_id)

    def _remember(self, label: Label) -> None:
        self._forget(label.id)
        self._labels[label.id] = label
        key = (label.start, label.id)
        i = bisect.bisect_left(self._keys, key)
        self._keys.insert(i, key)
        self._order.insert(i, label)
        if label.end is None:
            self._open[label.id] = label
        else:
            self._longest = max(self._longest, label.end - label.start)

    def _forget(self, label_id: str) -> None:
        old = self._labels.pop(label_id, None)
        self._open.pop(label_id, None)
        if old is not None:
            i = bisect.bisect_left(self._keys, (old.start, old.id))
            del self._keys[i], self._order[i]

    def open_label(self) -> Label | None:
        # The API keeps at most one open; should a database hold more, the latest-starting one counts.
        return max(self._open.values(), key=lambda lb: (lb.start, lb.id), default=None)

    def labels(self, limit: int | None = None, since: float | None = None) -> list[Label]:
        """Newest first."""
        if since is None:
            out = self._order[-limit:] if limit is not None else self._order[:]
            return out[::-1]
        now = self.clock()
        out = [lb for lb in reversed(self._order) if lb.effective_end(now) >= since]
        return out if limit is None else out[:limit]

    def intervals(self) -> list[Interval]:
        return training_intervals(self._labels.values(), self.clock())

    def __len__(self) -> int:
        return len(self._labels)

    # -- changes ------------------------------------------------------------------------
    def add(self, scene: Any, start: Any = None, end: Any = None, note: Any = "", created_by: str = "") -> Label:
        """Add a label; ``start`` None = now, ``end`` None = open. Returns the new label.

        Raises ``LabelError`` (nothing is changed then).
        """
        now = self.clock()
        begin = now if start is None else parse_time(start, "start")
        finish = None if end is None else parse_time(end, "end")
        note = self._checked(scene, note, begin, finish, now)
        if len(self._labels) >= self.max_labels:
            raise LabelError("full", f"{self.max_labels} labels stored; delete old ones first")
        current = self.open_label()
        # "now we are eating" ends "cooking": a new open label starting after the open one closes it.
        to_close = current if current is not None and finish is None and begin > current.start else None
        self._refuse_overlaps(begin, finish, skip={to_close.id} if to_close else set())
        label = Label(secrets.token_hex(8), scene, begin, finish, note, created_by, now)
        closed = replace(to_close, end=min(begin, to_close.start + MAX_DURATION)) if to_close else None
        self._commit([label] + ([closed] if closed else []), [])
        return label

    def update(self, label_id: Any, changes: Mapping[str, Any]) -> Label:
        """Correct a stored label: any of ``scene``, ``start``, ``end`` (None = open again), ``note``.

        The result is checked like a new label, against every label but itself. Raises ``LabelError``.
        """
        label = self._labels.get(label_id) if isinstance(label_id, str) else None
        if label is None:
            raise LabelError("not_found", f"no label {label_id!r}", "id")
        unknown = set(changes) - EDITABLE
        if unknown:
            raise LabelError("invalid_format", f"unknown field(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])
        if not changes:
            raise LabelError("invalid_format", f"nothing to change; give any of {', '.join(sorted(EDITABLE))}")
        now = self.clock()
        scene = changes.get("scene", label.scene)
        begin = parse_time(changes["start"], "start") if "start" in changes else label.start
        if "end" in changes:
            finish = None if changes["end"] is None else parse_time(changes["end"], "end")
        else:
            finish = label.end
        note = self._checked(scene, changes.get("note", label.note), begin, finish, now)
        self._refuse_overlaps(begin, finish, skip={label.id})
        edited = replace(label, scene=scene, start=begin, end=finish, note=note)
        self._commit([edited], [])
        return edited

    def _checked(self, scene: Any, note: Any, begin: float, finish: float | None, now: float) -> str:
        """Validate one label's fields; returns the note (None becomes "")."""
        if not isinstance(scene, str) or scene not in self.scenes():
            raise LabelError("invalid_format", f"scene must be one of: {', '.join(self.scenes())}", "scene")
        if note is None:
            note = ""
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise LabelError("invalid_format", f"note must be a string of at most {MAX_NOTE} characters", "note")
        if begin > now + FUTURE_GRACE:
            raise LabelError("invalid_format", "start is in the future", "start")
        if begin < now - MAX_AGE:
            raise LabelError("invalid_format", f"start is more than {MAX_AGE / 86400:.0f} days ago", "start")
        if finish is not None:
            if finish <= begin:
                raise LabelError("invalid_format", "end must be after start", "end")
            if finish > now + FUTURE_GRACE:
                raise LabelError("invalid_format", "end is in the future (leave it out for an open label)", "end")
            if finish - begin > MAX_DURATION:
                raise LabelError("invalid_format", f"a label lasts at most {MAX_DURATION / 86400:.0f} days", "end")
        return note

    def _refuse_overlaps(self, begin: float, finish: float | None, skip: set[str]) -> None:
        new_end = INF if finish is None else finish
        current = self.open_label()
        candidates = [] if current is None else [current]
        # Only labels starting before the new end, and not longer ago than the longest label lasts, can overlap.
        j = bisect.bisect_left(self._keys, (new_end,)) - 1
        while j >= 0 and self._order[j].start >= begin - self._longest:
            if self._order[j] is not current:
                candidates.append(self._order[j])
            j -= 1
        # An open label runs until someone says stop: it overlaps everything after its start.
        conflicts = sorted(
            other.id for other in candidates
            if other.id not in skip and _overlaps(begin, new_end, other.start, INF if other.end is None else other.end)
        )
        if conflicts:
            raise LabelError("conflict", f"overlaps label(s) {', '.join(conflicts)}; delete or end them first",
                             "start", conflicts)

    def stop(self, end: Any = None) -> Label:
        """End the open label (at ``end``, default now)."""
        now = self.clock()
        current = self.open_label()
        if current is None:
            raise LabelError("not_found", "no label is open")
        finish = now if end is None else parse_time(end, "end")
        if finish > now + FUTURE_GRACE:
            raise LabelError("invalid_format", "end is in the future", "end")
        if finish <= current.start:
            raise LabelError("invalid_format", "end must be after the open label's start", "end")
        closed = replace(current, end=min(finish, current.start + MAX_DURATION))
        self._commit([closed], [])
        return closed

    def delete(self, label_id: Any) -> Label:
        label = self._labels.get(label_id) if isinstance(label_id, str) else None
        if label is None:
            raise LabelError("not_found", f"no label {label_id!r}", "id")
        self._commit([], [label])
        return label

    def _commit(self, upserts: list[Label], deletes: list[Label]) -> None:
        """Write first, then change memory and tell listeners: a failed write changes nothing."""
        assert self._hub is not None, "the label store is not started"
        storage = self._hub.storage
        with storage.transaction() as conn:
            for label in upserts:
                storage.put(KIND, label.id, label.to_dict(), conn)
            for label in deletes:
                storage.delete(KIND, label.id, conn)
        for label in upserts:
            self._remember(label)
        for label in deletes:
            self._forget(label.id)
        self._hub.bus.fire(EVENT_LABELS_UPDATED, {
            "added": [lb.id for lb in upserts], "deleted": [lb.id for lb in deletes]})
