"""Training data from the hub's own recorder: history read back, entities mapped like the live component."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from qilu_hub import Hub
from qilu_hub.cli import main
from qilu_hub.recognition.datasets import DatasetError
from qilu_hub.recognition.recorder_source import LABELS_FILE, async_load_recorder


async def _record_some_history(config_dir: Path) -> float:
    hub = Hub(config_dir, {"recorder": {"commit_interval": 0.05}})
    await hub.async_start()
    hub.areas.async_get_or_create("Kitchen")
    motion = hub.entities.async_get_or_create(
        unique_id="t:m", capabilities=("motion",), name="Motion", device_class="motion", area_id="kitchen"
    )
    temp = hub.entities.async_get_or_create(unique_id="t:t", capabilities=("temperature",), name="Temp")
    start = time.time()
    for value in ("on", "off", "on"):
        hub.states.async_set(motion.entity_id, value)
    hub.states.async_set(temp.entity_id, 20.0)
    await hub.async_stop()
    (config_dir / LABELS_FILE).write_text(json.dumps({"start": start - 60, "end": start + 600, "label": "cooking"}))
    return start


async def test_history_becomes_events(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    start = await _record_some_history(config_dir)
    ds = await async_load_recorder(config_dir)
    assert [(e.area, e.capability, e.active) for e in ds.events] == [
        ("kitchen", "motion", True),
        ("kitchen", "motion", False),
        ("kitchen", "motion", True),
    ]
    assert all(e.ts >= start for e in ds.events)
    assert ds.intervals[0].label == "cooking"


async def test_missing_labels_or_history(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="labels"):
        await async_load_recorder(tmp_path)
    (tmp_path / LABELS_FILE).write_text("")
    with pytest.raises(DatasetError, match="history"):
        await async_load_recorder(tmp_path)


def test_cli_trains_from_recorder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    config_dir = tmp_path / "config"
    asyncio.run(_record_some_history(config_dir))
    out = tmp_path / "home.onnx"
    argv = ["--config", str(config_dir), "model", "train", "--source", "recorder", "--trees", "2", "--out", str(out)]
    code = main(argv)
    assert code == 0 and out.is_file()
    assert "cooking" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["labels"]


async def _household_labels_through_the_api(config_dir: Path) -> float:
    """A running hub with virtual appliances; the household labels through REST while appliances change."""
    import aiohttp

    from qilu_hub import Scopes
    from qilu_hub.api import ApiServer
    from qilu_hub.config import load_config
    from qilu_hub.recognition.labels import LabelStore
    from qilu_hub.virtual import VirtualAppliances

    config = load_config(config_dir)
    config["recorder"]["commit_interval"] = 0.05
    hub = Hub(config_dir, config)
    hub.add_component(VirtualAppliances(animate=False))
    hub.add_component(LabelStore())
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    await hub.async_start()
    _, secret = hub.tokens.create("alice", Scopes())
    auth = {"Authorization": f"Bearer {secret}"}
    now = time.time()
    url = api.url + "/api/recognition/labels"
    try:
        async with aiohttp.ClientSession(headers=auth) as session:
            async with session.post(url, json={"scene": "sleeping", "start": now - 7200, "end": now - 3600}) as r:
                assert r.status == 201, await r.text()
            async with session.post(url, json={"scene": "cooking", "start": now - 600}) as r:  # open
                assert r.status == 201, await r.text()
            for i in range(6):  # the cook moves about the kitchen and switches the light
                hub.states.async_set("binary_sensor.kitchen_motion", "on" if i % 2 == 0 else "off")
                service = "turn_on" if i % 2 == 0 else "turn_off"
                async with session.post(api.url + f"/api/services/light/{service}",
                                        json={"entity_id": "light.living_room_ceiling_light"}) as r:
                    assert r.status == 200
            async with session.post(url + "/stop") as r:
                assert r.status == 200
        await asyncio.sleep(0.3)  # the recorder commits in batches
    finally:
        await hub.async_stop()
    return now


def test_train_from_labels_given_through_the_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end: API labels + recorder history -> `model train --source recorder` -> a model the runtime loads."""
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.runtime import SceneModel

    config_dir = tmp_path / "config"
    now = asyncio.run(_household_labels_through_the_api(config_dir))
    # A hand-written file from before still counts, next to the API's labels.
    (config_dir / LABELS_FILE).write_text(json.dumps({"start": now - 3000, "end": now - 2400, "label": "eating"}))

    ds = asyncio.run(async_load_recorder(config_dir))
    assert sorted(iv.label for iv in ds.intervals) == ["cooking", "eating", "sleeping"]
    assert {(e.area, e.capability) for e in ds.events} >= {("kitchen", "motion"), ("living_room", "light")}

    from qilu_hub.recognition.mapping import SCENES
    from qilu_hub.recognition.training import build_matrix

    # Household labels only: the model knows exactly the labelled scenes; unlabelled time is not "idle".
    out = tmp_path / "home.onnx"
    argv = ["--config", str(config_dir), "model", "train", "--source", "recorder", "--trees", "4", "--no-progress",
            "--bootstrap-days", "0", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report["labels"]) == {"cooking", "eating", "sleeping"}
    matrix = build_matrix(ds, DEFAULT_SPEC)
    labelled_minutes = sum(min(iv.end, ds.end) - iv.start for iv in ds.intervals) / 60
    assert abs(len(matrix.y) - labelled_minutes) <= 3 * len(ds.intervals)  # only labelled slices are trained on
    assert report["slices"] == len(matrix.y)
    model = SceneModel.load(out, DEFAULT_SPEC)
    assert sorted(model.labels) == sorted(report["labels"])
    # The slices that were labelled sleeping are learnt (a forest fits its own training data).
    sleeping = matrix.y == "sleeping"
    predicted = {model.labels[int(i)] for i in model.predict_proba(matrix.X[sleeping]).argmax(axis=1)}
    assert predicted == {"sleeping"}

    # The default adds simulated days, so scenes nobody has labelled yet (away, guests, ...) stay known.
    argv[argv.index("--bootstrap-days") + 1] = "3"
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"away", "idle", "bathing", "relaxing", "cooking", "eating", "sleeping"} <= set(report["labels"])
    assert set(report["labels"]) <= set(SCENES) | {"idle"}
    # No in-sample check here: in this tiny history the labelled sleep and meal hold no events at all, so
    # only the clock tells them apart from simulated evenings, and the answer would depend on when the test
    # runs. That bootstrapping helps on held-out household days is measured, not asserted (docs/recognition.md).
    assert SceneModel.load(out, DEFAULT_SPEC).labels == report["labels"]


def test_unlabelled_nights_are_not_taught_as_idle() -> None:
    """A household labels its sleep on one night of four. Trained on household labels, the other nights
    are recognised as sleeping too; had unlabelled time counted as idle (as in annotated datasets), the
    three unlabelled nights would have taught the model that a quiet night is idle."""
    from qilu_hub.recognition.datasets import Dataset, recorder_dataset
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.simulator import SimConfig, simulate
    from qilu_hub.recognition.training import TrainConfig, build_matrix, fit

    full = simulate(SimConfig(days=4, homes=1, seed=11))
    nights = sorted((iv for iv in full.intervals if iv.label == "sleeping"), key=lambda iv: iv.start)
    first_day_end = full.start + 86400
    given = [iv for iv in full.intervals if iv.end <= first_day_end + 12 * 3600]  # one day and night labelled
    household = recorder_dataset(full.events, given)
    truth = build_matrix(full, DEFAULT_SPEC)  # every slice with its true scene, for scoring
    later = (truth.y == "sleeping") & (truth.times > nights[1].start)
    config = TrainConfig(n_estimators=12, n_jobs=1)

    ours = build_matrix(household, DEFAULT_SPEC)
    assert "idle" not in set(ours.y.tolist()) or any(iv.label == "idle" for iv in given)
    recall = (fit(ours.X, ours.y, config).predict(truth.X[later]) == "sleeping").mean()
    as_idle = build_matrix(Dataset("x", household.events, household.intervals, household.start, household.end),
                           DEFAULT_SPEC)
    recall_idle = (fit(as_idle.X, as_idle.y, config).predict(truth.X[later]) == "sleeping").mean()
    assert recall > 0.5 and recall > 2 * recall_idle, (recall, recall_idle)  # measured: 0.66 against 0.30


async def test_no_labels_anywhere_says_how_to_give_them(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {"recorder": {"commit_interval": 0.05}})
    await hub.async_start()
    await hub.async_stop()
    with pytest.raises(DatasetError, match="dashboard"):
        await async_load_recorder(tmp_path)
