"""Validating scikit-learn's tree node storage before any of its compiled code reads it.

``sklearn.tree._tree.Tree`` (decision trees, forests, gradient boosting) and the
HistGradientBoosting ``TreePredictor`` keep nodes as arrays of raw indices: children,
split features, category bitsets. Prediction follows them in Cython without bounds checks,
so an index out of range reads (or, for ``decision_path``, writes) outside the arrays, and a
child pointing back up loops forever. A tree built by scikit-learn always satisfies what is
checked here: every split's children come after it and each node has exactly one parent (so
following children ends), split features index the model's input, and the stated depth
bounds the real one. Each function answers the problems found (empty: valid).
"""

from __future__ import annotations

import numpy as np

_TREE_FIELDS = ("left_child", "right_child", "feature")
_PREDICTOR_FIELDS = ("left", "right", "feature_idx", "is_leaf", "is_categorical", "bitset_idx")
_BITSET_WORDS = 8  # 256 categories, as scikit-learn's bitsets are laid out


def tree_problems(
    n_features: int,
    n_classes: np.ndarray,
    n_outputs: int,
    max_depth: int,
    node_count: int,
    nodes: np.ndarray,
    values: np.ndarray,
    input_features: int | None,
) -> list[str]:
    """Problems of a ``Tree``'s state; ``input_features``: the owning model's input width."""
    problems = _fields_problems("Tree nodes", nodes, _TREE_FIELDS)
    if problems:
        return problems
    if n_features < 1 or n_outputs < 1:
        return [f"n_features ({n_features}) and n_outputs ({n_outputs}) must be positive"]
    if n_classes.ndim != 1 or n_classes.shape[0] != n_outputs or n_classes.dtype.kind not in "iu":
        return [f"n_classes must hold one integer per output ({n_outputs})"]
    if n_classes.min() < 1:
        return ["n_classes must be positive"]
    if node_count != nodes.shape[0] or node_count < 1:
        return [f"node_count is {node_count} but there are {nodes.shape[0]} nodes"]
    expected = (node_count, n_outputs, int(n_classes.max()))
    if values.shape != expected or values.dtype != np.float64:
        return [f"values must be float64 of shape {expected}, not {values.dtype} {values.shape}"]
    if input_features is None:
        # Without it, the model does not check its input's width before the tree reads it.
        return ["a Tree outside a model that states its n_features_in_"]
    limit = min(n_features, input_features)
    left, right, feature = (nodes[f].astype(np.int64) for f in _TREE_FIELDS)
    is_leaf = left == -1
    if np.any(right[is_leaf] != -1):
        return ["a leaf (left child -1) has a right child"]
    problems = _children_problems(np.flatnonzero(~is_leaf), left, right, node_count)
    problems += _feature_problems(feature[~is_leaf], limit)
    if not problems and (depth := _depth(left, right, ~is_leaf)) > max_depth:
        problems.append(f"max_depth is {max_depth} but the tree is {depth} deep")
    return problems


def predictor_problems(
    nodes: np.ndarray,
    binned_bitsets: np.ndarray,
    raw_bitsets: np.ndarray,
    input_features: int | None,
    categorical: np.ndarray | None,
) -> list[str]:
    """Problems of a HistGradientBoosting ``TreePredictor``; ``categorical``: which input
    features the model's bin mapper treats as categorical."""
    problems = _fields_problems("TreePredictor nodes", nodes, _PREDICTOR_FIELDS)
    if problems:
        return problems
    if input_features is None:
        return ["a TreePredictor outside a model that states its n_features_in_"]
    for what, bitsets in (("binned", binned_bitsets), ("raw", raw_bitsets)):
        if bitsets.ndim != 2 or bitsets.shape[1] != _BITSET_WORDS or bitsets.dtype != np.uint32:
            return [f"{what} category bitsets must be uint32 of shape (n, {_BITSET_WORDS})"]
    if binned_bitsets.shape != raw_bitsets.shape:
        return ["binned and raw category bitsets differ in shape"]
    count = nodes.shape[0]
    if count < 1:
        return ["a TreePredictor without nodes"]
    left, right, feature, is_leaf, is_cat, bitset = (
        nodes[f].astype(np.int64) for f in _PREDICTOR_FIELDS
    )
    split = np.flatnonzero(is_leaf == 0)
    problems = _children_problems(split, left, right, count)
    problems += _feature_problems(feature[split], input_features)
    cat = split[is_cat[split] != 0]
    if cat.size:
        problems += _category_problems(feature[cat], bitset[cat], raw_bitsets.shape[0], categorical)
    return problems


def _fields_problems(what: str, nodes: np.ndarray, fields: tuple[str, ...]) -> list[str]:
    names = nodes.dtype.names or ()
    missing = [f for f in fields if f not in names]
    if nodes.ndim != 1 or missing:
        return [f"{what} must be a 1-d record array with fields {', '.join(fields)}"]
    if any(nodes.dtype[f].kind not in "iu" for f in fields):
        return [f"{what}: {', '.join(fields)} must be integers"]
    return []


def _children_problems(
    split: np.ndarray, left: np.ndarray, right: np.ndarray, count: int
) -> list[str]:
    problems = []
    for side, child in (("left", left[split]), ("right", right[split])):
        # After its parent (so following children always ends) and inside the array.
        bad = (child <= split) | (child >= count)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            problems.append(
                f"node {int(split[i])} has {side} child {int(child[i])}, outside "
                f"({int(split[i])}, {count})"
            )
    if not problems:
        parents = np.bincount(np.concatenate([left[split], right[split]]), minlength=count)
        if parents[0] != 0 or np.any(parents[1:] != 1):
            problems.append("nodes do not form a tree (a node has no parent or several)")
    return problems


def _feature_problems(features: np.ndarray, limit: int) -> list[str]:
    bad = (features < 0) | (features >= limit)
    if bad.any():
        return [f"a split reads feature {int(features[bad][0])}; the input has {limit}"]
    return []


def _category_problems(
    features: np.ndarray, bitsets: np.ndarray, n_bitsets: int, categorical: np.ndarray | None
) -> list[str]:
    if np.any((bitsets < 0) | (bitsets >= n_bitsets)):
        return [f"a categorical split names a bitset outside the {n_bitsets} stored"]
    if categorical is None or categorical.dtype.kind not in "biu" or categorical.ndim != 1:
        return ["categorical splits in a model whose bin mapper has no categorical features"]
    if np.any(features >= categorical.shape[0]) or not np.all(categorical[features] != 0):
        return ["a categorical split on a feature the bin mapper does not treat as categorical"]
    return []


def _depth(left: np.ndarray, right: np.ndarray, is_split: np.ndarray) -> int:
    """How deep the tree rooted at node 0 is (it is a tree: checked before)."""
    level, depth = np.array([0]), 0
    while True:
        inner = level[is_split[level]]
        if inner.size == 0:
            return depth
        level, depth = np.concatenate([left[inner], right[inner]]), depth + 1
