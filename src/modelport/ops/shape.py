"""Shape and layout operators: Shape, Reshape, Slice, Concat, Split, Cast, Constant, ...

Inputs that determine an output's shape (``Reshape``'s shape, ``Slice``'s starts and ends,
``Tile``'s repeats, ...) are declared host values, so they are numpy arrays here even when the
data is a framework tensor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelport.ops.context import eager_host_value
from modelport.ops.registry import op

ALL = (1, 13, 14, 15, 16, 19, 21, 23, 24, 25)  # the versions of the pure data-movement ops


def normalize_axis(axis: int, rank: int) -> int:
    return int(axis) + rank if int(axis) < 0 else int(axis)


def shape_of(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


@op("Shape", 1, 13, 15, 19, 21, 23, 24, 25)
def shape(ctx: Any, x: Any, *, start: int = 0, end: int | None = None) -> Any:
    # A host value even for a framework tensor: its shape is static while tracing.
    return np.array(shape_of(x)[start:end], dtype=np.int64)


@op("Size", 1, 13, 19, 21, 23, 24, 25)
def size(ctx: Any, x: Any) -> Any:
    return np.array(int(np.prod(shape_of(x))), dtype=np.int64)


@op("Identity", 1, 13, 14, 16, 19, 21, 23, 24, 25)
def identity(ctx: Any, x: Any) -> Any:
    return x


@op("Reshape", 1)
def reshape_1(ctx: Any, data: Any, *, shape: list[int]) -> Any:
    """Version 1: the shape is an attribute."""
    return reshape(ctx, data, np.asarray(shape, np.int64))


@op("Reshape", 5, 13, 14, 19, 21, 23, 24, 25, host=(1,))
def reshape(ctx: Any, data: Any, shape: Any, *, allowzero: int = 0) -> Any:
    dims = [int(d) for d in shape]
    if not allowzero:  # 0 copies the input's dimension
        dims = [shape_of(data)[i] if d == 0 else d for i, d in enumerate(dims)]
    return ctx.xp.reshape(data, tuple(dims))


@op("Flatten", 1, 9, 11, 13, 21, 23, 24, 25)  # 9 only added types
def flatten(ctx: Any, x: Any, *, axis: int) -> Any:
    dims = shape_of(x)
    axis = normalize_axis(axis, len(dims))
    return ctx.xp.reshape(x, (int(np.prod(dims[:axis])), int(np.prod(dims[axis:]))))


@op("Squeeze", 1, 11)
def squeeze_1(ctx: Any, data: Any, *, axes: list[int] | None = None) -> Any:
    return squeeze(ctx, data, None if axes is None else np.array(axes))


@op("Squeeze", 13, 21, 23, 24, 25, host=(1,))
def squeeze(ctx: Any, data: Any, axes: Any = None) -> Any:
    dims = shape_of(data)
    axes = ([i for i, d in enumerate(dims) if d == 1] if axes is None
            else np.asarray(axes).reshape(-1))
    return ctx.xp.reshape(data, tuple(d for i, d in enumerate(dims)
                                      if i not in {normalize_axis(a, len(dims)) for a in axes}))


@op("Unsqueeze", 1, 11)
def unsqueeze_1(ctx: Any, data: Any, *, axes: list[int]) -> Any:
    return unsqueeze(ctx, data, np.array(axes))


@op("Unsqueeze", 13, 21, 23, 24, 25, host=(1,))
def unsqueeze(ctx: Any, data: Any, axes: Any) -> Any:
    dims = list(shape_of(data))
    axes = np.asarray(axes).reshape(-1)  # a scalar axis too, as the expanded functions give
    rank = len(dims) + len(axes)
    for axis in sorted(normalize_axis(a, rank) for a in axes):
        dims.insert(axis, 1)
    return ctx.xp.reshape(data, tuple(dims))


@op("Transpose", 1, 13, 21, 23, 24, 25)
def transpose(ctx: Any, data: Any, *, perm: list[int] | None = None) -> Any:
    rank = len(data.shape)
    return ctx.xp.permute_dims(data, tuple(perm) if perm is not None
                               else tuple(range(rank - 1, -1, -1)))


@op("Concat", 1, 4, 11, 13)
def concat(ctx: Any, *inputs: Any, axis: int = 1) -> Any:  # 1 lets axis default to 1
    return ctx.xp.concat([i for i in inputs if i is not None], axis=axis)


@op("Split", 1, 2, 11, host=(1,))
def split_2(ctx: Any, x: Any, sizes: Any = None, *, axis: int | None = 0,
            split: list[int] | None = None) -> Any:
    """Version 1 also takes the sizes as a second input, and no axis means 0."""
    if sizes is not None:
        split = [int(s) for s in np.asarray(sizes).reshape(-1)]
    return split_13(ctx, x, None if split is None else np.array(split), axis=axis or 0)


@op("Split", 13, host=(1,))
def split_13(ctx: Any, x: Any, split: Any = None, *, axis: int = 0) -> Any:
    return split_18(ctx, x, split, axis=axis)


@op("Split", 18, host=(1,))
def split_18(ctx: Any, x: Any, split: Any = None, *, axis: int = 0,
             num_outputs: int | None = None) -> Any:
    length = shape_of(x)[normalize_axis(axis, len(x.shape))]
    if split is None:
        parts = num_outputs or ctx.n_outputs
        chunk = -(-length // parts)  # the last chunk may be smaller
        sizes = [min(chunk, length - i * chunk) for i in range(parts)]
    else:
        sizes = [int(s) for s in split]
    ends = np.cumsum(sizes)
    return tuple(take_range(ctx, x, axis, int(e - s), int(e)) for s, e in zip(sizes, ends,
                                                                              strict=True))


def take_range(ctx: Any, x: Any, axis: int, start: int, stop: int, step: int = 1) -> Any:
    index = [slice(None)] * len(x.shape)
    index[normalize_axis(axis, len(x.shape))] = slice(start, stop, step)
    return x[tuple(index)]


@op("Slice", 10, 11, 13, host=(1, 2, 3, 4))
def slice_(ctx: Any, data: Any, starts: Any, ends: Any, axes: Any = None,
           steps: Any = None) -> Any:
    rank = len(data.shape)
    axes = range(len(starts)) if axes is None else [normalize_axis(a, rank) for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * rank
    dims = shape_of(data)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[axis] = _clamped_slice(int(start), int(end), int(step), dims[axis])
    return _slice_with_negative_steps(ctx, data, index)


def _clamped_slice(start: int, end: int, step: int, dim: int) -> slice:
    """Python slicing semantics match ONNX's clamping, except for huge negative ends."""
    if step < 0 and end < -dim:
        end = None  # type: ignore[assignment]  # "through the first element"
    return slice(start, end, step)


def _slice_with_negative_steps(ctx: Any, data: Any, index: list[slice]) -> Any:
    """torch cannot slice with a negative step: flip, then slice forward."""
    if not any(s.step is not None and s.step < 0 for s in index) or ctx.host:
        return data[tuple(index)]
    dims = shape_of(data)
    for axis, s in enumerate(index):
        if s.step is not None and s.step < 0:
            positions = range(dims[axis])[s]
            data = ctx.xp.flip(data, axis=axis)
            first = dims[axis] - 1 - positions.start if len(positions) else 0
            index[axis] = slice(first, first + len(positions) * -s.step, -s.step)
    return data[tuple(index)]


@op("Slice", 1)
def slice_1(ctx: Any, data: Any, *, starts: list[int], ends: list[int],
            axes: list[int] | None = None) -> Any:
    return slice_(ctx, data, np.array(starts), np.array(ends),
                  None if axes is None else np.array(axes))


@op("Expand", 8, 13, host=(1,))
def expand(ctx: Any, x: Any, shape: Any) -> Any:
    target = np.broadcast_shapes(shape_of(x), tuple(int(d) for d in shape))
    return ctx.xp.broadcast_to(x, target)


@op("Tile", 1, host=(1, 2))
def tile_1(ctx: Any, x: Any, tiles: Any, axis: Any) -> Any:
    """Version 1: one axis, repeated ``tiles`` times."""
    repeats = [1] * len(x.shape)
    repeats[normalize_axis(int(np.asarray(axis).reshape(-1)[0]), len(repeats))] = int(
        np.asarray(tiles).reshape(-1)[0])
    return tile(ctx, x, repeats)


@op("Tile", 6, 13, host=(1,))
def tile(ctx: Any, x: Any, repeats: Any) -> Any:
    return ctx.xp.tile(x, tuple(int(r) for r in repeats))


@op("Pad", 1, 2)
def pad_2(ctx: Any, data: Any, *, pads: list[int] | None = None, mode: str = "constant",
          value: float = 0.0, paddings: list[int] | None = None) -> Any:
    """Versions 1 (``paddings``) and 2 (``pads``): the widths are an attribute, in one order."""
    widths = pads if pads is not None else paddings
    return pad(ctx, data, np.array(widths), np.array(value, dtype=np.float64), mode=mode)


@op("Pad", 11, 13, 18, 19, 21, 23, 24, 25, host=(1, 2, 3))
def pad(ctx: Any, data: Any, pads: Any, constant_value: Any = None, axes: Any = None, *,
        mode: str = "constant") -> Any:
    rank = len(data.shape)
    axes = list(range(rank)) if axes is None else [normalize_axis(a, rank) for a in axes]
    widths = [[0, 0] for _ in range(rank)]
    for i, axis in enumerate(axes):
        widths[axis] = [int(pads[i]), int(pads[i + len(axes)])]
    value = 0 if constant_value is None or np.size(constant_value) == 0 \
        else np.asarray(constant_value).item()
    # Negative pads crop; kernels only ever add.
    dims = shape_of(data)
    data = data[tuple(slice(max(-lo, 0), dims[i] - max(-hi, 0)) for i, (lo, hi) in
                      enumerate(widths))]
    return ctx.k.pad(data, [[max(lo, 0), max(hi, 0)] for lo, hi in widths], mode, value)


# --- types and constants ----------------------------------------------------------------------


@op("Cast", 1)
def cast_1(ctx: Any, x: Any, *, to: str) -> Any:
    """Version 1: the target type by name ("FLOAT")."""
    import onnx

    return cast(ctx, x, to=onnx.TensorProto.DataType.Value(to.upper()))


@op("Cast", 6, 9, 13, 19, 21, 23, 24, 25, 28)
def cast(ctx: Any, x: Any, *, to: int, saturate: int = 1, round_mode: str = "up") -> Any:
    if to == _FLOAT8E8M0:
        return _to_float8e8m0(ctx, x, saturate, round_mode)
    return ctx.k.cast(_into_range(ctx, x, to, saturate), to, saturate)


_FLOAT8E8M0 = 24


def _to_float8e8m0(ctx: Any, x: Any, saturate: int, round_mode: str) -> Any:
    """float8e8m0 (a power of two, no sign, no zero) by onnx's own conversion, which the spec's
    ``round_mode`` follows bit by bit; it runs on the host (a traced program runs eagerly)."""
    from onnx import numpy_helper

    host = eager_host_value(ctx, x, "a Cast to float8e8m0 runs on the host").astype(np.float32)
    return numpy_helper.to_float8e8m0(host, bool(saturate), round_mode)


@op("CastLike", 15, 19, 21, 23, 24, 25)
def cast_like(ctx: Any, x: Any, target: Any, *, saturate: int = 1,
              round_mode: str = "up") -> Any:
    if ctx.fw.elem_type(target) == _FLOAT8E8M0:
        return _to_float8e8m0(ctx, x, saturate, round_mode)
    return ctx.k.cast_like(_into_range(ctx, x, ctx.fw.elem_type(target), saturate), target,
                           saturate)


def _into_range(ctx: Any, x: Any, to: int, saturate: int) -> Any:
    """``x`` made ready for a plain conversion to ``to``, by the spec's rules for the targets
    where libraries differ: the narrow integers and the float8 types. Kernels only convert."""
    return _into_float8_range(ctx, _into_narrow_integer(ctx, x, to), to, saturate)


# ONNX element types of the float8 formats; "fn" ones have no infinity
_FLOAT8 = {17: "float8_e4m3fn", 18: "float8_e4m3fnuz", 19: "float8_e5m2",
           20: "float8_e5m2fnuz"}


def _into_float8_range(ctx: Any, x: Any, to: int, saturate: int) -> Any:
    """The spec's float8 table: with ``saturate``, out of range (infinities included) is the
    largest finite value of the sign; without it, NaN for the formats without infinities and
    infinity for the others. (torch saturates on its own, numpy and jax do not.)"""
    if to not in _FLOAT8 or ctx.fw.elem_type(x) not in _FLOATS:
        return x
    import ml_dtypes

    xp, name = ctx.xp, _FLOAT8[to]
    high = float(ml_dtypes.finfo(getattr(ml_dtypes, name)).max)
    if saturate:
        return xp.clip(x, -high, high)
    fill = xp.full_like(x, math.nan) if "fn" in name else xp.sign(x) * math.inf
    return xp.where(xp.abs(x) > high, fill, x)


# ONNX element types of the 2- and 4-bit integers: (bits, signed)
_NARROW_INTEGERS = {21: (4, False), 22: (4, True), 25: (2, False), 26: (2, True)}
_FLOATS = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _into_narrow_integer(ctx: Any, x: Any, to: int) -> Any:
    """``x`` as int32 values that a 2- or 4-bit integer type holds, by the spec's rules.

    Libraries disagree here and change their minds (ml_dtypes 0.7 turned wrapping into 0), so
    the rule is ours. Integers wrap in two's complement, as the spec says for every cast between
    fixed-point types. Floats are truncated; out of range (NaN and infinities included) the
    spec leaves the result undefined, and it is 0 here, as in the reference evaluator.
    Other targets pass ``x`` through.
    """
    if to not in _NARROW_INTEGERS:
        return x
    xp, (bits, signed) = ctx.xp, _NARROW_INTEGERS[to]
    span = 1 << bits
    low = -(span >> 1) if signed else 0
    if ctx.fw.elem_type(x) in _FLOATS:
        whole = xp.trunc(xp.astype(x, xp.float32))
        inside = (whole >= low) & (whole < low + span)
        return xp.astype(xp.where(inside, whole, xp.zeros_like(whole)), xp.int32)
    return (xp.astype(x, xp.int32) - low) % span + low  # int64 to int32 keeps the low bits


@op("Constant", 1, 9, 11, 12, 13, 19, 21, 23, 24, 25)
def constant(ctx: Any, **attributes: Any) -> Any:
    for name in ("value", "sparse_value"):
        if name in attributes:
            return np.asarray(attributes[name])
    kinds = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
             "value_ints": np.int64, "value_string": np.object_, "value_strings": np.object_}
    for name, dtype in kinds.items():
        if name in attributes:
            return np.array(attributes[name], dtype=dtype)
    raise NotImplementedError("Constant without a value")


@op("ConstantOfShape", 9, 20, 21, 23, 24, 25, host=(0,))
def constant_of_shape(ctx: Any, shape: Any, *, value: Any = None) -> Any:
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value)
    return np.full(tuple(int(d) for d in shape), fill.reshape(-1)[0], dtype=fill.dtype)


@op("Range", 11, 27, host=(0, 1, 2))
def range_(ctx: Any, start: Any, limit: Any, delta: Any, *, stash_type: int = 1) -> Any:
    first, last, step = (np.asarray(v).reshape(-1)[0] for v in (start, limit, delta))
    count = max(int(np.ceil((last - first) / step)), 0)
    return (first + np.arange(count, dtype=np.float64 if start.dtype.kind == "f" else np.int64)
            * step).astype(start.dtype)


@op("EyeLike", 9, 22)
def eye_like(ctx: Any, x: Any, *, dtype: int | None = None, k: int = 0) -> Any:
    rows, cols = shape_of(x)
    target = ctx.dtype(dtype) if dtype else x.dtype
    return ctx.xp.eye(rows, cols, k=k, dtype=target)


@op("Trilu", 14, host=(1,))
def trilu(ctx: Any, x: Any, k: Any = None, *, upper: int) -> Any:
    offset = 0 if k is None else int(k)
    return ctx.xp.triu(x, k=offset) if upper else ctx.xp.tril(x, k=offset)


@op("DepthToSpace", 1, 11, 13, 28)
def depth_to_space(ctx: Any, x: Any, *, blocksize: int, mode: str = "DCR") -> Any:
    xp = ctx.xp
    n, c, h, w = shape_of(x)
    b = blocksize
    if mode == "DCR":
        y = xp.permute_dims(xp.reshape(x, (n, b, b, c // b // b, h, w)), (0, 3, 4, 1, 5, 2))
    else:
        y = xp.permute_dims(xp.reshape(x, (n, c // b // b, b, b, h, w)), (0, 1, 4, 2, 5, 3))
    return xp.reshape(y, (n, c // b // b, h * b, w * b))


@op("SpaceToDepth", 1, 13, 28)
def space_to_depth(ctx: Any, x: Any, *, blocksize: int, mode: str = "DCR") -> Any:
    xp = ctx.xp
    n, c, h, w = shape_of(x)
    b = blocksize
    order = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
    y = xp.permute_dims(xp.reshape(x, (n, c, h // b, b, w // b, b)), order)
    return xp.reshape(y, (n, c * b * b, h // b, w // b))


@op("OneHot", 9, 11, 28, host=(1,))
def one_hot(ctx: Any, indices: Any, depth: Any, values: Any, *, axis: int = -1) -> Any:
    xp = ctx.xp
    depth = int(np.asarray(depth).reshape(-1)[0])
    indices = xp.astype(indices, xp.int64)
    indices = xp.where(indices < 0, indices + depth, indices)
    rank = len(indices.shape) + 1
    axis = normalize_axis(axis, rank)
    classes = xp.reshape(xp.arange(depth, dtype=xp.int64),
                         tuple(depth if i == axis else 1 for i in range(rank)))
    hot = xp.expand_dims(indices, axis=axis) == classes
    return xp.where(hot, values[1], values[0])


@op("Compress", 9, 11, 28, host=(1,))
def compress(ctx: Any, x: Any, condition: Any, *, axis: int | None = None) -> Any:
    xp = ctx.xp
    keep = np.nonzero(np.asarray(condition, dtype=bool))[0]
    if axis is None:
        return xp.take(xp.reshape(x, (-1,)), xp.asarray(keep[keep < int(np.prod(x.shape))]))
    return xp.take(x, xp.asarray(keep[keep < shape_of(x)[axis]]), axis=axis)


@op("ReverseSequence", 10, 28, host=(1,))
def reverse_sequence(ctx: Any, x: Any, sequence_lens: Any, *, batch_axis: int,
                     time_axis: int) -> Any:
    xp = ctx.xp
    steps = shape_of(x)[time_axis]
    index = np.tile(np.arange(steps), (len(sequence_lens), 1))
    for b, length in enumerate(sequence_lens):
        index[b, :length] = index[b, :length][::-1]
    shape = [1] * len(x.shape)
    shape[batch_axis], shape[time_axis] = len(sequence_lens), steps
    order = index if batch_axis < time_axis else index.T
    full = np.broadcast_to(order.reshape(shape), shape_of(x))
    return xp.take_along_axis(x, xp.asarray(np.ascontiguousarray(full)), axis=time_axis)
