"""Reductions, arg-reductions, scans, Softmax and its relatives, TopK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from modelport.ops.context import native
from modelport.ops.registry import op
from modelport.ops.shape import normalize_axis, shape_of

Reducer = Callable[[Any, Any, tuple[int, ...], bool], Any]


def _reduce(ctx: Any, x: Any, axes: Any, keepdims: int, noop_with_empty_axes: int,
            reducer: Reducer) -> Any:
    rank = len(x.shape)
    if axes is None or len(axes) == 0:
        if noop_with_empty_axes:
            return x
        axes = range(rank)
    return reducer(ctx.xp, x, tuple(sorted({normalize_axis(a, rank) for a in axes})),
                   bool(keepdims))


def _empty_safe(reduce: str, empty: float) -> Reducer:
    """max/min over an empty axis give the identity (-inf / inf) instead of an error."""
    def reducer(xp: Any, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        if any(x.shape[a] == 0 for a in axes):
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keepdims \
                else tuple(d for i, d in enumerate(x.shape) if i not in axes)
            fill = (empty if xp.isdtype(x.dtype, "real floating") else
                    bool(empty > 0) if x.dtype == xp.bool else  # max: False, min: True
                    (xp.iinfo(x.dtype).min if empty < 0 else xp.iinfo(x.dtype).max))
            return xp.full(shape, fill, dtype=x.dtype)
        return getattr(xp, reduce)(x, axis=axes, keepdims=keepdims)

    return reducer


REDUCERS: dict[str, Reducer] = {
    "ReduceSum": lambda xp, x, a, k: xp.sum(x, axis=a, keepdims=k, dtype=x.dtype),
    "ReduceMean": lambda xp, x, a, k: xp.mean(x, axis=a, keepdims=k),
    "ReduceMax": _empty_safe("max", -np.inf),
    "ReduceMin": _empty_safe("min", np.inf),
    "ReduceProd": lambda xp, x, a, k: xp.prod(x, axis=a, keepdims=k, dtype=x.dtype),
    "ReduceL1": lambda xp, x, a, k: xp.sum(xp.abs(x), axis=a, keepdims=k, dtype=x.dtype),
    "ReduceL2": lambda xp, x, a, k: xp.astype(xp.sqrt(xp.sum(x * x, axis=a, keepdims=k)),
                                              x.dtype),
    "ReduceSumSquare": lambda xp, x, a, k: xp.sum(x * x, axis=a, keepdims=k, dtype=x.dtype),
    "ReduceLogSum": lambda xp, x, a, k: xp.log(xp.sum(x, axis=a, keepdims=k)),
    "ReduceLogSumExp": lambda xp, x, a, k: _log_sum_exp(xp, x, a, k),
}


def _log_sum_exp(xp: Any, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    if any(x.shape[a] == 0 for a in axes):
        return xp.log(xp.sum(xp.exp(x), axis=axes, keepdims=keepdims))
    peak = xp.max(x, axis=axes, keepdims=True)
    peak = xp.where(xp.isfinite(peak), peak, xp.zeros_like(peak))
    total = xp.log(xp.sum(xp.exp(x - peak), axis=axes, keepdims=True)) + peak
    return total if keepdims else xp.squeeze(total, axis=axes)


def _register_reductions() -> None:
    # (versions with axes as an attribute, versions with axes as an input)
    versions = {"ReduceSum": ((1, 11), (13,)), "ReduceMax": ((1, 11, 12, 13), (18, 20)),
                "ReduceMin": ((1, 11, 12, 13), (18, 20)), "ReduceLogSum": ((1, 11, 13), (18, 28)),
                "ReduceLogSumExp": ((1, 11, 13), (18, 28))}
    for name, reducer in REDUCERS.items():
        attr_versions, input_versions = versions.get(name, ((1, 11, 13), (18,)))

        def by_attribute(ctx: Any, x: Any, *, axes: list[int] | None = None, keepdims: int = 1,
                         _r: Reducer = reducer) -> Any:
            return _reduce(ctx, x, axes, keepdims, 0, _r)

        def by_input(ctx: Any, x: Any, axes: Any = None, *, keepdims: int = 1,
                     noop_with_empty_axes: int = 0, _r: Reducer = reducer) -> Any:
            return _reduce(ctx, x, axes, keepdims, noop_with_empty_axes, _r)

        op(name, *attr_versions)(by_attribute)
        op(name, *input_versions, host=(1,))(by_input)


_register_reductions()


@op("ArgMax", 1, 11, 12, 13)  # 1 and 11 differ only in accepting negative axes
def arg_max(ctx: Any, x: Any, *, axis: int = 0, keepdims: int = 1,
            select_last_index: int = 0) -> Any:
    return _arg(ctx, x, axis, keepdims, select_last_index, ctx.xp.argmax)


@op("ArgMin", 1, 11, 12, 13)
def arg_min(ctx: Any, x: Any, *, axis: int = 0, keepdims: int = 1,
            select_last_index: int = 0) -> Any:
    return _arg(ctx, x, axis, keepdims, select_last_index, ctx.xp.argmin)


def _arg(ctx: Any, x: Any, axis: int, keepdims: int, last: int, fn: Any) -> Any:
    xp = ctx.xp
    axis = normalize_axis(axis, len(x.shape))
    if last:  # the last occurrence of the extreme: search the reversed axis
        reversed_x = xp.flip(x, axis=axis)
        found = shape_of(x)[axis] - 1 - fn(reversed_x, axis=axis, keepdims=bool(keepdims))
    else:
        found = fn(x, axis=axis, keepdims=bool(keepdims))
    return xp.astype(found, xp.int64)


@op("CumSum", 11, 14, host=(1,))
def cum_sum(ctx: Any, x: Any, axis: Any, *, exclusive: int = 0, reverse: int = 0) -> Any:
    return _scan(ctx, x, axis, exclusive, reverse, ctx.xp.cumulative_sum, 0)


@op("CumProd", 26, host=(1,))
def cum_prod(ctx: Any, x: Any, axis: Any, *, exclusive: int = 0, reverse: int = 0) -> Any:
    return _scan(ctx, x, axis, exclusive, reverse, ctx.xp.cumulative_prod, 1)


def _scan(ctx: Any, x: Any, axis: Any, exclusive: int, reverse: int, fn: Any,
          identity: int) -> Any:
    xp = ctx.xp
    axis = normalize_axis(int(np.asarray(axis).reshape(-1)[0]), len(x.shape))
    if reverse:
        x = xp.flip(x, axis=axis)
    out = fn(x, axis=axis, dtype=x.dtype)
    if exclusive:  # shift by one: the identity first, drop the last
        first = xp.full_like(xp.take(x, xp.asarray([0]), axis=axis), identity)
        rest = xp.take(out, xp.arange(shape_of(x)[axis] - 1), axis=axis)
        out = xp.concat([first, rest], axis=axis)
    return xp.flip(out, axis=axis) if reverse else out


def _softmax_axis(x: Any, axis: int, fn: Callable[[Any, int], Any], ctx: Any,
                  coerce_2d: bool) -> Any:
    """Before opset 13, Softmax flattened the input to 2-D at ``axis``."""
    if not coerce_2d:
        return fn(x, normalize_axis(axis, len(x.shape)))
    dims = shape_of(x)
    axis = normalize_axis(axis, len(dims))
    flat = ctx.xp.reshape(x, (int(np.prod(dims[:axis])), int(np.prod(dims[axis:]))))
    return ctx.xp.reshape(fn(flat, 1), dims)


def _fused(ctx: Any, x: Any, name: str) -> Any:
    """A framework's fused kernel, for single and double precision only: fused kernels
    accumulate halves in float32, where the spec's reference stays in the half."""
    if x.dtype == ctx.xp.float32 or x.dtype == ctx.xp.float64:
        return native(ctx, name)
    return None


def softmax_along(ctx: Any, x: Any, axis: int) -> Any:
    if fast := _fused(ctx, x, "softmax"):
        return fast(x, axis)
    xp = ctx.xp
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax_along(ctx: Any, x: Any, axis: int) -> Any:
    if fast := _fused(ctx, x, "log_softmax"):
        return fast(x, axis)
    xp = ctx.xp
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def hardmax_along(ctx: Any, x: Any, axis: int) -> Any:
    xp = ctx.xp
    first = xp.argmax(x, axis=axis, keepdims=True)
    positions = xp.reshape(xp.arange(x.shape[axis]),
                           tuple(-1 if i == axis else 1 for i in range(len(x.shape))))
    return xp.astype(positions == first, x.dtype)


for _name, _fn in (("Softmax", softmax_along), ("LogSoftmax", log_softmax_along),
                   ("Hardmax", hardmax_along)):
    def _v11(ctx: Any, x: Any, *, axis: int = 1, _fn: Any = _fn) -> Any:
        return _softmax_axis(x, axis, lambda v, a: _fn(ctx, v, a), ctx, True)

    def _v13(ctx: Any, x: Any, *, axis: int = -1, _fn: Any = _fn) -> Any:
        return _fn(ctx, x, normalize_axis(axis, len(x.shape)))

    op(_name, 1, 11)(_v11)  # 11 only added negative axes to 1's 2-D coercion
    op(_name, 13)(_v13)


@op("TopK", 1)
def top_k_1(ctx: Any, x: Any, *, axis: int = -1, k: int) -> Any:
    """Version 1: k is an attribute."""
    return top_k(ctx, x, np.array([k], np.int64), axis=axis)


@op("TopK", 10, 11, 24, host=(1,))
def top_k(ctx: Any, x: Any, k: Any, *, axis: int = -1, largest: int = 1,
          sorted: int = 1) -> Any:
    values, indices = ctx.k.top_k(x, int(np.asarray(k).reshape(-1)[0]),
                                  normalize_axis(axis, len(x.shape)), bool(largest))
    return values, ctx.xp.astype(indices, ctx.xp.int64)


@op("LpNormalization", 1, 22)
def lp_normalization(ctx: Any, x: Any, *, axis: int = -1, p: int = 2) -> Any:
    xp = ctx.xp
    norm = (xp.sum(xp.abs(x), axis=axis, keepdims=True) if p == 1
            else xp.sqrt(xp.sum(x * x, axis=axis, keepdims=True)))
    return xp.where(norm == 0, xp.zeros_like(x), x / xp.where(norm == 0, xp.ones_like(norm), norm))
