"""Readers for Kasteren, CASAS and recorder exports, on tiny files written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qilu_hub.recognition.datasets import DatasetError, load_casas, load_kasteren, load_recorder_export
from qilu_hub.recognition.features import DEFAULT_SPEC, DeviceEvent

ACT = (
    "Start time: start of an activity\r\nactivity id list:\r\n1: 'leave house'\r\n\r\n"
    "Start time          \tEnd time            \tID\r\n--------------------\t--------------------\t--\r\n"
    "01-Mar-2008 08:00:00\t01-Mar-2008 08:05:00\t13\r\n"
    "01-Mar-2008 08:10:00\t01-Mar-2008 17:00:00\t1\r\n"
    "01-Mar-2008 12:00:00\t01-Mar-2008 12:03:00\t4\r\n"
)
SENSE = (
    "Sensor IDs are:\r\n    [ 1]    'Microwave'\r\n\r\n"
    "Start time          \tEnd time            \tID\tVal\r\n--------------------\t--------------------\t--\t---\r\n"
    "01-Mar-2008 08:01:00\t01-Mar-2008 08:02:00\t1\t1\r\n"
    "01-Mar-2008 08:10:00\t01-Mar-2008 08:10:05\t12\t1\r\n"
)


def write_kasteren(root: Path) -> Path:
    (root / "kasterenActData.txt").write_bytes(ACT.encode("latin-1"))
    (root / "kasterenSenseData.txt").write_bytes(SENSE.encode("latin-1"))
    return root


def test_kasteren_reader(tmp_path: Path) -> None:
    ds = load_kasteren(write_kasteren(tmp_path))
    assert [(e.area, e.capability, e.active) for e in ds.events[:2]] == [
        ("kitchen", "power", True),
        ("kitchen", "power", False),
    ]
    assert [iv.label for iv in ds.intervals] == ["prepare breakfast", "leave house", "use toilet"]
    times = ds.slices(DEFAULT_SPEC)
    assert times[0] - ds.start == 60.0  # slices start at midnight of the first day
    labels = dict(zip(times, ds.labels_at(times, DEFAULT_SPEC), strict=True))
    at = ds.start + 8 * 3600
    assert labels[at + 120] == "prepare breakfast"
    assert labels[at + 4 * 3600 + 120] == "use toilet"  # nested interval wins over the one around it
    assert labels[at + 5 * 3600] == "leave house"
    assert labels[at - 3600] == "idle"


def test_kasteren_rejects_unknown_sensor_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        load_kasteren(tmp_path)
    write_kasteren(tmp_path)
    (tmp_path / "kasterenSenseData.txt").write_text("01-Mar-2008 08:01:00\t01-Mar-2008 08:02:00\t99\t1\n")
    with pytest.raises(DatasetError, match="unknown sensor"):
        load_kasteren(tmp_path)


def test_casas_reader(tmp_path: Path) -> None:
    text = (
        "2010-11-04 05:40:51.303739 M004 ON Bed_to_Toilet begin\n"
        "2010-11-04 05:40:52.342105 M005 OFF\n"
        "2010-11-04 05:41:00 T001 21.5\n"
        "2010-11-04 05:43:45.1 D001 OPEN\n"
        "2010-11-04 05:43:50.1 M004 OFF Bed_to_Toilet end\n"
    )
    path = tmp_path / "aruba.txt"
    path.write_text(text)
    ds = load_casas(path, {"M004": "bathroom"})
    assert [(e.area, e.capability, e.active) for e in ds.events] == [
        ("bathroom", "motion", True),
        ("other", "motion", False),
        ("other", "door", True),
        ("bathroom", "motion", False),
    ]
    assert len(ds.intervals) == 1 and ds.intervals[0].label == "bed_to_toilet"
    assert ds.relabel(lambda s: "bathing").intervals[0].label == "bathing"


def test_recorder_export(tmp_path: Path) -> None:
    hist, labels = tmp_path / "h.jsonl", tmp_path / "l.jsonl"
    hist.write_text(json.dumps({"ts": 100.0, "area": "kitchen", "capability": "power", "value": "250"}) + "\n")
    labels.write_text(json.dumps({"start": 50, "end": 200, "label": "cooking"}) + "\n")
    ds = load_recorder_export(hist, labels)
    assert ds.events[0].active and ds.intervals[0].label == "cooking"
    labels.write_text("{not json\n")
    with pytest.raises(DatasetError):
        load_recorder_export(hist, labels)


def test_events_from_recorder_rows() -> None:
    from qilu_hub.recognition.datasets import events_from_history, recorder_dataset

    rows = [
        {"entity_id": "sensor.tv_power", "state": "90", "last_updated": 20.0},
        {"entity_id": "binary_sensor.kitchen_motion", "state": "on", "last_updated": 10.0},
        {"entity_id": "sensor.temperature", "state": "21", "last_updated": 15.0},
    ]
    channels = {"sensor.tv_power": ("living_room", "power"), "binary_sensor.kitchen_motion": ("kitchen", "motion")}
    events = events_from_history(rows, channels.get)
    assert [(e.ts, e.area, e.active) for e in events] == [(10.0, "kitchen", True), (20.0, "living_room", True)]
    assert recorder_dataset(events, []).start == 0.0
    with pytest.raises(DatasetError):
        recorder_dataset([], [])


def test_recorder_dataset_covers_labels_from_the_night_before_its_first_event() -> None:
    """History starting just after midnight must not drop the evening's labels (a time-of-day bug: training
    from labels failed in the first hours of each UTC day); labels from long before any history add nothing."""
    from qilu_hub.recognition.datasets import Interval, recorder_dataset

    day = 20 * 86400.0
    events = [DeviceEvent(day + 300, "kitchen", "motion", True, "m"),
              DeviceEvent(day + 900, "kitchen", "motion", False, "m")]
    evening = Interval(day - 7200, day - 3600, "sleeping")
    ds = recorder_dataset(events, [evening])
    assert ds.start == day - 86400
    assert "sleeping" in ds.labels_at(ds.slices(DEFAULT_SPEC), DEFAULT_SPEC)
    long_ago = Interval(day - 30 * 86400, day - 29 * 86400, "away")
    assert recorder_dataset(events, [long_ago, evening]).start == day - 86400


def test_history_keeps_only_changes_of_state_across_pages() -> None:
    """A power meter's 80 W then 85 W is one event: repeats would cut look-ahead intervals short."""
    from qilu_hub.recognition.datasets import events_from_history

    def resolve(entity_id: str) -> tuple[str, str] | None:
        return ("kitchen", "power") if entity_id.startswith("sensor.") else None

    rows = [{"entity_id": "sensor.kettle", "state": w, "last_updated": t}
            for t, w in ((1.0, 0.0), (2.0, 80.0), (3.0, 85.0), (4.0, 0.0), (5.0, 0.0), (6.0, 90.0))]
    rows.append({"entity_id": "light.unmapped", "state": "on", "last_updated": 2.5})
    whole = events_from_history(rows, resolve)
    assert [(e.ts, e.active) for e in whole] == [(1.0, False), (2.0, True), (4.0, False), (6.0, True)]
    state: dict[str, bool] = {}
    paged = events_from_history(rows[:3], resolve, state) + events_from_history(rows[2:6], resolve, state)
    assert paged == whole  # the row read twice at the page boundary is not an event again
