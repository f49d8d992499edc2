"""Training data from the hub's own recorder: history read back, entities mapped like the live component."""

from __future__ import annotations

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
