"""The compact forest encoding (``recognition.tree_ensemble``): what skl2onnx writes as a
``TreeEnsembleClassifier`` is rewritten as ONNX's ``TreeEnsemble`` (ai.onnx.ml 5), smaller, with the forest's
probabilities, run by onnxruntime itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qilu_hub.recognition.datasets import Dataset
from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.runtime import SceneModel
from qilu_hub.recognition.training import TrainConfig, build_matrix, fit, to_onnx
from qilu_hub.recognition.tree_ensemble import TREE_ENSEMBLE_OPSET, rewrite_forests

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
HALF_PRECISION = 2.0**-11  # relative rounding of a float16 table entry; the entries of a window sum to 1


def _run(model: Any, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {session.get_inputs()[0].name: X})[0]


def _classifier_encoding(model: Any) -> Any:
    """What skl2onnx writes for ``model`` (leaves listing only their classes), before the rewrite."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from qilu_hub.recognition.training import compact_trees

    onx = convert_sklearn(model, initial_types=[("features", FloatTensorType([None, DEFAULT_SPEC.n_features]))],
                          options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    compact_trees(onx)
    return onx


def test_an_exported_forest_uses_the_compact_operator_and_keeps_its_probabilities(
    trained: tuple[Any, Path], sim_dataset: Dataset
) -> None:
    model, path = trained
    exported = onnx.load(path)
    ops = {n.op_type for n in exported.graph.node}
    assert "TreeEnsemble" in ops and "TreeEnsembleClassifier" not in ops
    assert {o.domain: o.version for o in exported.opset_import}["ai.onnx.ml"] == TREE_ENSEMBLE_OPSET
    assert [o.name for o in exported.graph.output] == ["probabilities"]
    X = build_matrix(sim_dataset).X
    ours, forest = SceneModel.load(path, DEFAULT_SPEC).predict_proba(X), model.predict_proba(X)
    np.testing.assert_allclose(ours, forest, atol=HALF_PRECISION)
    ties = np.sort(forest, axis=1)[:, -1] - np.sort(forest, axis=1)[:, -2] < 2 * HALF_PRECISION
    assert np.array_equal(ours.argmax(axis=1)[~ties], forest.argmax(axis=1)[~ties])


def test_the_compact_file_is_less_than_half_the_classifier_encoding(trained: tuple[Any, Path]) -> None:
    """The forest alone: our metadata (labels, feature spec, decoder) is the same in both."""
    model, path = trained
    exported = onnx.load(path)
    del exported.metadata_props[:]
    assert len(exported.SerializeToString()) < len(_classifier_encoding(model).SerializeToString()) / 2


def test_pure_leaves_map_to_targets_without_a_table(sim_dataset: Dataset) -> None:
    """Fully grown trees end in single-class leaves: each leaf votes for one target directly, and
    the sums are the forest's to float32 rounding (no half-precision table)."""
    matrix = build_matrix(sim_dataset)
    model = fit(matrix.X, matrix.y, TrainConfig(n_estimators=4, max_depth=None, min_samples_leaf=1, n_jobs=1))
    exported = onnx.load_from_string(to_onnx(model, DEFAULT_SPEC))
    assert [n.op_type for n in exported.graph.node] == ["TreeEnsemble", "Identity"]
    np.testing.assert_allclose(_run(exported, matrix.X[::7]), model.predict_proba(matrix.X[::7]), atol=1e-6)


def _hand_made(post_transform: str, base_values: list[float] | None = None) -> Any:
    """Three trees over 2 features and 3 classes, in the old encoding.  Trees 0 and 2 are lone leaves.  Tree 1
    splits on feature 1 (<= 0.5: leaf 1) and then feature 0 (< 2.0: leaf 3, else leaf 4); leaf 3 votes for two
    classes.  Its nodes are listed out of id order, as nothing in the format promises an order."""
    from onnx import TensorProto, helper

    #        tree 0 | tree 1: root, interior 2, leaves 4, 1, 3 | tree 2
    nodes = [(0, 0, 0, 0.0, "LEAF", 0, 0),
             (1, 0, 1, 0.5, "BRANCH_LEQ", 1, 2), (1, 2, 0, 2.0, "BRANCH_LT", 3, 4),
             (1, 4, 0, 0.0, "LEAF", 0, 0), (1, 1, 0, 0.0, "LEAF", 0, 0), (1, 3, 0, 0.0, "LEAF", 0, 0),
             (2, 0, 0, 0.0, "LEAF", 0, 0)]
    votes = [(0, 0, 0, 0.125), (0, 0, 2, 0.125), (1, 1, 1, 0.5), (1, 3, 0, 0.125), (1, 3, 2, 0.375),
             (1, 4, 2, 0.5), (2, 0, 1, 0.25)]
    columns = list(zip(*nodes, strict=True))
    vote_columns = list(zip(*votes, strict=True))
    attrs: dict[str, Any] = {
        "nodes_treeids": list(columns[0]), "nodes_nodeids": list(columns[1]), "nodes_featureids": list(columns[2]),
        "nodes_values": list(columns[3]), "nodes_modes": list(columns[4]),
        "nodes_truenodeids": list(columns[5]), "nodes_falsenodeids": list(columns[6]),
        "class_treeids": list(vote_columns[0]), "class_nodeids": list(vote_columns[1]),
        "class_ids": list(vote_columns[2]), "class_weights": list(vote_columns[3]),
        "classlabels_strings": ["a", "b", "c"], "post_transform": post_transform,
    }
    if base_values is not None:
        attrs["base_values"] = base_values
    node = helper.make_node("TreeEnsembleClassifier", ["features"], ["label", "probabilities"],
                            domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph(
        [node], "forest", [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("label", TensorProto.STRING, [None]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8  # what skl2onnx writes; the rewrite raises it as far as the new operator needs
    return model


@pytest.mark.parametrize(("post_transform", "base_values"), [("NONE", None), ("SOFTMAX", [0.5, -1.0, 0.25])])
def test_a_hand_made_forest_gives_the_same_scores_after_the_rewrite(
    post_transform: str, base_values: list[float] | None
) -> None:
    """One-leaf trees first and last, nodes listed out of id order, strict and non-strict splits, a leaf with two
    votes, a softmax with base values: every window of a grid lands on both sides of every split."""
    before = _hand_made(post_transform, base_values)
    after = _hand_made(post_transform, base_values)
    assert rewrite_forests(after)
    onnx.checker.check_model(after)
    grid = np.array([[x0, x1] for x0 in (1.0, 2.0, 3.0) for x1 in (0.0, 0.5, 1.0)], dtype=np.float32)
    np.testing.assert_allclose(_run(after, grid), _run(before, grid), atol=HALF_PRECISION)
    assert len(np.unique(_run(after, grid).round(4), axis=0)) == 3  # all three of tree 1's leaves were reached


def test_a_forest_it_cannot_rewrite_faithfully_is_left_as_it_was() -> None:
    model = _hand_made("LOGISTIC")
    before = model.SerializeToString()
    assert not rewrite_forests(model)
    assert model.SerializeToString() == before
