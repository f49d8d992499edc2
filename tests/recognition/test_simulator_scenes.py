"""`guests` and `waking_up` are produced by the simulator and learnt from it (they had never been checked)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.simulator import SimConfig, simulate

RARE = ("guests", "waking_up")


def test_simulator_produces_every_scene() -> None:
    from qilu_hub.recognition.mapping import SCENES

    counts = Counter(iv.label for iv in simulate(SimConfig(days=14, homes=2, seed=1)).intervals)
    assert set(counts) == set(SCENES)
    assert counts["waking_up"] >= 14  # every simulated morning, in every home
    assert counts["guests"] >= 2  # mostly at weekends


@pytest.mark.timeout(300)
def test_rare_scenes_are_learnt_above_chance(tmp_path: Path) -> None:
    """Train on some simulated homes, test on others (another seed): recall and precision of guests and
    waking_up far above chance (recall 1/9 for a guess, precision = the scene's share of the slices)."""
    from qilu_hub.recognition.runtime import SceneModel
    from qilu_hub.recognition.training import TrainConfig, build_matrix, fit, to_onnx

    train = build_matrix(simulate(SimConfig(days=14, homes=2, seed=1)), DEFAULT_SPEC)
    test = build_matrix(simulate(SimConfig(days=7, homes=2, seed=7)), DEFAULT_SPEC)
    model_path = tmp_path / "sim.onnx"
    model_path.write_bytes(to_onnx(fit(train.X, train.y, TrainConfig(n_estimators=12, n_jobs=1)), DEFAULT_SPEC))
    model = SceneModel.load(model_path, DEFAULT_SPEC)  # through the runtime, as the hub runs it
    predicted = np.asarray(model.labels)[model.predict_proba(test.X).argmax(axis=1)]
    for scene in RARE:
        truth = test.y == scene
        assert truth.any(), scene
        recall = float(np.mean(predicted[truth] == scene))
        precision = float(np.mean(test.y[predicted == scene] == scene))
        share = float(np.mean(truth))
        assert recall > 0.5, (scene, recall)
        assert precision > 10 * share, (scene, precision, share)
