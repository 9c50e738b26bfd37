"""Convolution, pooling and normalization.

The spec's geometry (``auto_pad``, ``ceil_mode``, output shapes, ``output_padding``) is worked
out here once, on Python integers; the frameworks' kernels receive explicit begin/end pads and
only do the arithmetic.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from modelport.errors import BackendError
from modelport.ops.context import native, truth
from modelport.ops.registry import op
from modelport.ops.shape import normalize_axis, shape_of


def _effective(kernel: list[int], dilations: list[int]) -> list[int]:
    return [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]


def window_pads(spatial: tuple[int, ...], kernel: list[int], strides: list[int],
                dilations: list[int], pads: list[int] | None, auto_pad: str,
                ceil_mode: int = 0) -> tuple[list[int], list[int], list[int]]:
    """Output sizes, begin pads and end pads of a sliding window, as the spec defines them.

    End pads include the extra padding that ``ceil_mode`` needs for its last window.
    """
    nd = len(spatial)
    eff = _effective(kernel, dilations)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [math.ceil(i / s) for i, s in zip(spatial, strides, strict=True)]
        total = [max(0, (o - 1) * s + e - i) for o, s, e, i in zip(out, strides, eff, spatial,
                                                                   strict=True)]
        small = [t // 2 for t in total]
        begin = small if auto_pad == "SAME_UPPER" else [t - h for t, h in zip(total, small,
                                                                               strict=True)]
        end = [t - b for t, b in zip(total, begin, strict=True)]
        return out, begin, end
    if auto_pad == "VALID" or pads is None:
        begin, end = [0] * nd, [0] * nd
    else:
        begin, end = list(pads[:nd]), list(pads[nd:])
    out = []
    for i in range(nd):
        span = spatial[i] + begin[i] + end[i] - eff[i]
        size = (math.ceil(span / strides[i]) if ceil_mode else span // strides[i]) + 1
        if ceil_mode and (size - 1) * strides[i] >= spatial[i] + begin[i]:
            size -= 1  # the last window must start inside the input or its begin pad
        out.append(size)
        end[i] = max(end[i], (size - 1) * strides[i] + eff[i] - spatial[i] - begin[i])
    return out, begin, end


def _geometry(x: Any, kernel: list[int], strides: list[int] | None,
              dilations: list[int] | None, pads: list[int] | None, auto_pad: str,
              ceil_mode: int = 0) -> tuple[list[int], list[int], list[int], list[int],
                                          list[int]]:
    nd = len(kernel)
    strides = list(strides or [1] * nd)
    dilations = list(dilations or [1] * nd)
    out, begin, end = window_pads(shape_of(x)[2:], kernel, strides, dilations, pads, auto_pad,
                                  ceil_mode)
    return strides, dilations, out, begin, end


@op("Conv", 1, 11, 22)  # 1 and 11 differ only in the wording of the defaults
def conv(ctx: Any, x: Any, w: Any, b: Any = None, *, auto_pad: str = "NOTSET",
         dilations: list[int] | None = None, group: int = 1,
         kernel_shape: list[int] | None = None, pads: list[int] | None = None,
         strides: list[int] | None = None) -> Any:
    kernel = list(kernel_shape or shape_of(w)[2:])
    strides, dilations, _, begin, end = _geometry(x, kernel, strides, dilations, pads, auto_pad)
    return ctx.k.conv(x, w, b, strides, begin, end, dilations, group)


@op("ConvTranspose", 1, 11, 22)
def conv_transpose(ctx: Any, x: Any, w: Any, b: Any = None, *, auto_pad: str = "NOTSET",
                   dilations: list[int] | None = None, group: int = 1,
                   kernel_shape: list[int] | None = None,
                   output_padding: list[int] | None = None,
                   output_shape: list[int] | None = None, pads: list[int] | None = None,
                   strides: list[int] | None = None) -> Any:
    spatial = shape_of(x)[2:]
    nd = len(spatial)
    kernel = list(kernel_shape or shape_of(w)[2:])
    strides = list(strides or [1] * nd)
    dilations = list(dilations or [1] * nd)
    extra = list(output_padding or [0] * nd)
    full = [(i - 1) * s + (k - 1) * d + 1 for i, s, k, d in zip(spatial, strides, kernel,
                                                                  dilations, strict=True)]
    if output_shape is not None:
        target = list(output_shape[-nd:])
        total = [f + e - t for f, e, t in zip(full, extra, target, strict=True)]
        begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):  # growth all at the end, as
            begin = [max(b, 0) for b in begin]           # onnxruntime and the reference do
        end = [t - b for t, b in zip(total, begin, strict=True)]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = [i * s for i, s in zip(spatial, strides, strict=True)]
        total = [f + e - t for f, e, t in zip(full, extra, target, strict=True)]
        begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        end = [t - b for t, b in zip(total, begin, strict=True)]
    else:
        begin, end = (list(pads[:nd]), list(pads[nd:])) if pads else ([0] * nd, [0] * nd)
    # An output_shape past the full result makes a pad negative: the output grows there by
    # rows that no input reaches (zeros, plus the bias), which the kernels take as
    # output_padding at the end and as a zero pad at the start.
    extra = [e + max(-p, 0) for e, p in zip(extra, end, strict=True)]
    end = [max(p, 0) for p in end]
    grow = [max(-p, 0) for p in begin]
    y = ctx.k.conv_transpose(x, w, None if any(grow) else b, strides,
                             [max(p, 0) for p in begin], end, dilations, group, extra)
    if not any(grow):
        return y
    y = ctx.k.pad(y, [[0, 0], [0, 0], *[[g, 0] for g in grow]], "constant", 0)
    return y if b is None else y + ctx.xp.reshape(b, (1, -1, *([1] * nd)))


def _pool_args(x: Any, kernel_shape: list[int], strides: Any, dilations: Any, pads: Any,
               auto_pad: str, ceil_mode: int
               ) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    strides, dilations, _, begin, end = _geometry(x, list(kernel_shape), strides, dilations,
                                                  pads, auto_pad, ceil_mode)
    return list(kernel_shape), strides, dilations, begin, end


@op("MaxPool", 1, 8, 10, 11, 12, 22)  # 1: no Indices, storage_order, dilations or ceil_mode
def max_pool(ctx: Any, x: Any, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
             dilations: list[int] | None = None, kernel_shape: list[int],
             pads: list[int] | None = None, storage_order: int = 0,
             strides: list[int] | None = None) -> Any:
    args = _pool_args(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    if ctx.n_outputs > 1:
        values, position = ctx.k.max_pool_with_indices(x, *args)
        return values, _pool_index(ctx, x, position, args[3], args[4], storage_order)
    xp = ctx.xp
    if not xp.isdtype(x.dtype, "real floating"):
        return ctx.k.pool(x, "max", *args)
    # ONNX Runtime and the reference evaluator take the largest number of a window and pass
    # over NaN (a window of NaN alone stays NaN); pooling kernels would propagate it
    nan = xp.isnan(x)

    def passing_over_nan() -> tuple[Any]:
        largest = ctx.k.pool(xp.where(nan, xp.asarray(-math.inf, dtype=x.dtype), x), "max",
                             *args)
        numbers = ctx.k.pool(xp.astype(~nan, x.dtype), "max", *args)
        return (xp.where(numbers > 0, largest, xp.asarray(math.nan, dtype=x.dtype)),)

    # Without NaN (the common case) one pool does: decided in Python where the values can be
    # read, by the framework's conditional while tracing, else always the general way.
    traced_cond = native(ctx, "cond")
    if ctx.fw.tracing(nan):
        if traced_cond is None:
            return passing_over_nan()[0]
        return traced_cond(xp.any(nan), passing_over_nan,
                           lambda: (ctx.k.pool(x, "max", *args),))[0]
    return passing_over_nan()[0] if truth(ctx, xp.any(nan)) else ctx.k.pool(x, "max", *args)


def _pool_index(ctx: Any, x: Any, position: Any, begin: list[int], end: list[int],
                storage_order: int) -> Any:
    """MaxPool's Indices: a kernel's position in the padded plane of an image, as the spec
    counts it: unpadded, row-major (``storage_order`` 0) or column-major (1) within the
    image, plus the image's offset in the flattened (N, C) batch."""
    xp = ctx.xp
    spatial = shape_of(x)[2:]
    nd = len(spatial)
    coords = []
    for axis in reversed(range(nd)):  # unravel in the padded plane, then unpad
        padded = spatial[axis] + begin[axis] + end[axis]
        coords.append(position % padded - begin[axis])
        position = position // padded
    coords.reverse()
    index = coords[-1] if storage_order else coords[0]
    for axis in (reversed(range(nd - 1)) if storage_order else range(1, nd)):
        index = index * spatial[axis] + coords[axis]
    n, c = x.shape[:2]
    image = xp.arange(n * c, dtype=xp.int64) * math.prod(spatial)
    return index + xp.reshape(image, (n, c, *[1] * nd))


@op("AveragePool", 1, 7, 10, 11, 19, 22)  # 1: count_include_pad is 0
def average_pool(ctx: Any, x: Any, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
                 count_include_pad: int = 0, dilations: list[int] | None = None,
                 kernel_shape: list[int], pads: list[int] | None = None,
                 strides: list[int] | None = None) -> Any:
    args = _pool_args(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    # The divisor counts the input's cells of each window, and the explicit pads' cells with
    # count_include_pad; never the extra padding that ceil_mode adds for its last window.
    counted_begin = counted_end = [0] * len(kernel_shape)
    if count_include_pad:
        *_, counted_begin, counted_end = _geometry(x, list(kernel_shape), strides, dilations,
                                                   pads, auto_pad)
    counts = _window_cells(tuple(shape_of(x)[2:]), *map(tuple, args),
                           tuple(counted_begin), tuple(counted_end))
    total = ctx.k.pool(x, "sum", *args)
    return total / ctx.xp.asarray(counts, dtype=x.dtype)


@functools.lru_cache(maxsize=256)
def _window_cells(spatial: tuple[int, ...], kernel: tuple[int, ...], strides: tuple[int, ...],
                  dilations: tuple[int, ...], begin: tuple[int, ...], end: tuple[int, ...],
                  counted_begin: tuple[int, ...], counted_end: tuple[int, ...]) -> np.ndarray:
    """How many cells of each window lie in the input widened by the counted pads: geometry
    only, so computed once per geometry, not on every call (read-only: it is shared)."""
    from modelport.ops import host_kernels

    ones = np.ones((1, 1, *(s + b + e for s, b, e in
                            zip(spatial, counted_begin, counted_end, strict=True))))
    counts = host_kernels.pool(ones, "sum", list(kernel), list(strides), list(dilations),
                               [b - c for b, c in zip(begin, counted_begin, strict=True)],
                               [e - c for e, c in zip(end, counted_end, strict=True)])
    counts.flags.writeable = False
    return counts


@op("LpPool", 1, 2, 11, 18, 22)  # 1: p is a float, 2: an int; the same pooling
def lp_pool(ctx: Any, x: Any, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
            dilations: list[int] | None = None, kernel_shape: list[int], p: int = 2,
            pads: list[int] | None = None, strides: list[int] | None = None) -> Any:
    args = _pool_args(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    powered = ctx.k.pool(ctx.xp.abs(x) ** p, "sum", *args)
    return powered ** (1.0 / p)


@op("GlobalAveragePool", 1, 22)
def global_average_pool(ctx: Any, x: Any) -> Any:
    return ctx.xp.mean(x, axis=tuple(range(2, len(x.shape))), keepdims=True)


@op("GlobalMaxPool", 1, 22)
def global_max_pool(ctx: Any, x: Any) -> Any:
    return ctx.xp.max(x, axis=tuple(range(2, len(x.shape))), keepdims=True)


@op("GlobalLpPool", 1, 2, 22)
def global_lp_pool(ctx: Any, x: Any, *, p: int = 2) -> Any:
    xp = ctx.xp
    return xp.sum(xp.abs(x) ** p, axis=tuple(range(2, len(x.shape))), keepdims=True) ** (1 / p)


# --- normalization ----------------------------------------------------------------------------


def _channel(x: Any, v: Any, ctx: Any) -> Any:
    """A per-channel vector shaped to broadcast against NC... data."""
    return ctx.xp.reshape(v, (1, -1, *([1] * (len(x.shape) - 2))))


@op("BatchNormalization", 9, 14, 15)
def batch_normalization(ctx: Any, x: Any, scale: Any, bias: Any, mean: Any, var: Any, *,
                        epsilon: float = 1e-5, momentum: float = 0.9,
                        training_mode: int = 0) -> Any:
    xp = ctx.xp
    if training_mode:
        axes = (0, *range(2, len(x.shape)))
        batch_mean = xp.mean(x, axis=axes)
        batch_var = xp.var(x, axis=axes)
        y = (x - _channel(x, batch_mean, ctx)) / xp.sqrt(_channel(x, batch_var, ctx) + epsilon)
        y = y * _channel(x, scale, ctx) + _channel(x, bias, ctx)
        return (y, mean * momentum + batch_mean * (1 - momentum),
                var * momentum + batch_var * (1 - momentum))
    if fast := native(ctx, "batch_norm"):
        return fast(x, scale, bias, mean, var, epsilon)
    inv = scale / xp.sqrt(var + epsilon)
    return x * _channel(x, inv, ctx) + _channel(x, bias - mean * inv, ctx)


@op("BatchNormalization", 1, 6, 7)
def batch_normalization_7(ctx: Any, x: Any, scale: Any, bias: Any, mean: Any, var: Any, *,
                          epsilon: float = 1e-5, momentum: float = 0.9, spatial: int = 1,
                          is_test: int = 0) -> Any:
    """Versions 1-7 (inference): ``spatial`` 1 is version 9's per-channel normalization; 0 gives
    every element of (C, D1, ...) statistics of its own, broadcast over the batch. ``is_test``
    (1 and 6) is not read, as onnxruntime does not."""
    if spatial:
        return batch_normalization(ctx, x, scale, bias, mean, var, epsilon=epsilon)
    inv = scale / ctx.xp.sqrt(var + epsilon)
    return x * inv + (bias - mean * inv)


@op("InstanceNormalization", 1, 6, 22)
def instance_normalization(ctx: Any, x: Any, scale: Any, bias: Any, *,
                           epsilon: float = 1e-5) -> Any:
    xp = ctx.xp
    axes = tuple(range(2, len(x.shape)))
    mean = xp.mean(x, axis=axes, keepdims=True)
    var = xp.var(x, axis=axes, keepdims=True)
    return (x - mean) / xp.sqrt(var + epsilon) * _channel(x, scale, ctx) + _channel(x, bias, ctx)


@op("LayerNormalization", 17)
def layer_normalization(ctx: Any, x: Any, scale: Any, bias: Any = None, *, axis: int = -1,
                        epsilon: float = 1e-5, stash_type: int = 1) -> Any:
    return layer_norm(ctx, x, scale, bias, axis, epsilon, stash_type, ctx.n_outputs > 1)


def layer_norm(ctx: Any, x: Any, scale: Any, bias: Any, axis: int, epsilon: float,
               stash_type: int = 1, statistics: bool = False) -> Any:
    """LayerNormalization over the axes from ``axis``; with ``statistics`` also the mean and
    the inverse standard deviation, in the stash type."""
    xp = ctx.xp
    first = normalize_axis(axis, len(x.shape))
    # the fused kernel computes in the input's precision: the spec's only where that is the
    # stash type (float32), as it is for nearly every model
    if (not statistics and x.dtype == xp.float32 and stash_type == 1
            and (fast := native(ctx, "layer_norm"))):
        return fast(x, scale, bias, first, epsilon)
    axes = tuple(range(first, len(x.shape)))
    work = xp.astype(x, ctx.dtype(stash_type))
    mean = xp.mean(work, axis=axes, keepdims=True)
    centered = work - mean
    inv_std = 1 / xp.sqrt(xp.mean(centered * centered, axis=axes, keepdims=True) + epsilon)
    y = xp.astype(centered * inv_std, x.dtype) * scale
    if bias is not None:
        y = y + bias
    if not statistics:
        return y
    return y, xp.astype(mean, ctx.dtype(stash_type)), inv_std


@op("LRN", 1, 13)
def lrn(ctx: Any, x: Any, *, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0,
        size: int) -> Any:
    squares = x * x
    padded = ctx.k.pad(squares, [[0, 0], [(size - 1) // 2, size // 2],
                                 *[[0, 0]] * (len(x.shape) - 2)], "constant", 0)
    channels = shape_of(x)[1]
    total = sum(padded[:, i:i + channels] for i in range(size))
    return x / (bias + alpha / size * total) ** beta


@op("MeanVarianceNormalization", 9, 13)
def mean_variance_normalization(ctx: Any, x: Any, *, axes: list[int] | None = None) -> Any:
    xp = ctx.xp
    axes_ = tuple(axes if axes is not None else (0, 2, 3))
    mean = xp.mean(x, axis=axes_, keepdims=True)
    var = xp.mean((x - mean) ** 2, axis=axes_, keepdims=True)
    return (x - mean) / (xp.sqrt(var) + 1e-9)


@op("Dropout", 1, 6, 7, 10)
def dropout_7(ctx: Any, x: Any, *, ratio: float = 0.5, is_test: int = 0) -> Any:
    """Inference: the identity, as onnxruntime runs every version (``is_test``, versions 1
    and 6, is not read: a training-mode draw is no two frameworks' same)."""
    return (x, ctx.xp.ones_like(x, dtype=ctx.xp.bool)) if ctx.n_outputs > 1 else x


@op("Dropout", 12, 13, 22, host=(1, 2))
def dropout(ctx: Any, x: Any, ratio: Any = None, training_mode: Any = None, *,
            seed: int | None = None) -> Any:
    """Inference is the identity. Training mode draws the mask on the host from numpy's
    ``RandomState(seed)``, as the reference evaluator does: a seeded node gives one mask on
    every backend and every call (a traced program holds it as a constant); an unseeded one
    draws afresh, so it cannot be traced and runs eagerly."""
    xp = ctx.xp
    rate = 0.5 if ratio is None else float(np.asarray(ratio))
    if training_mode is None or not bool(np.asarray(training_mode)) or rate == 0:
        return (x, xp.ones_like(x, dtype=xp.bool)) if ctx.n_outputs > 1 else x
    if seed is None and ctx.fw.tracing(x):
        raise BackendError("Dropout in training mode without a seed draws a new mask each call")
    keep = np.random.RandomState(seed).uniform(0, 1.0, tuple(x.shape)) >= rate
    mask = ctx.fw.asarray(keep)
    y = xp.where(mask, x * xp.asarray(1 / (1 - rate), dtype=x.dtype), xp.zeros_like(x))
    return (y, mask) if ctx.n_outputs > 1 else y
