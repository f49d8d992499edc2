"""The model the hub ships (``models/household_scene.onnx``), run as the hub runs it (graph, then its decoder,
each day afresh) on simulated days it was not trained on (the recipe's simulator seed is 0)."""

from __future__ import annotations

import numpy as np

from qilu_hub.recognition.component import DEFAULT_MODEL
from qilu_hub.recognition.evaluation import figures
from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.runtime import SceneModel
from qilu_hub.recognition.simulator import SimConfig, simulate
from qilu_hub.recognition.training import build_matrix


def test_the_bundled_model_is_small() -> None:
    assert DEFAULT_MODEL.is_file() and DEFAULT_MODEL.stat().st_size < 1_000_000


def test_the_bundled_model_tells_every_scene_of_a_simulated_home_apart() -> None:
    # The simulated home is the one every scene is labelled in.  Its idle and away are the hard ones (an empty
    # home and a quiet one look alike); every other scene must be recognised.  The model that learnt its HMM on
    # real days only called 99 % of this home's eating guests.
    m = build_matrix(simulate(SimConfig(days=7, homes=1, seed=11)), DEFAULT_SPEC)
    model = SceneModel.load(DEFAULT_MODEL, DEFAULT_SPEC)
    decided = np.asarray(model.labels)[model.decode(model.predict_proba(m.X), m.days).argmax(axis=1)]
    scenes = sorted(set(m.y.tolist()))
    assert len(scenes) == 9
    recall = figures(m.y, decided, m.days, scenes, n_boot=0)["per_class_accuracy"]
    assert {scene for scene, value in recall.items() if value < 0.9} <= {"idle", "away"}


def test_the_bundled_model_decides_for_class_accuracy() -> None:
    # Trained with --decide balanced (models/MODEL_CARD.md): its decoder divides the filtered posterior by the class
    # frequencies its own transitions settle to, the decision the leave-one-home-out figures were measured with.
    from qilu_hub.recognition.decoder import stationary_distribution

    model = SceneModel.load(DEFAULT_MODEL, DEFAULT_SPEC)
    decoder = model.new_decoder()
    assert decoder is not None and decoder.decision_prior is not None
    np.testing.assert_allclose(decoder.decision_prior, stationary_distribution(decoder.transition), atol=1e-6)
    assert model.metadata.extra["channel_hmm"].endswith(", decides balanced")
