"""Training and export: the ONNX model carries its metadata and agrees with scikit-learn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hub.recognition.datasets import Dataset
from hub.recognition.features import DEFAULT_SPEC
from hub.recognition.runtime import SceneModel
from hub.recognition.training import build_matrix, confusion_png, metrics


def test_onnx_matches_sklearn_and_carries_metadata(trained: tuple[Any, Path], sim_dataset: Dataset) -> None:
    model, path = trained
    scene = SceneModel.load(path, DEFAULT_SPEC)
    assert scene.labels == list(model.classes_)
    assert scene.metadata.spec_version == DEFAULT_SPEC.version
    assert scene.metadata.window_seconds == DEFAULT_SPEC.slice_seconds
    assert len(scene.metadata.importances) == DEFAULT_SPEC.n_features
    X = build_matrix(sim_dataset).X[::97]
    np.testing.assert_allclose(scene.predict_proba(X), model.predict_proba(X), atol=1e-4)


def test_model_learns_the_simulator(trained: tuple[Any, Path]) -> None:
    from hub.recognition.simulator import SimConfig, simulate

    unseen = build_matrix(simulate(SimConfig(days=3, homes=2, seed=99)))
    scene = SceneModel.load(trained[1], DEFAULT_SPEC)
    pred = np.asarray(scene.labels)[scene.predict_proba(unseen.X).argmax(axis=1)]
    result = metrics(unseen.y, pred, scene.labels)
    _values, counts = np.unique(unseen.y, return_counts=True)
    # Far above what a constant guess gets, on both measures (a small 8-tree model, so no tight bound).
    assert result["timeslice_accuracy"] > counts.max() / counts.sum() + 0.1
    assert result["class_accuracy"] > 3 / len(counts)


def test_metrics_and_png(tmp_path: Path) -> None:
    m = metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert m["timeslice_accuracy"] == 0.75
    assert m["class_accuracy"] == 0.75  # mean of 0.5 and 1.0
    assert m["confusion"] == [[1, 1], [0, 2]]
    png = confusion_png(np.asarray(m["confusion"]), ["a", "b"], tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
