"""The recognition config section builds (or skips) the component."""

from __future__ import annotations

from pathlib import Path

from qilu_hub.recognition.component import DEFAULT_MODEL
from qilu_hub.recognition.settings import recognizer_from_config


def test_defaults_use_bundled_model() -> None:
    rec = recognizer_from_config({"hub": {"time_zone": "Europe/Amsterdam"}})
    assert rec is not None and rec.model_path == DEFAULT_MODEL and rec.interval == 60.0
    assert str(rec.tz) == "Europe/Amsterdam"


def test_disabled_and_relative_model(tmp_path: Path) -> None:
    assert recognizer_from_config({"recognition": {"enabled": False}}) is None
    rec = recognizer_from_config({"recognition": {"model": "mine.onnx", "interval": 30}}, tmp_path)
    assert rec is not None and rec.model_path == tmp_path / "mine.onnx" and rec.interval == 30.0
