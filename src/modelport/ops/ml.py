"""The ``ai.onnx.ml`` operators that classical-ML converters (skl2onnx, onnxmltools) write.

Numeric work is array code, so a tree ensemble or a label lookup traces into torch, jax and
TensorFlow like any other node; strings exist only as numpy object arrays and are mapped on the
host.
"""

from __future__ import annotations

import collections
import functools
import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.ops.context import eager_host_value, host_value
from modelport.ops.elementwise import sigmoid
from modelport.ops.reduction import softmax_along
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
        host = host_value(ctx, x)
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
    host = host_value(ctx, x)
    if host.dtype == object:
        return _lookup(ctx, x, classes, positions, default_int64)
    return _lookup(ctx, x, positions, classes, default_string)


# --------------------------------------------------------------------------------------------
# Tree ensembles: every tree walked at once, one level per step, as array code

_LEQ, _LT, _GTE, _GT, _EQ, _NEQ, _MEMBER = range(7)
_SUM, _AVERAGE, _MIN, _MAX = 1, 0, 2, 3
_COMPARISONS = {_LEQ: operator.le, _LT: operator.lt, _GTE: operator.ge, _GT: operator.gt,
                _EQ: operator.eq, _NEQ: operator.ne}
# For an order comparison with finite splits, the values that stand for NaN to send it the
# false way and the true way
_NAN_SIDES = {_LEQ: (np.inf, -np.inf), _LT: (np.inf, -np.inf), _GTE: (-np.inf, np.inf),
              _GT: (-np.inf, np.inf)}
_MODE_NAMES = {"BRANCH_LEQ": _LEQ, "BRANCH_LT": _LT, "BRANCH_GTE": _GTE, "BRANCH_GT": _GT,
               "BRANCH_EQ": _EQ, "BRANCH_NEQ": _NEQ, "BRANCH_MEMBER": _MEMBER, "LEAF": _LEQ}
_AGGREGATES = {"SUM": _SUM, "AVERAGE": _AVERAGE, "MIN": _MIN, "MAX": _MAX}


@dataclass(frozen=True)
class _Forest:
    """Every node of every tree in one index space, leaves stepping to themselves, so that
    ``depth`` steps from ``starts`` reach every tree's leaf; ``weights`` and ``hits`` say what
    each leaf adds to each target."""

    feature: np.ndarray
    split: np.ndarray
    mode: np.ndarray
    true_next: np.ndarray
    false_next: np.ndarray
    missing_true: np.ndarray
    members: np.ndarray
    starts: np.ndarray
    weights: np.ndarray  # nodes, targets
    hits: np.ndarray  # nodes, targets

    @functools.cached_property
    def internal(self) -> np.ndarray:
        return self.true_next != np.arange(len(self.true_next))

    @functools.cached_property
    def tree_depths(self) -> np.ndarray:
        """Each tree's depth: the steps from its root that reach every one of its leaves."""
        depths = np.zeros(self.starts.size, np.int64)
        frontier = self.starts.copy()
        owner = np.arange(self.starts.size)
        for depth in range(len(self.true_next) + 1):
            going = self.internal[frontier]
            if not going.any():
                return depths
            frontier, owner = frontier[going], owner[going]
            depths[owner] = depth + 1
            frontier = np.concatenate([self.true_next[frontier], self.false_next[frontier]])
            owner = np.concatenate([owner, owner])
        raise ValueError("tree ensemble: the nodes form a cycle")

    @functools.cached_property
    def groups(self) -> list[tuple[np.ndarray, int]]:
        """The trees in at most ``_GROUPS`` groups of similar depth, each walked for its own
        deepest tree: a forest of shallow trees and a few deep ones (LightGBM's leaf-wise
        growth) then takes about the steps of its trees, not of its deepest one each."""
        order = np.argsort(self.tree_depths, kind="stable")
        depths = self.tree_depths[order]
        cuts = _cheapest_cuts(depths, _GROUPS)
        return [(order[a:b], int(depths[b - 1])) for a, b in itertools.pairwise(cuts) if b > a]

    @functools.cached_property
    def modes(self) -> frozenset[int]:
        """The branch modes the forest uses (``_LEQ``... ``_MEMBER``)."""
        return frozenset(int(m) for m in np.unique(self.mode[self.internal]))

    @functools.cached_property
    def comparison(self) -> int | None:
        """The one comparison every branch makes (``_LEQ``...), or None when they mix or test
        membership: the perfect-tree walk takes only the former."""
        modes = set(self.modes) or {_LEQ}
        mode = modes.pop()
        return None if modes or mode == _MEMBER else mode

    @functools.cached_property
    def nan_sides(self) -> tuple[float, float] | None:
        """What NaN must become to go (the false way, the true way) of the forest's one order
        comparison, when some branch sends NaN down its true side; None when NaN is tested
        node by node instead (no branch does, the comparison is not an order, or a split is
        infinite, where the stand-in would compare equal)."""
        sides = _NAN_SIDES.get(self.comparison) if self.comparison is not None else None
        if sides is None or not self.missing_true.any() \
                or not np.isfinite(self.split[self.internal]).all():
            return None
        return sides

    @functools.cached_property
    def positioned(self) -> _PositionedNodes:
        """The node walk's tables, a node at position ``2 * node``: each node's entry twice,
        and at ``2 * node + goes_true`` the position of its child that way, so the walk
        needs no multiply and no negation a step."""
        tracked = self.missing_true.any()
        return _PositionedNodes(
            feature=_twice(self.feature), split=_twice(self.split), mode=_twice(self.mode),
            members=_twice(self.members), missing=_twice(self.missing_true) if tracked else None,
            children=2 * np.stack([self.false_next, self.true_next], axis=1).reshape(-1))

    @functools.cached_property
    def perfect_groups(self) -> list[_PerfectTrees | None]:
        """Each group as perfect trees where it is walked so (one comparison, depth up to
        ``_PERFECT_DEPTH``), else None."""
        comparison = self.comparison
        return [self.perfect(trees, depth, comparison)
                if comparison is not None and depth <= _PERFECT_DEPTH else None
                for trees, depth in self.groups]

    def perfect(self, trees: np.ndarray, depth: int, comparison: int) -> _PerfectTrees:
        """``trees`` as perfect binary trees of ``depth``: a leaf above the last level is
        repeated over the whole subtree below it, so it is reached whichever way is taken."""
        level = self.starts[trees][:, None]
        features, splits, missing = [], [], []
        for _ in range(depth):
            features.append(self.feature[level].reshape(-1))
            splits.append(self.split[level].reshape(-1))
            missing.append(self.missing_true[level].reshape(-1))
            level = np.stack([self.false_next[level], self.true_next[level]], axis=-1).reshape(
                len(trees), -1)
        tracked = any(m.any() for m in missing)
        return _PerfectTrees(features, splits, missing if tracked else None, level.reshape(-1),
                             comparison)


@dataclass(frozen=True)
class _PerfectTrees:
    """Per level, every tree's nodes of that level side by side (tree ``t``'s node ``j`` at
    ``t * 2**level + j``, its false child at ``2 * j`` of the next level and its true one at
    ``2 * j + 1``), so that the walk needs no child table; ``leaves`` are the forest's leaf
    nodes below the last level, in the same layout."""

    features: list[np.ndarray]
    splits: list[np.ndarray]
    missing: list[np.ndarray] | None  # None: no branch sends NaN down its true side
    leaves: np.ndarray
    comparison: int  # the one every branch makes


@dataclass(frozen=True)
class _PositionedNodes:
    """See ``_Forest.positioned``."""

    feature: np.ndarray
    split: np.ndarray
    mode: np.ndarray
    members: np.ndarray
    missing: np.ndarray | None  # None: no branch sends NaN down its true side
    children: np.ndarray


# Groups of trees by depth, and the deepest group walked as perfect trees (a tree of depth d
# is padded to 2**d leaves): depth 10, as Microsoft's Hummingbird does. Measured on the
# LightGBM model of docs/benchmarks.md (500 trees of depths 5-17), 8 groups walk it 3x
# faster than one on numpy and torch; perfect trees deeper than 10 slowed jax by half.
_GROUPS = 8
_PERFECT_DEPTH = 10


def _cheapest_cuts(depths: np.ndarray, groups: int) -> list[int]:
    """Cut sorted ``depths`` into at most ``groups`` runs, minimising the steps walked
    (each run's length times its last depth); returns the run boundaries. Only where the
    depth changes can a cut save steps, so the search runs over those places (a few dozen
    at most), not over the trees."""
    n = len(depths)
    if n == 0:
        return [0, 0]
    places = [0, *(np.flatnonzero(np.diff(depths)) + 1).tolist(), n]
    # best[k][b]: the fewest steps for the trees before places[b] in k runs, and the place
    # where the last run starts
    best = [[(0.0, 0)] + [(np.inf, 0)] * (len(places) - 1)]
    for _ in range(groups):
        best.append([(0.0, 0)] + [min(
            ((best[-1][a][0] + (places[b] - places[a]) * float(depths[places[b] - 1]), a)
             for a in range(b)), key=lambda c: c[0]) for b in range(1, len(places))])
    cuts, b, k = [n], len(places) - 1, groups
    while b > 0:
        b = best[k][b][1]
        cuts.append(places[b])
        k -= 1
    return cuts[::-1]


# A node's attributes are the same objects on every call: its forest is built once, keyed by
# one of them (held here, so that its id cannot be reused while the entry lives).
_FORESTS: collections.OrderedDict[int, tuple[Any, _Forest]] = collections.OrderedDict()


def _forest_of(anchor: Any, build: Callable[[], _Forest]) -> _Forest:
    kept = _FORESTS.get(id(anchor))
    if kept is None or kept[0] is not anchor:
        kept = _FORESTS[id(anchor)] = (anchor, build())
        if len(_FORESTS) > 256:
            _FORESTS.popitem(last=False)
    return kept[1]


def _members(modes: np.ndarray, membership_values: np.ndarray | None, n_total: int
             ) -> np.ndarray:
    """Each MEMBER node's set, in order of the NaN-separated runs of ``membership_values``,
    as rows padded with NaN (other nodes: all NaN)."""
    runs: list[list[float]] = [[]]
    for value in ([] if membership_values is None else membership_values.reshape(-1)):
        if np.isnan(value):
            runs.append([])
        else:
            runs[-1].append(float(value))
    member_nodes = [i for i, m in enumerate(modes) if m == _MEMBER]
    width = max((len(r) for r in runs), default=0) or 1
    table = np.full((n_total, width), np.nan)
    for node, run in zip(member_nodes, runs, strict=False):
        table[node, :len(run)] = run
    return table


def _gather(ctx: Any, table: Any, index: Any) -> Any:
    xp = ctx.xp
    return xp.reshape(xp.take(table, xp.reshape(index, (-1,)), axis=0),
                      (*shape_of(index), *shape_of(table)[1:]))


def _walk(ctx: Any, x: Any, forest: _Forest) -> Any:
    """The leaf each tree ends at for each row of ``x``: [rows, trees], the trees in the order
    of ``forest.groups`` (aggregation does not depend on it)."""
    rows = _flat_rows(ctx, x, forest, max([2 * len(forest.true_next)] + [
        p.leaves.size for p in forest.perfect_groups if p is not None]))
    parts = [_walk_perfect(ctx, rows, perfect) if perfect is not None
             else _walk_nodes(ctx, rows, forest, trees, depth)
             for (trees, depth), perfect in zip(forest.groups, forest.perfect_groups,
                                                strict=True)]
    return parts[0] if len(parts) == 1 else ctx.xp.concat(parts, axis=1)


@dataclass(frozen=True)
class _Rows:
    """``x`` as a walk reads it: flat, at ``start + feature`` for each row. Where NaN goes
    each node's own way, ``x`` is there twice, its NaN as the value that goes the false way
    and then as the one that goes the true way; a node that sends NaN down its true side
    reads the second copy (its feature plus ``tracked``), so one comparison decides."""

    x: Any
    start: Any
    count: int
    dtype: Any  # of positions
    tracked: int | None  # None: NaN is tested node by node


def _flat_rows(ctx: Any, x: Any, forest: _Forest, positions: int) -> _Rows:
    """Positions are the framework's type (``Framework.positions``) where they fit int32:
    a walk is bound by their memory traffic."""
    xp = ctx.xp
    rows, width = shape_of(x)
    sides = forest.nan_sides
    fits = max(rows * width * (2 if sides else 1), positions) < 2**31
    dtype = getattr(xp, ctx.fw.positions) if fits else xp.int64
    start = xp.arange(rows, dtype=dtype)[:, None] * width
    if sides is None:
        return _Rows(xp.reshape(x, (-1,)), start, rows, dtype, None)
    nan = xp.isnan(x)
    copies = [xp.reshape(xp.where(nan, xp.asarray(side, dtype=x.dtype), x), (-1,))
              for side in sides]
    return _Rows(xp.concat(copies), start, rows, dtype, rows * width)


def _features(ctx: Any, rows: _Rows, feature: np.ndarray, missing: np.ndarray | None) -> Any:
    """A node table of where each node reads its feature in ``rows.x``."""
    if rows.tracked is not None and missing is not None:
        feature = feature + missing * rows.tracked
    return ctx.xp.asarray(feature, dtype=rows.dtype)


def _walk_perfect(ctx: Any, rows: _Rows, trees: _PerfectTrees) -> Any:
    """Level by level; tree ``t``'s node ``j`` of a level is at ``t * 2**level + j``, so that
    ``2 * at + goes_true`` is already the place of the child on the next level."""
    xp = ctx.xp
    count = trees.features[0].size
    at = xp.broadcast_to(xp.asarray(np.arange(count)[None, :], dtype=rows.dtype),
                         (rows.count, count))
    compare = _COMPARISONS[trees.comparison]
    for level, feature in enumerate(trees.features):
        missing = None if trees.missing is None else trees.missing[level]
        value = _lookup_in(ctx, rows.x, rows.start + _lookup_in(
            ctx, _features(ctx, rows, feature, missing), at))
        goes_true = compare(value, _lookup_in(ctx, xp.asarray(trees.splits[level],
                                                              dtype=rows.x.dtype), at))
        if missing is not None and rows.tracked is None:
            goes_true = goes_true | (xp.isnan(value)
                                     & _lookup_in(ctx, xp.asarray(missing), at))
        at = 2 * at + xp.astype(goes_true, rows.dtype)
    return _lookup_in(ctx, xp.asarray(trees.leaves, dtype=xp.int64), at)


def _twice(table: np.ndarray) -> np.ndarray:
    """Each node's entry at positions ``2 * node`` and ``2 * node + 1``."""
    return np.repeat(table, 2, axis=0)


def _lookup_in(ctx: Any, table: Any, index: Any) -> Any:
    """``table[index]`` for a 1-D table and int32 or int64 indices in its range."""
    xp = ctx.xp
    return xp.reshape(ctx.k.gather_in_range(table, xp.reshape(index, (-1,)), 0),
                      shape_of(index))


def _walk_nodes(ctx: Any, rows: _Rows, forest: _Forest, trees: np.ndarray, depth: int) -> Any:
    """Node by node through the forest's tables, for deep trees, membership tests and mixed
    comparisons; leaves step to themselves. A node is at position ``2 * node`` (see
    ``_Forest.positioned``)."""
    xp, dtype = ctx.xp, rows.x.dtype
    nodes, modes, single = forest.positioned, forest.modes, forest.comparison
    split = xp.asarray(nodes.split, dtype=dtype)
    mode = xp.asarray(nodes.mode) if single is None else None  # else no per-node mode
    members = xp.asarray(nodes.members, dtype=dtype) if _MEMBER in modes else None
    missing = xp.asarray(nodes.missing) if nodes.missing is not None and rows.tracked is None \
        else None
    feature = _features(ctx, rows, nodes.feature, nodes.missing)
    children = xp.asarray(nodes.children, dtype=rows.dtype)
    index = xp.broadcast_to(xp.asarray(2 * forest.starts[trees][None, :], dtype=rows.dtype),
                            (rows.count, trees.size))  # positions: 2 * node
    for _ in range(depth):
        value = _lookup_in(ctx, rows.x, rows.start + _lookup_in(ctx, feature, index))
        threshold = _lookup_in(ctx, split, index)
        if single is not None:
            goes_true = _COMPARISONS[single](value, threshold)
        else:
            node_mode = _lookup_in(ctx, mode, index)
            goes_true = (xp.any(value[..., None] == _gather(ctx, members, index), axis=-1)
                         if members is not None else xp.zeros_like(value, dtype=xp.bool))
            for code in modes - {_MEMBER}:  # only the comparisons the model uses
                goes_true = xp.where(node_mode == code, _COMPARISONS[code](value, threshold),
                                     goes_true)
        if missing is not None:
            goes_true = goes_true | (xp.isnan(value) & _lookup_in(ctx, missing, index))
        index = _lookup_in(ctx, children, index + xp.astype(goes_true, rows.dtype))
    return xp.astype(index // 2, xp.int64)


def _aggregate(ctx: Any, forest: _Forest, index: Any, aggregate: int, dtype: Any) -> Any:
    """Each row's scores per target from the leaves it reached. A target that no tree reaches
    scores 0 under MIN and MAX, as in onnxruntime (the reference evaluator leaves the type's
    extreme there)."""
    xp = ctx.xp
    weights = _gather(ctx, xp.asarray(forest.weights, dtype=dtype), index)  # rows, trees, t
    if aggregate in (_SUM, _AVERAGE):
        total = xp.sum(weights, axis=1)
        return total / forest.starts.size if aggregate == _AVERAGE else total
    hits = _gather(ctx, xp.asarray(forest.hits), index)
    reduce, start = (xp.min, xp.inf) if aggregate == _MIN else (xp.max, -xp.inf)
    best = reduce(xp.where(hits, weights, xp.asarray(start, dtype=dtype)), axis=1)
    return xp.where(xp.any(hits, axis=1), best, xp.zeros_like(best))


def _post_transform(ctx: Any, scores: Any, transform: str) -> Any:
    """The ai.onnx.ml score transforms, over each row."""
    xp = ctx.xp
    if transform in ("NONE", ""):
        return scores
    if transform == "LOGISTIC":
        return sigmoid(ctx, scores)
    if transform == "SOFTMAX":
        return softmax_along(ctx, scores, 1)
    if transform == "SOFTMAX_ZERO":  # a softmax over the non-zero scores; zeros stay 0
        shifted = xp.where(scores != 0, xp.exp(scores - xp.max(scores, axis=1, keepdims=True)),
                           xp.zeros_like(scores))
        return shifted / xp.sum(shifted, axis=1, keepdims=True)
    raise NotImplementedError(f"post_transform {transform}")


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
    forest = _forest_of(nodes_featureids, lambda: _forest_5(
        nodes_splits, nodes_featureids, nodes_modes, nodes_truenodeids, nodes_falsenodeids,
        nodes_trueleafs, nodes_falseleafs, leaf_targetids, leaf_weights, tree_roots, n_targets,
        nodes_missing_value_tracks_true, membership_values))
    return _aggregate(ctx, forest, _walk(ctx, x, forest), aggregate_function, x.dtype)


def _forest_5(splits: np.ndarray, features: list[int], node_modes: np.ndarray,
              true_ids: list[int], false_ids: list[int], true_leafs: list[int],
              false_leafs: list[int], leaf_targets: list[int], leaf_weights: np.ndarray,
              roots: list[int], n_targets: int, missing: list[int] | None,
              membership_values: np.ndarray | None) -> _Forest:
    """TreeEnsemble-5's layout: nodes 0..n-1, leaves n..n+L-1 (a branch's id points at a
    leaf when its ``*leafs`` flag says so)."""
    n, leaves = len(features), len(leaf_targets)
    true_next = np.asarray(true_ids) + n * np.asarray(true_leafs)
    false_next = np.asarray(false_ids) + n * np.asarray(false_leafs)
    itself = np.arange(n, n + leaves)
    # a root whose both branches are the same leaf is that leaf (a one-leaf tree)
    starts = np.array([true_next[r] if true_next[r] == false_next[r] >= n else r
                       for r in roots], np.int64)
    modes = np.concatenate([np.asarray(node_modes, np.int64), np.zeros(leaves, np.int64)])
    weights = np.zeros((n + leaves, n_targets))
    hits = np.zeros((n + leaves, n_targets), bool)
    weights[itself, leaf_targets] = np.asarray(leaf_weights, np.float64)
    hits[itself, leaf_targets] = True
    return _Forest(
        feature=np.concatenate([np.asarray(features, np.int64), np.zeros(leaves, np.int64)]),
        split=np.concatenate([np.asarray(splits, np.float64), np.zeros(leaves)]),
        mode=modes, true_next=np.concatenate([true_next, itself]).astype(np.int64),
        false_next=np.concatenate([false_next, itself]).astype(np.int64),
        missing_true=np.concatenate([np.asarray(missing or [0] * n, bool),
                                     np.zeros(leaves, bool)]),
        members=_members(modes, membership_values, n + leaves), starts=starts,
        weights=weights, hits=hits)


def _classic_forest(nodes: tuple[Any, ...], leaves: tuple[Any, ...], n_targets: int) -> _Forest:
    """TreeEnsembleRegressor/Classifier's layout: nodes keyed by (tree id, node id), a
    branch's children by node id within its tree, LEAF nodes listed with the rest, and a
    leaf's contributions as (tree, node, target, weight) entries."""
    (nodes_treeids, nodes_nodeids, nodes_modes, nodes_featureids, nodes_values,
     nodes_truenodeids, nodes_falsenodeids, missing) = nodes
    leaf_treeids, leaf_nodeids, leaf_ids, leaf_weights = leaves
    position = {(t, i): p for p, (t, i) in enumerate(zip(nodes_treeids, nodes_nodeids,
                                                          strict=True))}
    n = len(position)
    modes = np.array([_MODE_NAMES[m] for m in nodes_modes], np.int64)
    is_leaf = np.array([m == "LEAF" for m in nodes_modes])
    true_next = np.array([p if is_leaf[p] else position[t, c] for p, (t, c) in
                          enumerate(zip(nodes_treeids, nodes_truenodeids, strict=True))])
    false_next = np.array([p if is_leaf[p] else position[t, c] for p, (t, c) in
                           enumerate(zip(nodes_treeids, nodes_falsenodeids, strict=True))])
    child = np.zeros(n, bool)
    child[true_next[~is_leaf]] = child[false_next[~is_leaf]] = True
    roots: dict[int, int] = {}  # each tree's first node that no branch points to
    for p in np.flatnonzero(~child).tolist():
        roots.setdefault(nodes_treeids[p], p)
    weights = np.zeros((n, n_targets))
    hits = np.zeros((n, n_targets), bool)
    for tree, node, target, weight in zip(leaf_treeids, leaf_nodeids, leaf_ids,
                                          np.asarray(leaf_weights, np.float64), strict=True):
        weights[position[tree, node], target] += weight
        hits[position[tree, node], target] = True
    return _Forest(feature=np.asarray(nodes_featureids, np.int64),
                   split=np.asarray(nodes_values, np.float64), mode=modes,
                   true_next=true_next.astype(np.int64), false_next=false_next.astype(np.int64),
                   missing_true=np.asarray(missing or [0] * n, bool),
                   members=np.full((n, 1), np.nan),
                   starts=np.array([roots[t] for t in dict.fromkeys(nodes_treeids)], np.int64),
                   weights=weights, hits=hits)


def _classic_scores(ctx: Any, x: Any, aggregate: int, base: Any, n_targets: int,
                    nodes: tuple[Any, ...], leaves: tuple[Any, ...]) -> Any:
    """A TreeEnsembleRegressor/Classifier's scores before the transform: the walk over its
    forest (built once per node) from float features, aggregated, plus the base values."""
    xp = ctx.xp
    x = x if xp.isdtype(x.dtype, "real floating") else xp.astype(x, xp.float32)  # as ORT does
    forest = _forest_of(nodes[0], lambda: _classic_forest(nodes, leaves, n_targets))
    scores = _aggregate(ctx, forest, _walk(ctx, x, forest), aggregate, x.dtype)
    if base is None:
        return scores
    return scores + xp.asarray(np.asarray(base, np.float64), dtype=scores.dtype)


def _either(value: Any, as_tensor: Any) -> Any:
    """An attribute given as a list or as its ``*_as_tensor`` twin."""
    return value if value is not None else as_tensor


@op("TreeEnsembleRegressor", 1, 3, domain=ML)
def tree_ensemble_regressor(ctx: Any, x: Any, *, aggregate_function: str = "SUM",
                            base_values: list[float] | None = None,
                            base_values_as_tensor: Any = None, n_targets: int | None = None,
                            nodes_falsenodeids: list[int], nodes_featureids: list[int],
                            nodes_hitrates: Any = None, nodes_hitrates_as_tensor: Any = None,
                            nodes_missing_value_tracks_true: list[int] | None = None,
                            nodes_modes: list[str], nodes_nodeids: list[int],
                            nodes_treeids: list[int], nodes_truenodeids: list[int],
                            nodes_values: list[float] | None = None,
                            nodes_values_as_tensor: Any = None, post_transform: str = "NONE",
                            target_ids: list[int], target_nodeids: list[int],
                            target_treeids: list[int],
                            target_weights: list[float] | None = None,
                            target_weights_as_tensor: Any = None) -> Any:
    nodes = (nodes_treeids, nodes_nodeids, nodes_modes, nodes_featureids,
             _either(nodes_values, nodes_values_as_tensor), nodes_truenodeids,
             nodes_falsenodeids, nodes_missing_value_tracks_true)
    leaves = (target_treeids, target_nodeids, target_ids,
              _either(target_weights, target_weights_as_tensor))
    scores = _classic_scores(ctx, x, _AGGREGATES[aggregate_function],
                             _either(base_values, base_values_as_tensor),
                             n_targets or max(target_ids) + 1, nodes, leaves)
    return ctx.xp.astype(_post_transform(ctx, scores, post_transform), ctx.xp.float32)


@op("TreeEnsembleClassifier", 1, 3, domain=ML)
def tree_ensemble_classifier(ctx: Any, x: Any, *, base_values: list[float] | None = None,
                             base_values_as_tensor: Any = None, class_ids: list[int],
                             class_nodeids: list[int], class_treeids: list[int],
                             class_weights: list[float] | None = None,
                             class_weights_as_tensor: Any = None,
                             classlabels_int64s: list[int] | None = None,
                             classlabels_strings: list[str] | None = None,
                             nodes_falsenodeids: list[int], nodes_featureids: list[int],
                             nodes_hitrates: Any = None, nodes_hitrates_as_tensor: Any = None,
                             nodes_missing_value_tracks_true: list[int] | None = None,
                             nodes_modes: list[str], nodes_nodeids: list[int],
                             nodes_treeids: list[int], nodes_truenodeids: list[int],
                             nodes_values: list[float] | None = None,
                             nodes_values_as_tensor: Any = None,
                             post_transform: str = "NONE") -> Any:
    """Labels and per-class scores. With two labels and the weights of one class only (the
    binary form skl2onnx and onnxmltools write), the other class scores 1 - s (or -s before
    a LOGISTIC or SOFTMAX)."""
    xp = ctx.xp
    nodes = (nodes_treeids, nodes_nodeids, nodes_modes, nodes_featureids,
             _either(nodes_values, nodes_values_as_tensor), nodes_truenodeids,
             nodes_falsenodeids, nodes_missing_value_tracks_true)
    labels = classlabels_int64s if classlabels_int64s is not None else classlabels_strings
    n_classes = len(labels or [])
    leaves = (class_treeids, class_nodeids, class_ids,
              _either(class_weights, class_weights_as_tensor))
    scores = _classic_scores(ctx, x, _SUM, _either(base_values, base_values_as_tensor),
                             max(n_classes, max(class_ids) + 1), nodes, leaves)
    if len(set(class_ids)) == 1 and n_classes == 2:
        positive = scores[:, max(class_ids):max(class_ids) + 1]
        negative = 1 - positive if post_transform in ("NONE", "PROBIT") else -positive
        scores = xp.concat([negative, positive], axis=1)
    scores = xp.astype(_post_transform(ctx, scores, post_transform), xp.float32)
    return _labels(ctx, xp.argmax(scores, axis=1), labels), scores


def _labels(ctx: Any, best: Any, labels: list[Any] | None) -> Any:
    """Class indices as their labels: int64 through array code, strings on the host."""
    xp = ctx.xp
    if labels and isinstance(labels[0], str):
        host = host_value(ctx, best)
        return np.asarray(labels, dtype=object)[host]
    return xp.take(xp.asarray(np.asarray(labels, np.int64)), xp.astype(best, xp.int64))


# --------------------------------------------------------------------------------------------
# linear models, scaling and encoding


@op("Scaler", 1, domain=ML)
def scaler(ctx: Any, x: Any, *, offset: list[float] | None = None,
           scale: list[float] | None = None) -> Any:
    """``(x - offset) * scale`` per column (or one of each for all), as float32."""
    xp = ctx.xp
    work = xp.astype(x, xp.float32)
    shift = xp.asarray(np.asarray(offset or [0.0], np.float32))
    factor = xp.asarray(np.asarray(scale or [1.0], np.float32))
    return (work - shift) * factor


@op("Normalizer", 1, domain=ML)
def normalizer(ctx: Any, x: Any, *, norm: str = "MAX") -> Any:
    """Each row divided by its largest magnitude (MAX), its L1 or its L2 norm."""
    xp = ctx.xp
    work = xp.astype(x, xp.float32) if not xp.isdtype(x.dtype, "real floating") else x
    size = {"MAX": lambda: xp.max(xp.abs(work), axis=1, keepdims=True),
            "L1": lambda: xp.sum(xp.abs(work), axis=1, keepdims=True),
            "L2": lambda: xp.sqrt(xp.sum(work * work, axis=1, keepdims=True))}[norm]()
    return work / xp.maximum(size, xp.asarray(1e-30, dtype=work.dtype))


@op("Imputer", 1, domain=ML)
def imputer(ctx: Any, x: Any, *, imputed_value_floats: list[float] | None = None,
            imputed_value_int64s: list[int] | None = None,
            replaced_value_float: float = 0.0, replaced_value_int64: int = 0) -> Any:
    """``replaced_value`` (NaN included) in column j becomes the j-th imputed value (or the
    one value for all columns)."""
    xp = ctx.xp
    if imputed_value_floats:
        values, replaced = np.asarray(imputed_value_floats), replaced_value_float
    else:
        values, replaced = np.asarray(imputed_value_int64s or []), replaced_value_int64
    fill = xp.asarray(values.astype(np.float64), dtype=x.dtype)
    missing = (xp.isnan(x) if np.isnan(replaced) else
               x == xp.asarray(replaced, dtype=x.dtype))
    return xp.where(missing, xp.broadcast_to(fill, shape_of(x)), x)


@op("OneHotEncoder", 1, domain=ML)
def one_hot_encoder(ctx: Any, x: Any, *, cats_int64s: list[int] | None = None,
                    cats_strings: list[str] | None = None, zeros: int = 1) -> Any:
    """A float32 one-hot vector per element over the categories; a value outside them is all
    zeros, or an error when ``zeros`` is 0."""
    xp = ctx.xp
    categories = cats_int64s if cats_int64s else (cats_strings or [])
    keys = np.asarray(categories, dtype=object if cats_strings and not cats_int64s else np.int64)
    index = _lookup(ctx, x, keys, np.arange(len(categories), dtype=np.int64), -1)
    if isinstance(index, np.ndarray) and not ctx.host:
        index = ctx.fw.asarray(index)
    if not zeros:
        host = host_value(ctx, index)
        if (host < 0).any():
            raise ValueError("OneHotEncoder: a value is in no category and zeros is 0")
    encoded = xp.astype(index[..., None] == xp.arange(len(categories), dtype=xp.int64),
                        xp.float32)
    return encoded


@op("LinearRegressor", 1, domain=ML)
def linear_regressor(ctx: Any, x: Any, *, coefficients: list[float] | None = None,
                     intercepts: list[float] | None = None, post_transform: str = "NONE",
                     targets: int = 1) -> Any:
    scores = _linear(ctx, x, coefficients, intercepts, targets)
    return _post_transform(ctx, scores, post_transform)


@op("LinearClassifier", 1, domain=ML)
def linear_classifier(ctx: Any, x: Any, *, classlabels_ints: list[int] | None = None,
                      classlabels_strings: list[str] | None = None,
                      coefficients: list[float], intercepts: list[float] | None = None,
                      multi_class: int = 0, post_transform: str = "NONE") -> Any:
    """Labels and scores ``x @ Wᵀ + b``; one row of coefficients for two labels scores the
    first class -s."""
    xp = ctx.xp
    labels = classlabels_ints if classlabels_ints is not None else classlabels_strings
    rows = len(coefficients) // shape_of(x)[1]
    scores = _linear(ctx, x, coefficients, intercepts, rows)
    if rows == 1 and len(labels or []) == 2:
        scores = xp.concat([-scores, scores], axis=1)
    scores = xp.astype(_post_transform(ctx, scores, post_transform), xp.float32)
    return _labels(ctx, xp.argmax(scores, axis=1), labels), scores


def _linear(ctx: Any, x: Any, coefficients: list[float] | None, intercepts: Any,
            targets: int) -> Any:
    """``x @ Wᵀ + b`` in float32 (float64 input stays float64), W [targets, features]."""
    xp = ctx.xp
    work = x if x.dtype == xp.float64 else xp.astype(x, xp.float32)
    np_type = np.float64 if work.dtype == xp.float64 else np.float32
    weights = np.asarray(coefficients or [], np_type).reshape(targets, -1).T
    scores = xp.matmul(work, xp.asarray(weights))
    if intercepts:
        scores = scores + xp.asarray(np.asarray(intercepts, np_type))
    return scores


@op("CategoryMapper", 1, domain=ML)
def category_mapper(ctx: Any, x: Any, *, cats_int64s: list[int] | None = None,
                    cats_strings: list[str] | None = None, default_int64: int = -1,
                    default_string: str = "_Unused") -> Any:
    """Strings to their paired integers, or integers to their paired strings."""
    strings = np.asarray(cats_strings or [], dtype=object)
    integers = np.asarray(cats_int64s or [], dtype=np.int64)
    host = host_value(ctx, x)
    if host.dtype == object:
        return _lookup(ctx, x, strings, integers, default_int64)
    return _lookup(ctx, x, integers, strings, default_string)


@op("ZipMap", 1, domain=ML)
def zip_map(ctx: Any, x: Any, *, classlabels_int64s: list[int] | None = None,
            classlabels_strings: list[str] | None = None) -> list[dict[Any, float]]:
    """Each row of scores as a map from class label to score: a sequence of maps, the Python
    list of dicts that onnxruntime returns. Maps are host values, so the scores are read."""
    labels: list[Any] = list(classlabels_int64s if classlabels_int64s is not None
                             else classlabels_strings or [])
    scores = eager_host_value(ctx, x, "ZipMap makes Python maps of the scores").astype(
        np.float32).reshape(-1, len(labels))
    return [dict(zip(labels, map(float, row), strict=True)) for row in scores]


@op("FeatureVectorizer", 1, domain=ML)
def feature_vectorizer(ctx: Any, *inputs: Any, inputdimensions: list[int] | None = None) -> Any:
    """The inputs side by side as float32 rows, each cut or zero-padded to its dimension."""
    xp = ctx.xp
    parts = []
    for x, width in zip(inputs, inputdimensions or [], strict=True):
        rows = xp.reshape(xp.astype(x, xp.float32), (shape_of(x)[0], -1))
        have = shape_of(rows)[1]
        if have >= width:
            parts.append(rows[:, :width])
        else:
            parts.append(xp.concat([rows, xp.zeros((shape_of(rows)[0], width - have),
                                                   dtype=xp.float32)], axis=1))
    return xp.concat(parts, axis=1)


# --------------------------------------------------------------------------------------------
# support vector machines


def _kernel(ctx: Any, x: Any, vectors: np.ndarray, kernel_type: str,
            kernel_params: list[float] | None) -> Any:
    """K(x_n, v_j) for every row and support vector: [rows, vectors], in float32 as
    onnxruntime computes it."""
    xp = ctx.xp
    gamma, coef0, degree = [*(kernel_params or []), 0.0, 0.0, 0.0][:3]
    support = xp.asarray(vectors.astype(np.float32))
    dots = xp.matmul(x, xp.permute_dims(support, (1, 0)))
    kind = kernel_type.upper()
    if kind == "LINEAR":
        return dots
    if kind == "POLY":
        return (dots * gamma + coef0) ** int(degree)
    if kind == "SIGMOID":
        return xp.tanh(dots * gamma + coef0)
    if kind == "RBF":
        squares = xp.sum(x * x, axis=1, keepdims=True) - 2 * dots + xp.asarray(
            (vectors.astype(np.float32) ** 2).sum(axis=1)[None, :])
        return xp.exp(-gamma * xp.maximum(squares, xp.zeros_like(squares)))
    raise NotImplementedError(f"SVM kernel {kernel_type}")


@op("SVMRegressor", 1, domain=ML)
def svm_regressor(ctx: Any, x: Any, *, coefficients: list[float] | None = None,
                  kernel_params: list[float] | None = None, kernel_type: str = "LINEAR",
                  n_supports: int = 0, one_class: int = 0, post_transform: str = "NONE",
                  rho: list[float] | None = None,
                  support_vectors: list[float] | None = None) -> Any:
    """``Σ_j coefficient_j K(x, v_j) + rho`` over the support vectors (or a linear model
    when there are none); a one-class model answers 1 or -1 by its sign."""
    xp = ctx.xp
    work = xp.astype(x, xp.float32)
    weights = np.asarray(coefficients or [], np.float32)
    if n_supports > 0:
        vectors = np.asarray(support_vectors, np.float32).reshape(n_supports, -1)
        kernel = _kernel(ctx, work, vectors, kernel_type, kernel_params)
    else:  # liblinear: the coefficients are one weight per feature
        kernel, weights = work, weights.reshape(-1)
    score = xp.matmul(kernel, xp.asarray(weights[:, None])) + float((rho or [0.0])[0])
    if one_class:
        score = xp.where(score > 0, xp.ones_like(score), -xp.ones_like(score))
    if post_transform not in ("NONE", ""):
        raise NotImplementedError(f"SVMRegressor post_transform {post_transform}")
    return score


def _coupled(pairwise: np.ndarray, k: int) -> np.ndarray:
    """Class probabilities from pairwise ones, rows at once: libsvm's multiclass_probability
    (Wu, Lin and Weng's second method), each row stopping where libsvm's loop would."""
    rows = pairwise.shape[0]
    q = -pairwise.transpose(0, 2, 1) * pairwise  # q[t, j] = -r[j, t] r[t, j]
    diagonal = (pairwise ** 2).sum(axis=1) - np.einsum("nii->ni", pairwise) ** 2
    q[:, np.arange(k), np.arange(k)] = diagonal
    p = np.full((rows, k), 1.0 / k)
    active = np.ones(rows, bool)
    for _ in range(max(100, k)):
        qp = np.einsum("ntj,nj->nt", q, p)
        pqp = (p * qp).sum(axis=1)
        active &= np.abs(qp - pqp[:, None]).max(axis=1) >= 0.005 / k
        if not active.any():
            break
        for t in range(k):
            diff = np.where(active, (pqp - qp[:, t]) / q[:, t, t], 0.0)
            p[:, t] += diff
            pqp = (pqp + diff * (diff * q[:, t, t] + 2 * qp[:, t])) / (1 + diff) ** 2
            p /= (1 + diff)[:, None]
            qp = (qp + diff[:, None] * q[:, t, :]) / (1 + diff)[:, None]
    return p


@op("SVMClassifier", 1, domain=ML)
def svm_classifier(ctx: Any, x: Any, *, classlabels_ints: list[int] | None = None,
                   classlabels_strings: list[str] | None = None,
                   coefficients: list[float] | None = None,
                   kernel_params: list[float] | None = None, kernel_type: str = "LINEAR",
                   post_transform: str = "NONE", prob_a: list[float] | None = None,
                   prob_b: list[float] | None = None, rho: list[float] | None = None,
                   support_vectors: list[float] | None = None,
                   vectors_per_class: list[int] | None = None) -> Any:
    """One-vs-one votes over the support vectors (libsvm's layout), the label by most votes;
    scores are the pairwise decision values, or with ``prob_a``/``prob_b`` the coupled class
    probabilities (computed on the host, as libsvm's iteration needs row-wise stopping).
    Without support vectors it is liblinear's one-vs-rest linear form."""
    xp = ctx.xp
    labels = classlabels_ints if classlabels_ints is not None else classlabels_strings
    k = max(len(labels or []), 1)
    work = xp.astype(x, xp.float32)
    weights = np.asarray(coefficients or [], np.float32)
    offsets = np.asarray(rho or [0.0], np.float32)
    counts = list(vectors_per_class or [])
    if not counts or sum(counts) == 0:  # liblinear: a score per class
        if k < 3:  # onnxruntime labels a single liblinear score by rules of its own
            raise NotImplementedError("SVMClassifier in liblinear form with two classes")
        scores = xp.matmul(work, xp.asarray(weights.reshape(k, -1).T)) + float(offsets[0])
        return _svm_finish(ctx, scores, None, scores, labels, post_transform, False)
    total = sum(counts)
    vectors = np.asarray(support_vectors, np.float32).reshape(total, -1)
    kernel = _kernel(ctx, work, vectors, kernel_type, kernel_params)  # rows, vectors
    coefs = weights.reshape(-1, total)
    starts = np.cumsum([0, *counts[:-1]])
    decisions, votes = [], []
    for pair, (i, j) in enumerate(_pairs(k)):
        take = np.zeros(total, np.float32)  # the two classes' vectors, weighted
        take[starts[i]:starts[i] + counts[i]] = coefs[j - 1, starts[i]:starts[i] + counts[i]]
        take[starts[j]:starts[j] + counts[j]] = coefs[i, starts[j]:starts[j] + counts[j]]
        decision = xp.matmul(kernel, xp.asarray(take[:, None]))[:, 0] + float(offsets[pair])
        decisions.append(decision)
        winner = np.zeros(k, np.float32)
        winner[i] = 1
        loser = np.zeros(k, np.float32)
        loser[j] = 1
        votes.append(xp.where(decision[:, None] > 0, xp.asarray(winner[None, :]),
                              xp.asarray(loser[None, :])))
    pairwise = xp.stack(decisions, axis=1)
    tally = sum(votes[1:], votes[0])
    if prob_a:
        host = eager_host_value(ctx, pairwise, "SVMClassifier's probabilities are coupled on "
                                "the host").astype(np.float64)
        r = np.zeros((host.shape[0], k, k))
        for pair, (i, j) in enumerate(_pairs(k)):
            shift = prob_b[pair] if prob_b else 0.0
            value = 1 / (1 + np.exp(host[:, pair] * prob_a[pair] + shift))
            value = np.clip(value, 1e-7, 1 - 1e-7)
            r[:, i, j], r[:, j, i] = value, 1 - value
        probabilities = ctx.fw.asarray(_coupled(r, k).astype(np.float32))
        return _svm_finish(ctx, probabilities, tally, probabilities, labels, post_transform,
                           True)
    return _svm_finish(ctx, pairwise, tally, pairwise, labels, post_transform, False)


def _pairs(k: int) -> list[tuple[int, int]]:
    """The one-vs-one pairs in libsvm's order: (0, 1), (0, 2), ..., (1, 2), ..."""
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def _svm_finish(ctx: Any, scores: Any, votes: Any, ranked: Any, labels: list[Any] | None,
                transform: str, probabilities: bool) -> Any:
    """The label (most votes, or the best score without votes) and the written scores: a
    single pairwise score for two classes becomes [-s, s] (transformed as a pair)."""
    xp = ctx.xp
    best = xp.argmax(votes if votes is not None else ranked, axis=1)
    if shape_of(scores)[1] == 1 and not probabilities:
        scores = xp.concat([-scores, scores], axis=1)
    scores = xp.astype(_post_transform(ctx, scores, transform), xp.float32)
    return _labels(ctx, best, labels), scores
