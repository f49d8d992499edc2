"""Mapping files (schema, line-numbered errors, unmapped policy) and every dataset reader they drive,
on small files the tests write themselves in each format (never the real datasets)."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import pytest

from qilu_hub.recognition.datasets import DatasetError, builtin_mapping, load_dataset
from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.mapping_file import MappingError, load_mapping, parse_mapping

ROOT = Path(__file__).resolve().parents[2]
BENCH_MAPPINGS = sorted((ROOT / "bench" / "datasets").glob("*.yaml"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- the file format ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key", "what"),
    [
        ("format: kasteren\nsensors:\n  '1': {area: kitchen, capability: smell}\n", 3, "sensors.1.capability",
         "must be one of"),
        ("format: kasteren\nunmaped: {sensors: ignore}\n", 2, "unmaped", "is not a known key"),
        ("format: kasteren\nsensors:\n  '1': {area: kitchen}\n", 3, "sensors.1", "needs area and capability"),
        ("format: kasteren\nsensors:\n  '1': {area: attic, capability: door}\n", 3, "sensors.1.area",
         "not a known area or synonym"),
        ("format: kasteren\nactivities:\n  sleep: napping\n", 3, "activities.sleep", "must be a scene"),
        ("format: csv\n", 1, "format", "must be one of"),
        ("format: kasteren\nsensors: [\n", 3, None, "is not valid YAML"),
    ],
)
def test_mapping_errors_name_line_and_key(text: str, line: int, key: str | None, what: str) -> None:
    with pytest.raises(MappingError) as err:
        parse_mapping(text, "home.yaml")
    assert err.value.line == line and err.value.key == key and what in str(err.value)
    assert str(err.value).startswith(f"home.yaml, line {line}")


def test_mapping_areas_accept_synonyms_and_numbers_as_keys() -> None:
    m = parse_mapping(
        "format: kasteren\nsensors:\n  7: {area: Dinning Room, capability: contact}\n"
        "  8: {area: foyer, capability: door}\n  9: {area: Office/Study, capability: motion}\n"
        "  10: {area: pantry, capability: contact}\n  11: {area: den, capability: media}\n"
    )
    assert {k: s.area for k, s in m.sensors.items()} == {
        "7": "dining_room", "8": "hall", "9": "office", "10": "kitchen", "11": "living_room"}


@pytest.mark.parametrize("path", BENCH_MAPPINGS, ids=lambda p: p.name)
def test_every_shipped_mapping_file_validates(path: Path) -> None:
    m = load_mapping(path)
    for sensor in m.sensors.values():
        assert (sensor.area, sensor.capability) in DEFAULT_SPEC.channels
    assert m.unmapped_activities == "error"  # the benchmark mappings name every label they meet


def test_bench_house_a_mapping_is_the_builtin_one() -> None:
    bench, builtin = load_mapping(ROOT / "bench" / "datasets" / "kasteren_a.yaml"), builtin_mapping("kasteren_a")
    bench.path = builtin.path
    assert bench == builtin


# --- readers, with the mapping deciding sensors and labels -------------------------------------------------

KASTEREN_HEADER = ("Sensor IDs are:\n[5] 'mat bed'\n\nStart time          \tEnd time            \tID\tVal\n"
                   "----\t----\t--\t---\n")
KASTEREN_MAP = """format: kasteren
files: {sensors: s.txt, activities: a.txt}
sensors:
  "5": {area: bedroom, capability: motion}
  "28": {area: foyer, capability: door}
activities:
  "10": {name: go to bed, scene: sleeping}
  "1": {name: leave house, scene: away}
"""


def kasteren_c_like(root: Path) -> Path:
    write(root / "s.txt", KASTEREN_HEADER + "19-Nov-2008 22:47:46\t20-Nov-2008 07:00:00\t5\t1\n"
          "20-Nov-2008 08:00:00\t20-Nov-2008 08:00:05\t28\t1\n")
    write(root / "a.txt", "Start time\tEnd time\tID\n--\t--\t--\n19-Nov-2008 22:48:00\t20-Nov-2008 06:59:00\t10\n"
          "20-Nov-2008 08:00:10\t20-Nov-2008 12:00:00\t1\n")
    return root


def test_kasteren_reader_with_another_houses_ids(tmp_path: Path) -> None:
    """House C's ids and files: what --source kasteren could not read before (it knew only house A's)."""
    kasteren_c_like(tmp_path)
    ds = load_dataset(tmp_path, parse_mapping(KASTEREN_MAP))
    assert [(e.area, e.capability, e.active, e.source) for e in ds.events[:3]] == [
        ("bedroom", "motion", True, "5"), ("bedroom", "motion", False, "5"), ("hall", "door", True, "28")]
    assert [iv.label for iv in ds.intervals] == ["sleeping", "away"]
    raw = load_dataset(tmp_path, parse_mapping(KASTEREN_MAP), scenes=False)
    assert [iv.label for iv in raw.intervals] == ["go to bed", "leave house"]


def test_unmapped_labels_and_sensors_are_errors_unless_the_file_says_otherwise(tmp_path: Path) -> None:
    kasteren_c_like(tmp_path)
    with open(tmp_path / "a.txt", "a") as f:
        f.write("20-Nov-2008 13:00:00\t20-Nov-2008 13:10:00\t26\n")
    with pytest.raises(DatasetError, match=r"activity label\(s\) 26 not in mapping"):
        load_dataset(tmp_path, parse_mapping(KASTEREN_MAP))
    lenient = parse_mapping(KASTEREN_MAP + "unmapped: {activities: relaxing}\n")
    assert [iv.label for iv in load_dataset(tmp_path, lenient).intervals][-1] == "relaxing"
    unknown = load_dataset(tmp_path, parse_mapping(KASTEREN_MAP + "unmapped: {activities: unknown}\n"))
    times = unknown.slices(DEFAULT_SPEC)
    labels = dict(zip(times, unknown.labels_at(times, DEFAULT_SPEC), strict=True))
    assert labels[unknown.start + 86400 + 13 * 3600 + 300] is None  # left out, not idle
    assert labels[unknown.start + 86400 + 12 * 3600 + 1800] == "idle"
    with open(tmp_path / "s.txt", "a") as f:
        f.write("20-Nov-2008 09:00:00\t20-Nov-2008 09:00:05\t99\t1\n")
    with pytest.raises(DatasetError, match=r"unknown sensor id\(s\) 99"):
        load_dataset(tmp_path, lenient)
    ignoring = parse_mapping(KASTEREN_MAP + "unmapped: {sensors: ignore, activities: idle}\n")
    assert {e.source for e in load_dataset(tmp_path, ignoring).events} == {"5", "28"}


def test_kasteren_tl_reader_and_labelled_period(tmp_path: Path) -> None:
    day = 1248134400  # 2009-07-21 00:00 (clock time)
    write(tmp_path / "b.sensors", f"{day + 3600}\t60\t4\n{day + 5 * 86400}\t10\t4\n")
    write(tmp_path / "b.activities", f"{day + 2 * 86400 + 100}\t600\t1\n")
    m = parse_mapping("format: kasteren_tl\nfiles: {sensors: b.sensors, activities: b.activities}\n"
                      "period: labelled\nsensors:\n  '4': {area: hall, capability: door}\n"
                      "activities:\n  '1': {name: leave house, scene: away}\n")
    ds = load_dataset(tmp_path, m)
    assert [e.ts for e in ds.events] == [day + 3600, day + 3660, day + 5 * 86400, day + 5 * 86400 + 10]
    assert ds.start == day + 2 * 86400 and ds.end == day + 2 * 86400 + 700  # only the annotated stretch


def test_aras_reader_keeps_changes_and_one_residents_labels(tmp_path: Path) -> None:
    rows = []
    for second in range(86400):
        opened = 1 if 3600 <= second < 3605 else 0
        temperature = 21 + (second // 1000) % 3  # ignored column
        r1 = 11 if second < 7 * 3600 else 2
        rows.append(" ".join(["0"] * 11 + [str(opened)] + ["0"] * 6 + [str(temperature), "0", str(r1), "13"]))
    (tmp_path / "DAY_2.txt.gz").write_bytes(gzip.compress(("\r\n".join(rows) + "\r\n").encode()))
    sensors = "\n".join(f"  '{i}': {{area: other, capability: motion}}" for i in range(1, 21) if i not in (12, 19))
    m = parse_mapping("format: aras\nstart_date: '2013-01-07'\nsensors:\n" + sensors +
                      "\n  '12': {area: hall, capability: door}\n  '19': {ignore: true}\n"
                      "activities:\n  '11': {name: Sleeping, scene: sleeping}\n  '2': {name: Going Out, scene: away}\n")
    ds = load_dataset(tmp_path, m)
    door = [(e.ts - ds.start, e.active) for e in ds.events if e.source == "12"]
    assert ds.start == 1357603200.0  # day 2 = start_date + 1
    assert door == [(0.0, False), (3600.0, True), (3605.0, False)]  # one event per change, not per second
    assert [(iv.label, iv.end - iv.start) for iv in ds.intervals] == [("sleeping", 7 * 3600), ("away", 17 * 3600)]


def test_ordonez_reader_keys_sensors_by_place(tmp_path: Path) -> None:
    head = "Start time          \tEnd time            \tLocation\tType\t\tPlace\n--------\t--------\t----\n"
    write(tmp_path / "S.txt", head + "2012-11-12 00:22:57\t\t2012-11-12 00:22:59\t\tDoor\t\tPIR\t\t\tLiving\n"
          "2012-11-12 00:23:14  2012-11-12 00:23:17\t\tDoor\t\tPIR\t\t\tKitchen")
    write(tmp_path / "A.txt", "Start time\tEnd time\tActivity\n--\t--\t--\n"
          "2012-11-12 00:20:00\t\t2012-11-12 01:00:00\t\tSpare_Time/TV\t\n")
    m = parse_mapping("format: ordonez\nfiles: {sensors: S.txt, activities: A.txt}\nsensors:\n"
                      "  Living/Door: {area: living, capability: motion}\n"
                      "  Kitchen/Door: {area: kitchen, capability: motion}\n"
                      "activities:\n  Spare_Time/TV: relaxing\n")
    ds = load_dataset(tmp_path, m)
    assert [(e.area, e.active) for e in ds.events] == [
        ("living_room", True), ("living_room", False), ("kitchen", True), ("kitchen", False)]
    assert ds.intervals[0].label == "relaxing"


def test_ucami_reader(tmp_path: Path) -> None:
    seg = tmp_path / "2017-11-10" / "2017-11-10-A"
    write(seg / "2017-11-10-A-sensors.csv", "TIMESTAMP;OBJECT;STATE;HABITANT\n2017/11/10 12:28:38.0;SM4;Movement;M\n"
          "2017/11/10 12:28:48.0;SM4;No movement;M\n2017/11/10 12:29:00.0;D01;Open;M\n")
    write(seg / "2017-11-10-A-activity.csv", "DATE BEGIN;DATE END;ACTIVITY;HABITANT\n"
          "2017/11/10 12:26:45.0;2017/11/10 12:28:54.0;Act24;M\n")
    m = parse_mapping("format: ucami\nunlabelled: unknown\nsensors:\n  SM4: {area: bedroom, capability: motion}\n"
                      "  D01: {area: hall, capability: door}\n"
                      "activities:\n  Act24: {name: wake up, scene: waking_up}\n")
    ds = load_dataset(tmp_path, m)
    assert [(e.source, e.active) for e in ds.events] == [("SM4", True), ("SM4", False), ("D01", True)]
    assert ds.intervals[0].label == "waking_up" and ds.unlabelled is None


def test_casas_mapping_declares_water_and_power(tmp_path: Path) -> None:
    """The sensor-name prefix cannot say AD1-B is water flow: the mapping file can."""
    write(tmp_path / "data.txt", "2008-02-27\t12:43:27.41\tM17\tON\tCook begin\n2008-02-27\t12:43:30.1\tAD1-B\t0.41\n"
          "2008-02-27\t12:43:40.1\tAD1-B\t0.01\n2008-02-27\t12:43:45.1\tAD1-C\t0.3\n"
          "2008-02-27\t12:44:00.0\tI01\tABSENT\n2008-02-27\t12:50:00.0\tM17\tOFF\tCook end\n")
    m = parse_mapping("format: casas\nfiles: {data: data.txt}\nsensors:\n  M17: {area: kitchen, capability: motion}\n"
                      "  AD1-B: {area: kitchen, capability: water, above: 0.05}\n"
                      "  AD1-C: {area: kitchen, capability: power, above: 0.05}\n"
                      "  I01: {area: kitchen, capability: contact, active: [ABSENT]}\nactivities:\n  cook: cooking\n")
    ds = load_dataset(tmp_path, m)
    assert [(e.capability, e.active) for e in ds.events] == [
        ("motion", True), ("water", True), ("water", False), ("power", True), ("contact", True), ("motion", False)]
    assert ds.intervals[0].label == "cooking"


def test_recorder_jsonl_reader_maps_entity_ids(tmp_path: Path) -> None:
    write(tmp_path / "history.jsonl", "\n".join(json.dumps(r) for r in [
        {"ts": 100.0, "entity_id": "sensor.kettle_power", "value": "1800"},
        {"ts": 110.0, "entity_id": "sensor.kettle_power", "value": "1750"},  # still on: not an event
        {"ts": 200.0, "entity_id": "sensor.kettle_power", "value": "0.4"},
    ]) + "\n")
    write(tmp_path / "labels.jsonl", json.dumps({"start": 90, "end": 210, "label": "cooking"}) + "\n")
    m = parse_mapping("format: recorder_jsonl\nsensors:\n  sensor.kettle_power: {area: pantry, capability: power}\n"
                      "activities: {cooking: cooking}\n")
    ds = load_dataset(tmp_path, m)
    assert [(e.ts, e.area, e.active) for e in ds.events] == [(100.0, "kitchen", True), (200.0, "kitchen", False)]


# Home Assistant recorder, schema version 41 (homeassistant/components/recorder/db_schema.py): the columns of
# states and states_meta as HA's SQLite database has them (legacy columns kept, as HA keeps them empty).
HA_SCHEMA = """
CREATE TABLE states_meta (metadata_id INTEGER NOT NULL PRIMARY KEY, entity_id VARCHAR(255));
CREATE UNIQUE INDEX ix_states_meta_entity_id ON states_meta (entity_id);
CREATE TABLE state_attributes (attributes_id INTEGER NOT NULL PRIMARY KEY, hash BIGINT, shared_attrs TEXT);
CREATE TABLE states (
    state_id INTEGER NOT NULL PRIMARY KEY, entity_id CHAR(0), state VARCHAR(255), attributes CHAR(0),
    event_id SMALLINT, last_changed CHAR(0), last_changed_ts FLOAT, last_updated CHAR(0), last_updated_ts FLOAT,
    old_state_id INTEGER REFERENCES states (state_id), attributes_id INTEGER REFERENCES state_attributes
    (attributes_id), context_id CHAR(0), context_user_id CHAR(0), context_parent_id CHAR(0), origin_idx SMALLINT,
    context_id_bin BLOB, context_user_id_bin BLOB, context_parent_id_bin BLOB, metadata_id INTEGER REFERENCES
    states_meta (metadata_id));
CREATE INDEX ix_states_metadata_id_last_updated_ts ON states (metadata_id, last_updated_ts);
CREATE TABLE schema_changes (change_id INTEGER NOT NULL PRIMARY KEY, schema_version INTEGER, changed DATETIME);
INSERT INTO schema_changes (schema_version, changed) VALUES (41, '2024-01-01 00:00:00');
"""


def home_assistant_db(root: Path) -> Path:
    db = root / "home-assistant_v2.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(HA_SCHEMA)
        conn.executemany("INSERT INTO states_meta (metadata_id, entity_id) VALUES (?, ?)",
                         [(1, "binary_sensor.hall_motion"), (2, "media_player.den_tv"), (3, "sun.sun")])
        conn.executemany("INSERT INTO states (state, last_updated_ts, last_changed_ts, metadata_id) VALUES (?,?,?,?)", [
            ("on", 1000.0, 1000.0, 1), ("off", 1060.0, 1060.0, 1), ("unavailable", 1100.0, 1100.0, 1),
            ("playing", 1200.0, 1200.0, 2), ("playing", 1300.0, 1200.0, 2), ("idle", 1500.0, 1500.0, 2),
            ("above_horizon", 1000.0, 1000.0, 3),
        ])
    write(root / "labels.jsonl", json.dumps({"start": 1150, "end": 1550, "label": "relaxing"}) + "\n")
    return db


def test_home_assistant_database_reader(tmp_path: Path) -> None:
    db = home_assistant_db(tmp_path)
    m = parse_mapping("format: home_assistant\nsensors:\n"
                      "  binary_sensor.hall_motion: {area: foyer, capability: motion}\n"
                      "  media_player.den_tv: {area: den, capability: media}\nactivities: {relaxing: relaxing}\n")
    ds = load_dataset(db, m)
    assert [(e.ts, e.source, e.area, e.active) for e in ds.events] == [
        (1000.0, "binary_sensor.hall_motion", "hall", True), (1060.0, "binary_sensor.hall_motion", "hall", False),
        (1200.0, "media_player.den_tv", "living_room", True), (1500.0, "media_player.den_tv", "living_room", False)]
    assert ds.intervals[0].label == "relaxing"
    write(tmp_path / "bad.db", "not a database")
    with pytest.raises(DatasetError, match="not a Home Assistant recorder database"):
        load_dataset(tmp_path / "bad.db", m)


def test_cli_trains_from_any_folder_with_a_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qilu_hub.cli import main

    kasteren_c_like(tmp_path / "house")
    mapping = write(tmp_path / "house.yaml", KASTEREN_MAP)
    out = tmp_path / "m.onnx"
    assert main(["model", "train", "--source", str(tmp_path / "house"), "--mapping", str(mapping), "--trees", "2",
                 "--no-progress", "--out", str(out)]) == 0
    assert set(json.loads(capsys.readouterr().out)["labels"]) == {"sleeping", "away", "idle"}
    write(mapping, KASTEREN_MAP.replace("capability: door", "capability: dor"))
    assert main(["model", "train", "--source", str(tmp_path / "house"), "--mapping", str(mapping),
                 "--out", str(out)]) == 1
    assert "line 5: sensors.28.capability must be one of" in capsys.readouterr().err


def test_cli_trains_from_a_home_assistant_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A household moving from Home Assistant: its recorder database, entity ids mapped by a file, labels
    kept elsewhere (--labels)."""
    from qilu_hub.cli import main

    (tmp_path / "ha").mkdir()
    db = home_assistant_db(tmp_path / "ha")
    labels = write(tmp_path / "mine" / "labels.jsonl", json.dumps({"start": 900, "end": 1100, "label": "away"}) + "\n"
                   + json.dumps({"start": 1150, "end": 1550, "label": "relaxing"}) + "\n")
    mapping = write(tmp_path / "ha.yaml", "format: home_assistant\nunlabelled: unknown\nsensors:\n"
                    "  binary_sensor.hall_motion: {area: foyer, capability: motion}\n"
                    "  media_player.den_tv: {area: den, capability: media}\n"
                    "activities: {relaxing: relaxing, away: away}\n")
    out = tmp_path / "home.onnx"
    assert main(["model", "train", "--source", str(db), "--mapping", str(mapping), "--labels", str(labels),
                 "--trees", "2", "--no-progress", "--out", str(out)]) == 0
    assert set(json.loads(capsys.readouterr().out)["labels"]) == {"away", "relaxing"}
