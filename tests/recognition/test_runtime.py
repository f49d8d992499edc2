"""Loading models: wrong spec refused, missing or corrupt files reported clearly."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qilu_hub.recognition.features import DEFAULT_SPEC, FeatureExtractor
from qilu_hub.recognition.runtime import ModelLoadError, SceneModel, SpecMismatchError


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
    from qilu_hub.recognition.features import DeviceEvent

    scene = SceneModel.load(trained[1], DEFAULT_SPEC)
    ex = FeatureExtractor()
    ex.observe(DeviceEvent(1_700_000_000.0, "kitchen", "power", True))
    drivers = scene.drivers(ex.features(1_700_000_010.0))
    assert drivers and all(name in DEFAULT_SPEC.feature_names for name in drivers)
    assert np.isfinite(list(drivers.values())).all()


def test_per_device_model_is_accepted_with_its_own_spec(tmp_path: Path, sim_dataset: Any) -> None:
    from qilu_hub.recognition.training import TrainConfig, build_matrix, fit, to_onnx

    spec = DEFAULT_SPEC.with_sources({e.source for e in sim_dataset.events})
    matrix = build_matrix(sim_dataset, spec)
    model = fit(matrix.X, matrix.y, TrainConfig(n_estimators=2, max_depth=4, n_jobs=1))
    path = tmp_path / "home.onnx"
    path.write_bytes(to_onnx(model, spec))
    loaded = SceneModel.load(path, DEFAULT_SPEC)
    assert loaded.spec == spec and loaded.new_decoder() is None
    assert loaded.predict_proba(matrix.X[:3]).shape == (3, len(loaded.labels))
    other_base = replace(DEFAULT_SPEC, count_windows=(600.0,))
    with pytest.raises(SpecMismatchError):
        SceneModel.load(path, other_base)


def test_model_with_broken_decoder_refused(tmp_path: Path, trained: tuple[Any, Path]) -> None:
    import onnx

    proto = onnx.load(str(trained[1]))
    prop = proto.metadata_props.add()
    prop.key, prop.value = "qilu.decoder", '{"kind": "hmm-forward", "labels": ["x"]}'
    path = tmp_path / "bad-decoder.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ModelLoadError, match="decoder"):
        SceneModel.load(path, DEFAULT_SPEC)
    from qilu_hub.recognition.decoder import HmmFilter

    labels = SceneModel.load(trained[1], DEFAULT_SPEC).labels
    shuffled = HmmFilter.fit([labels], labels[::-1])  # valid, but its columns are in another order
    prop.value = json.dumps(shuffled.to_dict())
    onnx.save(proto, str(path))
    with pytest.raises(ModelLoadError, match="decoder labels"):
        SceneModel.load(path, DEFAULT_SPEC)


def test_class_bias_is_applied_by_the_runtime(tmp_path: Path, trained: tuple[Any, Path], sim_dataset: Any) -> None:
    from qilu_hub.recognition.decision import ClassBias
    from qilu_hub.recognition.training import build_matrix, to_onnx

    model = trained[0]
    labels = [str(c) for c in model.classes_]
    offsets = np.linspace(-1.0, 1.0, len(labels))
    path = tmp_path / "biased.onnx"
    path.write_bytes(to_onnx(model, DEFAULT_SPEC, class_bias=ClassBias(labels, offsets)))
    scene = SceneModel.load(path, DEFAULT_SPEC)
    X = build_matrix(sim_dataset).X[::97]
    expected = model.predict_proba(X) * np.exp(offsets)
    np.testing.assert_allclose(scene.predict_proba(X), expected / expected.sum(axis=1, keepdims=True), atol=1e-4)
    assert scene.predict(X[0]).label == labels[int(expected[0].argmax())]


def test_model_with_broken_class_bias_refused(tmp_path: Path, trained: tuple[Any, Path]) -> None:
    import onnx

    proto = onnx.load(str(trained[1]))
    prop = proto.metadata_props.add()
    prop.key, prop.value = "qilu.class_bias", '{"kind": "class-bias", "labels": ["x"], "offsets": [0, 1]}'
    path = tmp_path / "bad-bias.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ModelLoadError, match="class-bias"):
        SceneModel.load(path, DEFAULT_SPEC)
    labels = SceneModel.load(trained[1], DEFAULT_SPEC).labels
    prop.value = json.dumps({"kind": "class-bias", "labels": labels[::-1], "offsets": [0.0] * len(labels)})
    onnx.save(proto, str(path))
    with pytest.raises(ModelLoadError, match="class-bias labels"):
        SceneModel.load(path, DEFAULT_SPEC)
