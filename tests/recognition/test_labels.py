"""The household label store: validation, overlaps, persistence, the legacy JSONL file, bounds."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qilu_hub import Hub
from qilu_hub.recognition.labels import (
    EVENT_LABELS_UPDATED,
    LABELS_FILE,
    MAX_DURATION,
    LabelError,
    LabelStore,
    stored_labels,
    training_intervals,
)

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def _start(config_dir: Path, clock: Clock, **kwargs: object) -> tuple[Hub, LabelStore]:
    hub = Hub(config_dir, {}, recorder=False)
    store = LabelStore(clock=clock, **kwargs)  # type: ignore[arg-type]
    hub.add_component(store)
    await hub.async_start()
    return hub, store


@pytest.fixture
async def labelled(tmp_path: Path) -> AsyncIterator[tuple[Hub, LabelStore, Clock]]:
    clock = Clock()
    hub, store = await _start(tmp_path, clock)
    yield hub, store, clock
    await hub.async_stop()


async def test_add_closed_and_persisted_across_restart(tmp_path: Path) -> None:
    clock = Clock()
    hub, store = await _start(tmp_path, clock)
    label = store.add("cooking", NOW - 3600, NOW - 1800, "pasta", created_by="alice")
    assert (label.scene, label.start, label.end, label.note, label.created_by) == (
        "cooking", NOW - 3600, NOW - 1800, "pasta", "alice")
    await hub.async_stop()
    hub, store = await _start(tmp_path, clock)
    try:
        assert [lb.to_dict() for lb in store.labels()] == [label.to_dict()]
    finally:
        await hub.async_stop()


async def test_iso_times_with_offset(labelled: tuple[Hub, LabelStore, Clock]) -> None:
    _, store, clock = labelled
    clock.now = 1_764_270_000.0  # 2025-11-27T19:00:00Z
    label = store.add("eating", "2025-11-27T18:00:00+01:00", "2025-11-27T17:30:00Z")
    assert (label.start, label.end) == (1_764_262_800.0, 1_764_264_600.0)
    with pytest.raises(LabelError) as err:
        store.add("eating", "2025-11-27T10:00:00", "2025-11-27T11:00:00Z")
    assert err.value.field == "start" and "UTC offset" in err.value.message


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"scene": "partying"}, "scene"),
    ({"scene": 3}, "scene"),
    ({"scene": "cooking", "start": NOW + 3600}, "start"),
    ({"scene": "cooking", "start": NOW - 400 * 86400, "end": NOW - 399 * 86400}, "start"),
    ({"scene": "cooking", "start": NOW - 60, "end": NOW - 120}, "end"),
    ({"scene": "cooking", "start": NOW - 60, "end": NOW - 60}, "end"),
    ({"scene": "cooking", "start": NOW - 60, "end": NOW + 3600}, "end"),
    ({"scene": "away", "start": NOW - 20 * 86400, "end": NOW - 1}, "end"),
    ({"scene": "cooking", "start": "yesterday"}, "start"),
    ({"scene": "cooking", "start": True}, "start"),
    ({"scene": "cooking", "start": float("nan")}, "start"),
    ({"scene": "cooking", "note": "x" * 201}, "note"),
    ({"scene": "cooking", "note": 5}, "note"),
])
async def test_bad_input_names_the_field_and_changes_nothing(
    labelled: tuple[Hub, LabelStore, Clock], kwargs: dict[str, object], field: str
) -> None:
    hub, store, _ = labelled
    with pytest.raises(LabelError) as err:
        store.add(**kwargs)  # type: ignore[arg-type]
    assert err.value.code == "invalid_format"
    assert err.value.field == field
    assert len(store) == 0 and stored_labels(hub.storage) == []


async def test_open_label_then_stop(labelled: tuple[Hub, LabelStore, Clock]) -> None:
    hub, store, clock = labelled
    events: list[object] = []
    hub.bus.listen(EVENT_LABELS_UPDATED, events.append)
    label = store.add("cooking", created_by="bob")
    assert label.start == NOW and label.end is None and store.open_label() == label
    clock.now += 600
    assert store.intervals()[0].end == NOW + 600  # an open label counts up to now
    stopped = store.stop()
    assert stopped.id == label.id and stopped.end == NOW + 600 and store.open_label() is None
    assert stored_labels(hub.storage)[0].end == NOW + 600
    with pytest.raises(LabelError) as err:
        store.stop()
    assert err.value.code == "not_found"
    assert len(events) == 2


async def test_new_open_label_ends_the_open_one(labelled: tuple[Hub, LabelStore, Clock]) -> None:
    _, store, clock = labelled
    cooking = store.add("cooking")
    clock.now += 900
    eating = store.add("eating")
    assert store.get(cooking.id).end == NOW + 900  # type: ignore[union-attr]
    assert store.open_label() == eating


@pytest.mark.parametrize(("start", "end"), [
    (NOW - 3000, NOW - 2000),  # inside
    (NOW - 4000, NOW - 3000),  # overlaps the start
    (NOW - 2000, NOW - 1000),  # overlaps the end
    (NOW - 5000, NOW - 100),  # covers
    (NOW - 2000, None),  # an open label starting inside
])
async def test_overlap_is_a_conflict_naming_the_label(
    labelled: tuple[Hub, LabelStore, Clock], start: float, end: float | None
) -> None:
    _, store, _ = labelled
    first = store.add("sleeping", NOW - 3600, NOW - 1800)
    with pytest.raises(LabelError) as err:
        store.add("bathing", start, end)
    assert err.value.code == "conflict" and err.value.conflicts == (first.id,)
    assert len(store) == 1
    # Touching is not overlapping.
    store.add("waking_up", NOW - 1800, NOW - 1000)
    store.add("relaxing", NOW - 4000, NOW - 3600)


async def test_closed_label_inside_an_open_one_conflicts(labelled: tuple[Hub, LabelStore, Clock]) -> None:
    _, store, _ = labelled
    relaxing = store.add("relaxing", NOW - 3600)
    with pytest.raises(LabelError) as err:
        store.add("eating", NOW - 1800, NOW - 900)
    assert err.value.conflicts == (relaxing.id,)
    with pytest.raises(LabelError):
        store.add("eating", NOW - 7200)  # an open one starting before the open one
    store.add("eating", NOW - 7200, NOW - 3600)  # before it: fine


async def test_delete(labelled: tuple[Hub, LabelStore, Clock]) -> None:
    hub, store, _ = labelled
    label = store.add("away", NOW - 7200, NOW - 60)
    assert store.delete(label.id) == label
    assert len(store) == 0 and stored_labels(hub.storage) == []
    with pytest.raises(LabelError) as err:
        store.delete(label.id)
    assert err.value.code == "not_found" and err.value.field == "id"


async def test_bounded(tmp_path: Path) -> None:
    clock = Clock()
    hub, store = await _start(tmp_path, clock, max_labels=3)
    try:
        for i in range(3):
            store.add("cooking", NOW - 1000 * (i + 1), NOW - 1000 * (i + 1) + 500)
        with pytest.raises(LabelError) as err:
            store.add("cooking", NOW - 100, NOW - 50)
        assert err.value.code == "full"
        assert len(store) == 3
    finally:
        await hub.async_stop()


async def test_open_label_counts_at_most_max_duration() -> None:
    from qilu_hub.recognition.labels import Label

    label = Label("a", "away", NOW, None)
    assert training_intervals([label], NOW + 30 * 86400)[0].end == NOW + MAX_DURATION


async def test_legacy_jsonl_imported_once_and_deletions_stick(tmp_path: Path) -> None:
    rows = [{"start": NOW - 7200, "end": NOW - 3600, "label": "cooking"},
            {"start": NOW - 3600, "end": NOW - 1800, "label": "eating"}]
    text = "\n".join(json.dumps(r) for r in rows) + "\n{not json\n" + json.dumps({"start": 5, "end": 1, "label": "x"})
    (tmp_path / LABELS_FILE).write_text(text + "\n")
    clock = Clock()
    hub, store = await _start(tmp_path, clock)
    try:
        got = sorted((lb.scene, lb.start, lb.end, lb.created_by) for lb in store.labels())
        assert got == [("cooking", NOW - 7200, NOW - 3600, "file:recognition_labels.jsonl"),
                       ("eating", NOW - 3600, NOW - 1800, "file:recognition_labels.jsonl")]
        store.delete(next(lb.id for lb in store.labels() if lb.scene == "eating"))
    finally:
        await hub.async_stop()
    hub, store = await _start(tmp_path, clock)  # same file: not imported again
    try:
        assert [lb.scene for lb in store.labels()] == ["cooking"]
    finally:
        await hub.async_stop()
    with (tmp_path / LABELS_FILE).open("a") as fh:  # the household edits the file: new rows come in
        fh.write(json.dumps({"start": NOW - 600, "end": NOW - 300, "label": "bathing"}) + "\n")
    hub, store = await _start(tmp_path, clock)
    try:
        assert sorted(lb.scene for lb in store.labels()) == ["bathing", "cooking", "eating"]
        assert len({lb.id for lb in store.labels()}) == 3
    finally:
        await hub.async_stop()


def test_acknowledged_label_survives_sigkill(tmp_path: Path) -> None:
    """A child process adds labels and is killed; every label it printed as added is in the database."""
    script = textwrap.dedent(f"""
        import asyncio, sys, time
        from hub import Hub
        from hub.recognition.labels import LabelStore
        async def main():
            hub = Hub({str(tmp_path)!r}, {{}}, recorder=False)
            store = LabelStore()
            hub.add_component(store)
            await hub.async_start()
            t = time.time() - 86400
            i = 0
            while True:
                label = store.add("cooking", t + i * 10, t + i * 10 + 5)
                print(label.id, flush=True)
                i += 1
        asyncio.run(main())
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    acknowledged = [proc.stdout.readline().strip() for _ in range(40)]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    acknowledged += [line.strip() for line in proc.stdout if line.strip()]
    from qilu_hub.storage import RegistryStore

    storage = RegistryStore(tmp_path / "registry.db")
    try:
        stored = {lb.id for lb in stored_labels(storage)}
    finally:
        storage.close()
    assert set(acknowledged) <= stored
    assert len(acknowledged) >= 40


async def test_scenes_include_the_loaded_models_labels(labelled: tuple[Hub, LabelStore, Clock]) -> None:
    hub, store, _ = labelled

    class Recognizer:  # what the store reads of the scene_recognition component: its model's labels
        name = "scene_recognition"

        class model:
            labels = ("idle", "movie_night")

    with pytest.raises(LabelError):
        store.add("movie_night")
    hub.components["scene_recognition"] = Recognizer()  # type: ignore[assignment]
    assert store.scenes()[-1] == "movie_night" and "guests" in store.scenes()
    assert store.add("movie_night").scene == "movie_night"


async def test_overlap_check_matches_brute_force(labelled: tuple[Hub, LabelStore, Clock]) -> None:
    """The indexed overlap check (sorted labels, bounded look-back) agrees with comparing against all labels."""
    import random

    _, store, clock = labelled
    rng = random.Random(5)
    accepted = 0
    for _ in range(400):
        clock.now += rng.choice([0, 30, 600])
        begin = clock.now - rng.uniform(0, 86400)
        end = None if rng.random() < 0.15 else min(clock.now, begin + rng.choice([60, 1800, 7200, 40000]))
        current = store.open_label()
        expected = set()
        for other in store.labels():
            if other is current and end is None and begin > other.start:
                continue
            other_end = float("inf") if other.end is None else other.end
            if begin < other_end and other.start < (float("inf") if end is None else end):
                expected.add(other.id)
        try:
            store.add("idle", begin, end)
            accepted += 1
            assert not expected
        except LabelError as err:
            assert err.code == "conflict"
            assert set(err.conflicts) == expected
    assert accepted > 20
    ordered = sorted(store.labels(), key=lambda lb: lb.start)
    for a, b in itertools.pairwise(ordered):
        assert a.end is not None and a.end <= b.start  # nothing overlaps, whatever was tried


async def test_update_is_checked_like_add_against_all_but_itself(tmp_path: Path) -> None:
    """Random corrections: refused exactly when the corrected label would overlap another (brute force),
    a refusal changes nothing, and what was accepted survives a restart."""
    import random

    clock = Clock()
    hub, store = await _start(tmp_path, clock)
    events: list[dict[str, object]] = []
    hub.bus.listen("recognition_labels_updated", lambda e: events.append(e.data))
    for k in range(30):
        store.add("idle", NOW - 86400 + k * 2000, NOW - 86400 + k * 2000 + 1000)
    rng = random.Random(7)
    accepted = 0
    for _ in range(300):
        target = rng.choice(store.labels())
        begin = target.start + rng.choice([-1500, -500, 0, 300])
        end = None if rng.random() < 0.1 else begin + rng.choice([200, 900, 2500])
        expected = {
            other.id for other in store.labels()
            if other.id != target.id
            and begin < (float("inf") if other.end is None else other.end)
            and other.start < (float("inf") if end is None else end)
        }
        before = [lb.to_dict() for lb in store.labels()]
        try:
            edited = store.update(target.id, {"start": begin, "end": end, "scene": "cooking"})
        except LabelError as err:
            assert err.code == "conflict" and set(err.conflicts) == expected
            assert [lb.to_dict() for lb in store.labels()] == before
            continue
        assert not expected
        assert (edited.id, edited.start, edited.end, edited.scene) == (target.id, begin, end, "cooking")
        assert events[-1] == {"added": [target.id], "deleted": []}
        accepted += 1
    assert accepted > 20
    ordered = sorted(store.labels(), key=lambda lb: lb.start)
    for a, b in itertools.pairwise(ordered):
        assert a.end is not None and a.end <= b.start
    await hub.async_stop()
    hub, reloaded = await _start(tmp_path, clock)
    try:
        assert [lb.to_dict() for lb in reloaded.labels()] == [lb.to_dict() for lb in store.labels()]
    finally:
        await hub.async_stop()


async def test_update_refuses_unknown_ids_fields_and_empty_changes(labelled: tuple[Hub, LabelStore, Clock]) -> None:
    _, store, _ = labelled
    label = store.add("bathing", NOW - 3600, NOW - 3000)
    for label_id, changes, code, field in (
        ("nope", {"note": "x"}, "not_found", "id"),
        (label.id, {"colour": "red"}, "invalid_format", "colour"),
        (label.id, {"end": NOW - 4000}, "invalid_format", "end"),
        (label.id, {"note": "x" * 201}, "invalid_format", "note"),
        (label.id, {}, "invalid_format", None),
    ):
        with pytest.raises(LabelError) as err:
            store.update(label_id, changes)
        assert (err.value.code, err.value.field) == (code, field), changes
    assert store.labels() == [label]
