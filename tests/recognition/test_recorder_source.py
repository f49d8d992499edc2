"""Training data from the hub's own recorder: history read back, entities mapped like the live component."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from hub import Hub
from hub.cli import main
from hub.recognition.datasets import DatasetError
from hub.recognition.recorder_source import LABELS_FILE, async_load_recorder


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

    from hub import Scopes
    from hub.api import ApiServer
    from hub.config import load_config
    from hub.recognition.labels import LabelStore
    from hub.virtual import VirtualAppliances

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
    from hub.recognition.features import DEFAULT_SPEC
    from hub.recognition.runtime import SceneModel

    config_dir = tmp_path / "config"
    now = asyncio.run(_household_labels_through_the_api(config_dir))
    # A hand-written file from before still counts, next to the API's labels.
    (config_dir / LABELS_FILE).write_text(json.dumps({"start": now - 3000, "end": now - 2400, "label": "eating"}))

    ds = asyncio.run(async_load_recorder(config_dir))
    assert sorted(iv.label for iv in ds.intervals) == ["cooking", "eating", "sleeping"]
    assert {(e.area, e.capability) for e in ds.events} >= {("kitchen", "motion"), ("living_room", "light")}

    out = tmp_path / "home.onnx"
    argv = ["--config", str(config_dir), "model", "train", "--source", "recorder", "--trees", "4", "--no-progress",
            "--out", str(out)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report["labels"]) == {"cooking", "eating", "sleeping", "idle"}
    model = SceneModel.load(out, DEFAULT_SPEC)
    assert sorted(model.labels) == sorted(report["labels"])
    from hub.recognition.training import build_matrix

    matrix = build_matrix(ds, DEFAULT_SPEC)
    proba = model.predict_proba(matrix.X[-5:])
    assert proba.shape == (5, 4)
    # The slices that were labelled sleeping are learnt (a forest fits its own training data).
    sleeping = matrix.y == "sleeping"
    predicted = {model.labels[int(i)] for i in model.predict_proba(matrix.X[sleeping]).argmax(axis=1)}
    assert predicted == {"sleeping"}


async def test_no_labels_anywhere_says_how_to_give_them(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {"recorder": {"commit_interval": 0.05}})
    await hub.async_start()
    await hub.async_stop()
    with pytest.raises(DatasetError, match="dashboard"):
        await async_load_recorder(tmp_path)
