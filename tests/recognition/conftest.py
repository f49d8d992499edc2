"""Fixtures for recognition tests: a small simulator dataset and a model trained on it (once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qilu_hub.recognition.datasets import Dataset
from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.simulator import SimConfig, simulate

from .exported_homes import export_home


@pytest.fixture(scope="session")
def sim_dataset() -> Dataset:
    return simulate(SimConfig(days=4, homes=2, seed=3))


@pytest.fixture(scope="session")
def trained(sim_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    """(sklearn model, path of its ONNX export)."""
    from qilu_hub.recognition.training import TrainConfig, build_matrix, fit, to_onnx

    matrix = build_matrix(sim_dataset, DEFAULT_SPEC)
    model = fit(matrix.X, matrix.y, TrainConfig(n_estimators=8, max_depth=8, n_jobs=1))
    path = tmp_path_factory.mktemp("model") / "scene.onnx"
    path.write_bytes(to_onnx(model, DEFAULT_SPEC))
    return model, path


@pytest.fixture(scope="session")
def review_trained(sim_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A day-review model (look-ahead features) trained on the same simulated homes; its ONNX path."""
    from qilu_hub.recognition.training import TrainConfig, build_matrix, fit, to_onnx

    matrix = build_matrix(sim_dataset, DEFAULT_SPEC, lookahead=True)
    model = fit(matrix.X, matrix.y, TrainConfig(n_estimators=8, max_depth=8, n_jobs=1))
    path = tmp_path_factory.mktemp("review") / "review.onnx"
    path.write_bytes(to_onnx(model, DEFAULT_SPEC, lookahead=True))
    return path


@pytest.fixture(scope="module")
def two_homes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path]]:
    """Two simulated homes (4 days each) exported with the mapping files that read them back."""
    base = tmp_path_factory.mktemp("homes")
    return [export_home(simulate(SimConfig(days=4, homes=1, seed=seed)), base / f"home{seed}") for seed in (1, 2)]
