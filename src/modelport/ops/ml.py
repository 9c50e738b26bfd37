"""The ``ai.onnx.ml`` operators that classical-ML converters (skl2onnx, onnxmltools) write.

Numeric work is array code, so a tree ensemble or a label lookup traces into torch, jax and
TensorFlow like any other node; strings exist only as numpy object arrays and are mapped on the
host.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelport.ops.registry import op
from modelport.ops.shape import shape_of

ML = "ai.onnx.ml"


@op("Binarizer", 1, domain=ML)
def binarizer(ctx: Any, x: Any, *, threshold: float = 0.0) -> Any:
    xp = ctx.xp
    return xp.astype(x > xp.asarray(threshold, dtype=x.dtype), x.dtype)


@op("ArrayFeatureExtractor", 1, domain=ML, host=(1,))
def array_feature_extractor(ctx: Any, x: Any, indices: Any) -> Any:
    """The columns ``indices`` (any shape, read flat) of the last axis; a vector reads as one
    row, as onnxruntime does."""
    xp = ctx.xp
    flat = np.asarray(indices, dtype=np.int64).reshape(-1)
    taken = xp.take(x, xp.asarray(flat), axis=len(shape_of(x)) - 1)
    leading = shape_of(x)[:-1] or (1,)
    return xp.reshape(taken, (*leading, flat.size))


# --------------------------------------------------------------------------------------------
# LabelEncoder


def _lookup(ctx: Any, x: Any, keys: np.ndarray, values: np.ndarray, default: Any) -> Any:
    """Each element of ``x`` mapped through ``keys -> values``, ``default`` where absent."""
    if keys.dtype == object or values.dtype == object:  # strings: on the host
        table = dict(zip(keys.tolist(), values.tolist(), strict=True))
        host = np.asarray(ctx.fw.to_host(x) if ctx.fw.is_native(x) else x)
        out = np.array([table.get(_key(k), default) for k in host.reshape(-1).tolist()],
                       dtype=values.dtype)
        return out.reshape(host.shape)
    # numbers: a sorted search, so the lookup stays array code; a NaN key matches NaN
    xp = ctx.xp
    nan_value = None
    if np.issubdtype(keys.dtype, np.floating) and np.isnan(keys).any():
        nan_value = values[np.isnan(keys)][0]
        keys, values = keys[~np.isnan(keys)], values[~np.isnan(keys)]
    out = xp.full(shape_of(x), default, dtype=xp.asarray(values).dtype)
    if keys.size:
        order = np.argsort(keys, kind="stable")
        sorted_keys = xp.asarray(keys[order])
        position = xp.clip(xp.searchsorted(sorted_keys, xp.reshape(x, (-1,))), 0,
                           keys.size - 1)
        hit = xp.reshape(xp.take(sorted_keys, position), shape_of(x)) == x
        mapped = xp.reshape(xp.take(xp.asarray(values[order]), position), shape_of(x))
        out = xp.where(hit, mapped, out)
    if nan_value is not None:
        out = xp.where(xp.isnan(x), xp.asarray(nan_value, dtype=out.dtype), out)
    return out


def _key(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _typed(values: Sequence[Any] | None, dtype: Any) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=dtype)


@op("LabelEncoder", 2, 4, domain=ML)
def label_encoder(ctx: Any, x: Any, *, keys_floats: list[float] | None = None,
                  keys_int64s: list[int] | None = None,
                  keys_strings: list[str] | None = None, keys_tensor: Any = None,
                  values_floats: list[float] | None = None,
                  values_int64s: list[int] | None = None,
                  values_strings: list[str] | None = None, values_tensor: Any = None,
                  default_float: float = -0.0, default_int64: int = -1,
                  default_string: str = "_Unused", default_tensor: Any = None) -> Any:
    keys = next(k for k in (keys_tensor, _typed(keys_floats, np.float32),
                            _typed(keys_int64s, np.int64), _typed(keys_strings, object))
                if k is not None)
    if values_tensor is not None:
        values, default = values_tensor, (default_tensor.reshape(-1)[0]
                                          if default_tensor is not None else None)
    elif values_floats is not None:
        values, default = np.asarray(values_floats, np.float32), default_float
    elif values_int64s is not None:
        values, default = np.asarray(values_int64s, np.int64), default_int64
    else:
        values, default = np.asarray(values_strings, object), default_string
    if default is None:  # a values_tensor without default_tensor: the type's "unused" value
        default = {"O": "_Unused", "f": -0.0}.get(values.dtype.kind, -1)
    if values.dtype.kind == "U":
        values = values.astype(object)
    if keys.dtype.kind == "U":
        keys = keys.astype(object)
    return _lookup(ctx, x, keys, values, default)


@op("LabelEncoder", 1, domain=ML)
def label_encoder_1(ctx: Any, x: Any, *, classes_strings: list[str] | None = None,
                    default_int64: int = -1, default_string: str = "_Unused") -> Any:
    """Strings to their position in ``classes_strings``, or positions back to strings."""
    classes = np.asarray(classes_strings or [], dtype=object)
    positions = np.arange(classes.size, dtype=np.int64)
    host = np.asarray(ctx.fw.to_host(x) if ctx.fw.is_native(x) else x)
    if host.dtype == object:
        return _lookup(ctx, x, classes, positions, default_int64)
    return _lookup(ctx, x, positions, classes, default_string)


# --------------------------------------------------------------------------------------------
# TreeEnsemble: every tree walked at once, one level per step, as array code

_LEQ, _LT, _GTE, _GT, _EQ, _NEQ, _MEMBER = range(7)
_SUM, _AVERAGE, _MIN, _MAX = 1, 0, 2, 3
_COMPARISONS = {_LEQ: operator.le, _LT: operator.lt, _GTE: operator.ge, _GT: operator.gt,
                _EQ: operator.eq, _NEQ: operator.ne}


def _tree_tables(nodes_featureids: list[int], nodes_modes: np.ndarray,
                 nodes_truenodeids: list[int], nodes_falsenodeids: list[int],
                 nodes_trueleafs: list[int], nodes_falseleafs: list[int], n_leaves: int,
                 tree_roots: list[int]) -> dict[str, np.ndarray]:
    """Nodes and leaves in one index space (leaf ``j`` is ``n + j``, and steps to itself),
    the start of each tree, and the number of steps that reaches every leaf."""
    n = len(nodes_featureids)
    true_next = np.array([t + n * leaf for t, leaf in zip(nodes_truenodeids, nodes_trueleafs,
                                                           strict=True)], np.int64)
    false_next = np.array([f + n * leaf for f, leaf in zip(nodes_falsenodeids,
                                                            nodes_falseleafs, strict=True)],
                          np.int64)
    itself = np.arange(n, n + n_leaves, dtype=np.int64)
    # A root whose both branches are the same leaf is that leaf (a one-leaf tree).
    starts = np.array([true_next[r] if true_next[r] == false_next[r] >= n else r
                       for r in tree_roots], np.int64)
    depth, frontier = 0, set(starts[starts < n].tolist())
    while frontier:
        depth += 1
        frontier = {int(c) for i in frontier for c in (true_next[i], false_next[i]) if c < n}
        if depth > n:
            raise ValueError("TreeEnsemble: the nodes form a cycle")
    return {"true_next": np.concatenate([true_next, itself]),
            "false_next": np.concatenate([false_next, itself]),
            "feature": np.concatenate([np.asarray(nodes_featureids, np.int64),
                                       np.zeros(n_leaves, np.int64)]),
            "mode": np.concatenate([np.asarray(nodes_modes, np.int64),
                                    np.zeros(n_leaves, np.int64)]),
            "starts": starts, "depth": np.asarray(depth)}


def _members(nodes_modes: np.ndarray, membership_values: np.ndarray | None,
             n_total: int) -> np.ndarray:
    """Each MEMBER node's set, in order of the NaN-separated runs of ``membership_values``,
    as rows padded with NaN (other nodes: all NaN)."""
    runs: list[list[float]] = [[]]
    for value in ([] if membership_values is None else membership_values.reshape(-1)):
        if np.isnan(value):
            runs.append([])
        else:
            runs[-1].append(float(value))
    member_nodes = [i for i, m in enumerate(np.asarray(nodes_modes)) if m == _MEMBER]
    width = max((len(r) for r in runs), default=0) or 1
    table = np.full((n_total, width), np.nan)
    for node, run in zip(member_nodes, runs, strict=False):
        table[node, :len(run)] = run
    return table


def _gather(ctx: Any, table: Any, index: Any) -> Any:
    xp = ctx.xp
    return xp.reshape(xp.take(table, xp.reshape(index, (-1,)), axis=0),
                      (*shape_of(index), *shape_of(table)[1:]))


@op("TreeEnsemble", 5, domain=ML)
def tree_ensemble(ctx: Any, x: Any, *, nodes_splits: np.ndarray, nodes_featureids: list[int],
                  nodes_modes: np.ndarray, nodes_truenodeids: list[int],
                  nodes_falsenodeids: list[int], nodes_trueleafs: list[int],
                  nodes_falseleafs: list[int], leaf_targetids: list[int],
                  leaf_weights: np.ndarray, tree_roots: list[int], n_targets: int,
                  aggregate_function: int = _SUM, post_transform: int = 0,
                  nodes_hitrates: Any = None,
                  nodes_missing_value_tracks_true: list[int] | None = None,
                  membership_values: np.ndarray | None = None) -> Any:
    if post_transform != 0:
        raise NotImplementedError(f"TreeEnsemble post_transform {post_transform}")
    xp, dtype = ctx.xp, x.dtype
    n_leaves = len(leaf_targetids)
    t = _tree_tables(nodes_featureids, nodes_modes, nodes_truenodeids, nodes_falsenodeids,
                     nodes_trueleafs, nodes_falseleafs, n_leaves, tree_roots)
    n = len(nodes_featureids)
    pad = np.zeros(n_leaves)
    split = xp.asarray(np.concatenate([np.asarray(nodes_splits, np.float64), pad]), dtype=dtype)
    missing_true = xp.asarray(np.concatenate(
        [np.asarray(nodes_missing_value_tracks_true or [0] * n, bool), pad.astype(bool)]))
    members = xp.asarray(_members(nodes_modes, membership_values, n + n_leaves), dtype=dtype)
    feature, mode = xp.asarray(t["feature"]), xp.asarray(t["mode"])
    true_next, false_next = xp.asarray(t["true_next"]), xp.asarray(t["false_next"])
    modes = {int(m) for m in np.asarray(nodes_modes).reshape(-1)}
    rows = shape_of(x)[0]
    index = xp.broadcast_to(xp.asarray(t["starts"])[None, :], (rows, t["starts"].size))
    for _ in range(int(t["depth"])):
        value = xp.take_along_axis(x, _gather(ctx, feature, index), axis=1)
        threshold = _gather(ctx, split, index)
        node_mode = _gather(ctx, mode, index)
        goes_true = xp.any(value[..., None] == _gather(ctx, members, index), axis=-1)
        for code in modes - {_MEMBER}:  # only the comparisons the model uses
            goes_true = xp.where(node_mode == code, _COMPARISONS[code](value, threshold),
                                 goes_true)
        goes_true = goes_true | (xp.isnan(value) & _gather(ctx, missing_true, index))
        index = xp.where(goes_true, _gather(ctx, true_next, index),
                         _gather(ctx, false_next, index))
    leaf = index - n
    weight = _gather(ctx, xp.asarray(np.asarray(leaf_weights), dtype=dtype), leaf)
    target = _gather(ctx, xp.asarray(np.asarray(leaf_targetids, np.int64)), leaf)
    hits = target[..., None] == xp.arange(n_targets, dtype=target.dtype)  # rows, trees, targets
    if aggregate_function in (_SUM, _AVERAGE):
        total = xp.sum(xp.where(hits, weight[..., None], xp.zeros_like(weight[..., None])),
                       axis=1)
        return total / len(tree_roots) if aggregate_function == _AVERAGE else total
    # A target that no tree reaches scores 0, as in onnxruntime (the reference evaluator
    # leaves the type's extreme there).
    reduce, start = (xp.min, xp.inf) if aggregate_function == _MIN else (xp.max, -xp.inf)
    best = reduce(xp.where(hits, weight[..., None], xp.asarray(start, dtype=dtype)), axis=1)
    return xp.where(xp.any(hits, axis=1), best, xp.zeros_like(best))
