"""Quantization: QuantizeLinear, DequantizeLinear and the integer / QLinear operators."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.ops.registry import op
from modelport.ops.shape import cast_like, normalize_axis, shape_of

Q_VERSIONS = (10, 13, 19, 21, 23, 24, 25, 28)


def _broadcast_param(ctx: Any, param: Any, x: Any, axis: int, block_size: int) -> Any:
    """A scale or zero point shaped to broadcast against ``x``: per tensor, axis or block."""
    xp = ctx.xp
    rank = len(x.shape)
    if len(param.shape) == 0 or (len(param.shape) == 1 and param.shape[0] == 1 and rank != 1):
        return xp.reshape(param, ())
    axis = normalize_axis(axis, rank)
    if block_size:
        repeated = xp.repeat(param, block_size, axis=axis)
        return xp.take(repeated, xp.arange(shape_of(x)[axis]), axis=axis)
    return xp.reshape(param, tuple(-1 if i == axis else 1 for i in range(rank)))


@op("QuantizeLinear", *Q_VERSIONS)
def quantize_linear(ctx: Any, x: Any, y_scale: Any, y_zero_point: Any = None, *, axis: int = 1,
                    block_size: int = 0, output_dtype: int = 0, precision: int = 0,
                    saturate: int = 1) -> Any:
    xp = ctx.xp
    target = (y_zero_point.dtype if y_zero_point is not None
              else ctx.dtype(output_dtype) if output_dtype else xp.uint8)
    work = ctx.dtype(precision) if precision else (
        xp.float32 if y_scale.dtype != xp.float64 else xp.float64)
    scale = xp.astype(_broadcast_param(ctx, y_scale, x, axis, block_size), work)
    scaled = xp.astype(x, work) / scale
    if y_zero_point is not None:
        zero = _broadcast_param(ctx, y_zero_point, x, axis, block_size)
    if _is_integer(ctx, target):
        y = xp.round(scaled)
        if y_zero_point is not None:
            y = y + xp.astype(zero, work)
        low, high = _integer_range(ctx, target)
        return xp.astype(xp.clip(y, low, high), target)
    if y_zero_point is not None:
        scaled = scaled + xp.astype(zero, work)
    return cast_like(ctx, scaled, xp.zeros((), dtype=target), saturate=saturate)


def _is_integer(ctx: Any, dtype: Any) -> bool:
    try:
        return bool(ctx.xp.isdtype(dtype, "integral"))
    except (TypeError, ValueError):  # ml_dtypes' int4 and friends
        return np.dtype(dtype).kind in "iu" or "int" in np.dtype(dtype).name


def _integer_range(ctx: Any, dtype: Any) -> tuple[int, int]:
    try:
        info = ctx.xp.iinfo(dtype)
    except (TypeError, ValueError, AttributeError):  # ml_dtypes' int4 and friends
        import ml_dtypes

        info = ml_dtypes.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


@op("DequantizeLinear", *Q_VERSIONS)
def dequantize_linear(ctx: Any, x: Any, x_scale: Any, x_zero_point: Any = None, *,
                      axis: int = 1, block_size: int = 0, output_dtype: int = 0) -> Any:
    xp = ctx.xp
    out = ctx.dtype(output_dtype) if output_dtype else x_scale.dtype
    work = xp.float32 if x_scale.dtype != xp.float64 else xp.float64
    value = xp.astype(x, work)
    if x_zero_point is not None:
        value = value - xp.astype(_broadcast_param(ctx, x_zero_point, x, axis, block_size), work)
    scale = xp.astype(_broadcast_param(ctx, x_scale, x, axis, block_size), work)
    return xp.astype(value * scale, out)


def dequantized(ctx: Any, x: Any, scale: Any, zero: Any, axis: int = 1) -> Any:
    """The real values of a QLinear* operator's input (float32, as onnxruntime computes)."""
    return dequantize_linear(ctx, x, xp_float32(ctx, scale), zero, axis=axis)


def requantized(ctx: Any, y: Any, scale: Any, zero: Any) -> Any:
    """A QLinear* operator's real result in its output's quantization."""
    return quantize_linear(ctx, y, xp_float32(ctx, scale), zero)


def xp_float32(ctx: Any, value: Any) -> Any:
    return ctx.xp.astype(value, ctx.xp.float32)


@op("QLinearMatMul", 10, 21)
def qlinear_mat_mul(ctx: Any, a: Any, a_scale: Any, a_zero_point: Any, b: Any, b_scale: Any,
                    b_zero_point: Any, y_scale: Any, y_zero_point: Any) -> Any:
    a_real = dequantized(ctx, a, a_scale, a_zero_point)
    b_real = dequantized(ctx, b, b_scale, b_zero_point, axis=-1)
    y = ctx.xp.matmul(a_real, b_real)
    return requantized(ctx, y, y_scale, y_zero_point)


@op("ConvInteger", 10)
def conv_integer(ctx: Any, x: Any, w: Any, x_zero_point: Any = None, w_zero_point: Any = None,
                 **attributes: Any) -> Any:
    from modelport.ops.nn import conv

    xp = ctx.xp
    x32, w32 = xp.astype(x, xp.float64), xp.astype(w, xp.float64)
    if x_zero_point is not None:
        x32 = x32 - xp.astype(x_zero_point, xp.float64)
    if w_zero_point is not None:
        zero = xp.astype(w_zero_point, xp.float64)
        w32 = w32 - (xp.reshape(zero, (-1, *[1] * (len(w.shape) - 1))) if len(zero.shape)
                     else zero)
    return xp.astype(xp.round(conv(ctx, x32, w32, None, **attributes)), xp.int32)


@op("QLinearConv", 10)
def qlinear_conv(ctx: Any, x: Any, x_scale: Any, x_zero_point: Any, w: Any, w_scale: Any,
                 w_zero_point: Any, y_scale: Any, y_zero_point: Any, b: Any = None,
                 **attributes: Any) -> Any:
    from modelport.ops.nn import conv

    xp = ctx.xp
    x_real = dequantized(ctx, x, x_scale, x_zero_point)
    w_real = dequantized(ctx, w, w_scale, w_zero_point, axis=0)
    bias = None if b is None else xp.astype(b, xp.float32) * xp.reshape(
        xp_float32(ctx, x_scale) * xp_float32(ctx, w_scale), (-1,))
    y = conv(ctx, x_real, w_real, bias, **attributes)
    return requantized(ctx, y, y_scale, y_zero_point)


@op("DynamicQuantizeLinear", 11)
def dynamic_quantize_linear(ctx: Any, x: Any) -> Any:
    xp = ctx.xp
    low = xp.minimum(xp.min(x), xp.asarray(0, dtype=x.dtype))
    high = xp.maximum(xp.max(x), xp.asarray(0, dtype=x.dtype))
    scale = (high - low) / 255
    zero = xp.astype(xp.clip(xp.round(0 - low / scale), 0, 255), xp.uint8)
    y = xp.astype(xp.clip(xp.round(x / scale) + xp.astype(zero, x.dtype), 0, 255), xp.uint8)
    return y, scale, zero
