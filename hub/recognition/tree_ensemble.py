"""Rewriting a forest exported by skl2onnx into ONNX's compact tree operator (``ai.onnx.ml`` 5 ``TreeEnsemble``).

skl2onnx writes forests as ``TreeEnsembleClassifier`` (``ai.onnx.ml`` 1–3), whose encoding is wasteful for
small files: every node, leaves included, repeats its tree id, node id, feature, threshold, both children
and a mode *string* (``"BRANCH_LEQ"`` costs 12 bytes a node), and every leaf's class votes repeat tree id
and node id again.  The 2024 ``TreeEnsemble`` operator (ONNX 1.16, ``ai.onnx.ml`` opset 5) lists only
interior nodes, with the mode as one byte of a tensor and the thresholds as a packed tensor, and leaves apart.

Its leaves carry one weight for one target, so a forest's multi-class leaves are written as a lookup:

* ``TreeEnsemble`` with one target per tree, each leaf's weight being the row of its class probabilities in
  a table (rows shared by leaves that hold the same probabilities, e.g. every pure leaf of a class), so the
  operator returns, per window, the table row each tree reached;
* ``Gather`` those rows from the table (stored as float16, widened to float32) and ``ReduceSum`` over
  the trees, which is the sum the old operator computed.

Where every leaf votes for a single class (boosted trees, forests of pure leaves) the leaves map directly to
``TreeEnsemble`` targets and no table is needed.  The graph keeps only the ``probabilities`` output (the hub
reads that and takes label names from the model's metadata).  Outputs equal the old operator's up to float
summation order and the table's half precision: a table entry is stored as float16 (relative rounding
2**-11), and a window's entries sum to 1, so no probability moves by more than 2**-11 (1.2e-4 measured on the
bundled model; ``tests/recognition/test_tree_ensemble.py``).  onnxruntime runs the operator from 1.21 on (1.20.1
refuses it: "Could not find an implementation for TreeEnsemble(5)"; both tried).

Each tree is laid out depth first from its root, its nodes after the previous tree's: with roots out of that
order onnxruntime 1.28 sent windows to the wrong leaves, so the layout is not left to chance.

Needs ``onnx`` (a training dependency), never imported by the running hub.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TREE_ENSEMBLE_OPSET", "rewrite_forests"]

TREE_ENSEMBLE_OPSET = 5  # ai.onnx.ml opset that holds TreeEnsemble
_MODES = {"BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3, "BRANCH_EQ": 4, "BRANCH_NEQ": 5}


def rewrite_forests(onx: Any) -> bool:
    """Replace every ``TreeEnsembleClassifier`` of ``onx`` (an ``onnx.ModelProto``) that feeds the
    ``probabilities`` output with the compact encoding, in place.  Returns whether anything was rewritten;
    a node it cannot rewrite faithfully (a post transform other than none or softmax, missing-value
    routing, more than 2**24 leaves) is left as it was."""
    from onnx import helper

    graph = onx.graph
    rewritten = False
    for position, node in enumerate(list(graph.node)):
        if node.op_type != "TreeEnsembleClassifier" or len(node.output) < 2:
            continue
        replacement = _compact_nodes(node, prefix=f"{node.name or 'forest'}_{position}")
        if replacement is None:
            continue
        nodes, initializers = replacement
        index = list(graph.node).index(node)
        graph.node.remove(node)
        for offset, new in enumerate(nodes):
            graph.node.insert(index + offset, new)
        graph.initializer.extend(initializers)
        # The label output is dropped: nothing downstream needs the argmax as a string tensor.
        for output in list(graph.output):
            if output.name == node.output[0]:
                graph.output.remove(output)
        rewritten = True
    if rewritten:
        for opset in onx.opset_import:
            if opset.domain == "ai.onnx.ml":
                opset.version = max(opset.version, TREE_ENSEMBLE_OPSET)
        if not any(o.domain == "ai.onnx.ml" for o in onx.opset_import):
            onx.opset_import.append(helper.make_opsetid("ai.onnx.ml", TREE_ENSEMBLE_OPSET))
        onx.ir_version = max(onx.ir_version, 10)  # ai.onnx.ml 5 came with IR version 10 (ONNX 1.16)
    return rewritten


def _ints(attrs: dict[str, Any], name: str) -> np.ndarray:
    return np.asarray(attrs[name].ints, dtype=np.int64) if name in attrs else np.zeros(0, dtype=np.int64)


def _compact_nodes(node: Any, prefix: str) -> tuple[list[Any], list[Any]] | None:
    """The nodes and initializers that compute ``node``'s probabilities output, or None."""
    from onnx import TensorProto, helper, numpy_helper

    attrs = {a.name: a for a in node.attribute}
    transform = attrs["post_transform"].s.decode() if "post_transform" in attrs else "NONE"
    if transform not in ("NONE", "SOFTMAX") or any(_ints(attrs, "nodes_missing_value_tracks_true")):
        return None
    labels = attrs.get("classlabels_strings") or attrs.get("classlabels_int64s")
    n_classes = len(labels.strings) + len(labels.ints) if labels is not None else 0
    if n_classes < 3:  # the operator's binary case reads a single weight per leaf differently
        return None
    base = np.asarray(attrs["base_values"].floats, dtype=np.float32) if "base_values" in attrs else None

    trees, ids = _ints(attrs, "nodes_treeids"), _ints(attrs, "nodes_nodeids")
    features = _ints(attrs, "nodes_featureids")
    thresholds = np.asarray(attrs["nodes_values"].floats, dtype=np.float32)
    modes = [m.decode() for m in attrs["nodes_modes"].strings]
    true_ids, false_ids = _ints(attrs, "nodes_truenodeids"), _ints(attrs, "nodes_falsenodeids")
    vote_trees, vote_nodes = _ints(attrs, "class_treeids"), _ints(attrs, "class_nodeids")
    vote_classes = _ints(attrs, "class_ids")
    vote_weights = np.asarray(attrs["class_weights"].floats, dtype=np.float32)
    if any(m != "LEAF" and m not in _MODES for m in modes):
        return None

    n_nodes = len(modes)
    where = {(int(trees[i]), int(ids[i])): i for i in range(n_nodes)}
    children = {(int(trees[i]), int(c))
                for i in range(n_nodes) if modes[i] != "LEAF" for c in (true_ids[i], false_ids[i])}
    roots_of: dict[int, list[int]] = {}
    for key, i in where.items():
        if key not in children:
            roots_of.setdefault(key[0], []).append(i)
    tree_list = sorted(roots_of)
    if any(len(r) != 1 for r in roots_of.values()) or not children <= where.keys():
        return None  # not a forest of trees: leave it to the operator that was written

    # Laid out tree by tree, each depth first from its root: interior nodes in ``interior`` (old positions; a
    # lone leaf's tree gets a stand-in node, -1, whose two branches reach that leaf), leaves in ``leaves``.
    interior: list[int] = []
    leaves: list[int] = []
    leaf_tree: list[int] = []
    roots: list[int] = []
    interior_at: dict[tuple[int, int], int] = {}
    leaf_at: dict[tuple[int, int], int] = {}
    stand_in: dict[int, int] = {}  # a one-leaf tree's stand-in root (in ``interior``) -> its leaf's first copy
    for position, tree in enumerate(tree_list):
        (root,) = roots_of[tree]
        roots.append(len(interior))
        if modes[root] == "LEAF":
            # A one-leaf tree gets a stand-in root whose two branches reach two copies of its leaf.  (The
            # operator's own encoding, both branches at one leaf, made onnxruntime 1.28 add that leaf's weight to
            # the previous tree's target.)
            stand_in[len(interior)] = len(leaves)  # its first copy; the second is laid out right after
            interior.append(-1)
            leaf_tree.append(position)
            leaves.append(root)
        stack = [root]
        while stack:
            i = stack.pop()
            key = (tree, int(ids[i]))
            if modes[i] == "LEAF":
                leaf_at[key] = len(leaves)
                leaves.append(i)
                leaf_tree.append(position)
                continue
            interior_at[key] = len(interior)
            interior.append(i)
            stack += [where[(tree, int(false_ids[i]))], where[(tree, int(true_ids[i]))]]
    if len(leaves) >= 2**24:  # leaf rows travel as float32 weights, exact below 2**24
        return None

    # Each leaf's class probabilities (the votes skl2onnx wrote for it, summed per class).
    probs = np.zeros((len(leaves), n_classes), dtype=np.float32)
    for tree, leaf, cls, weight in zip(vote_trees, vote_nodes, vote_classes, vote_weights, strict=True):
        probs[leaf_at[(int(tree), int(leaf))], int(cls)] += weight
    first_copies = np.asarray(list(stand_in.values()), dtype=np.int64)  # the votes went to the second copies
    probs[first_copies] = probs[first_copies + 1]
    single_class = bool(np.all(np.count_nonzero(probs, axis=1) <= 1))

    def child(tree: int, node_id: int) -> tuple[int, int]:
        """(index, is_leaf) of a child in the compact arrays."""
        key = (tree, int(node_id))
        return (leaf_at[key], 1) if key in leaf_at else (interior_at[key], 0)

    n_features: list[int] = []
    splits: list[float] = []
    node_modes: list[int] = []
    true_nodes: list[int] = []
    true_leafs: list[int] = []
    false_nodes: list[int] = []
    false_leafs: list[int] = []
    for k, i in enumerate(interior):
        if i < 0:  # the stand-in root of a one-leaf tree
            copy = stand_in[k]
            leaf = copy + 1
            n_features.append(0)
            splits.append(0.0)
            node_modes.append(0)
            true_nodes.append(copy)
            false_nodes.append(leaf)
            true_leafs.append(1)
            false_leafs.append(1)
            continue
        tree = int(trees[i])
        t_index, t_leaf = child(tree, int(true_ids[i]))
        f_index, f_leaf = child(tree, int(false_ids[i]))
        n_features.append(int(features[i]))
        splits.append(float(thresholds[i]))
        node_modes.append(_MODES[modes[i]])
        true_nodes.append(t_index)
        true_leafs.append(t_leaf)
        false_nodes.append(f_index)
        false_leafs.append(f_leaf)

    features_in = node.input[0]
    probabilities = node.output[1]
    common: dict[str, Any] = {
        "tree_roots": roots,
        "nodes_featureids": n_features,
        "nodes_splits": numpy_helper.from_array(np.asarray(splits, dtype=np.float32)),
        "nodes_modes": numpy_helper.from_array(np.asarray(node_modes, dtype=np.uint8)),
        "nodes_truenodeids": true_nodes,
        "nodes_trueleafs": true_leafs,
        "nodes_falsenodeids": false_nodes,
        "nodes_falseleafs": false_leafs,
        "aggregate_function": 1,  # SUM, as the classifier's votes
        "post_transform": 0,
    }
    out: list[Any] = []
    inits: list[Any] = []
    if single_class:
        # A leaf's one vote maps to one target directly.
        leaf_class = np.argmax(probs != 0, axis=1)
        scores = f"{prefix}_scores"
        out.append(helper.make_node(
            "TreeEnsemble", [features_in], [scores], domain="ai.onnx.ml", name=f"{prefix}_trees",
            n_targets=n_classes, leaf_targetids=leaf_class.tolist(),
            leaf_weights=numpy_helper.from_array(probs[np.arange(len(leaves)), leaf_class].astype(np.float32)),
            **common))
    else:
        # A leaf's votes are a table row; the operator returns the row each tree reached.
        table, row_of_leaf = np.unique(probs.astype(np.float16), axis=0, return_inverse=True)
        rows, gathered, scores = f"{prefix}_rows", f"{prefix}_votes", f"{prefix}_scores"
        table_name, axis_name = f"{prefix}_table", f"{prefix}_tree_axis"
        inits += [numpy_helper.from_array(table.astype(np.float16), table_name),
                  numpy_helper.from_array(np.array([1], dtype=np.int64), axis_name)]
        out += [
            helper.make_node(
                "TreeEnsemble", [features_in], [f"{rows}_f"], domain="ai.onnx.ml", name=f"{prefix}_trees",
                n_targets=len(tree_list), leaf_targetids=leaf_tree,
                leaf_weights=numpy_helper.from_array(np.asarray(row_of_leaf, dtype=np.float32).reshape(-1)),
                **common),
            helper.make_node("Cast", [f"{rows}_f"], [rows], to=TensorProto.INT64, name=f"{prefix}_row_index"),
            helper.make_node("Gather", [table_name, rows], [f"{gathered}_16"], axis=0, name=f"{prefix}_lookup"),
            # Summed in float32: the half precision is only how the table is stored.
            helper.make_node("Cast", [f"{gathered}_16"], [gathered], to=TensorProto.FLOAT, name=f"{prefix}_widen"),
            helper.make_node("ReduceSum", [gathered, axis_name], [scores], keepdims=0, name=f"{prefix}_sum"),
        ]
    if base is not None and np.any(base != 0):
        base_name = f"{prefix}_base"
        inits.append(numpy_helper.from_array(base, base_name))
        out.append(helper.make_node("Add", [scores, base_name], [f"{scores}_based"], name=f"{prefix}_base_add"))
        scores = f"{scores}_based"
    if transform == "SOFTMAX":
        out.append(helper.make_node("Softmax", [scores], [probabilities], axis=-1, name=f"{prefix}_softmax"))
    else:
        out.append(helper.make_node("Identity", [scores], [probabilities], name=f"{prefix}_out"))
    return out, inits
