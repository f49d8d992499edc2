"""Loading models: wrong spec refused, missing or corrupt files reported clearly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hub.recognition.features import DEFAULT_SPEC, FeatureExtractor
from hub.recognition.runtime import ModelLoadError, SceneModel, SpecMismatchError


def test_prediction_shape(trained: tuple[Any, Path]) -> None:
    scene = SceneModel.load(trained[1], DEFAULT_SPEC)
    pred = scene.predict(FeatureExtractor().features(1_700_000_000.0))
    assert pred.label in scene.labels
    assert abs(sum(pred.probabilities.values()) - 1.0) < 1e-3
    assert abs(pred.confidence - max(pred.probabilities.values())) < 1e-3


def test_spec_mismatch_refused(trained: tuple[Any, Path]) -> None:
    other = replace(DEFAULT_SPEC, slice_seconds=30.0)
    with pytest.raises(SpecMismatchError, match="feature spec"):
        SceneModel.load(trained[1], other)


def test_missing_and_corrupt(tmp_path: Path, trained: tuple[Any, Path]) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        SceneModel.load(tmp_path / "nope.onnx", DEFAULT_SPEC)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not onnx")
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        SceneModel.load(bad, DEFAULT_SPEC)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(trained[1].read_bytes()[:2000])
    with pytest.raises(ModelLoadError):
        SceneModel.load(truncated, DEFAULT_SPEC)


def test_model_without_metadata_refused(tmp_path: Path, trained: tuple[Any, Path]) -> None:
    import onnx

    proto = onnx.load(str(trained[1]))
    del proto.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ModelLoadError, match="lacks"):
        SceneModel.load(path, DEFAULT_SPEC)


def test_drivers_name_active_features(trained: tuple[Any, Path]) -> None:
    from hub.recognition.features import DeviceEvent

    scene = SceneModel.load(trained[1], DEFAULT_SPEC)
    ex = FeatureExtractor()
    ex.observe(DeviceEvent(1_700_000_000.0, "kitchen", "power", True))
    drivers = scene.drivers(ex.features(1_700_000_010.0))
    assert drivers and all(name in DEFAULT_SPEC.feature_names for name in drivers)
    assert np.isfinite(list(drivers.values())).all()
