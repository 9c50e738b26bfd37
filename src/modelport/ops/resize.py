"""Resize (and Upsample): separable interpolation, one axis at a time.

For each resized axis the coefficients and the source indices of every output position are
computed on the host (they depend only on sizes and attributes); the framework then gathers
the neighbours and takes their weighted sum. One code path serves nearest, linear and cubic,
with or without antialiasing, for every framework.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from modelport.ops.registry import op
from modelport.ops.shape import normalize_axis, shape_of

Coeffs = Callable[[float, float], np.ndarray]


def _nearest(mode: str) -> Coeffs:
    def coeffs(ratio: float, scale: float) -> np.ndarray:
        if float(ratio).is_integer():
            return np.array([0.0, 1.0])
        pick_right = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5,
                      "floor": False, "ceil": True}[mode]
        return np.array([0.0, 1.0]) if pick_right else np.array([1.0, 0.0])

    return coeffs


def _linear(antialias: bool) -> Coeffs:
    def coeffs(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return np.array([1 - ratio, ratio])
        scale = min(scale, 1.0)
        start = int(np.floor(-1 / scale) + 1)
        args = (np.arange(start, start + 2 - 2 * start) - ratio) * scale
        weights = np.clip(1 - np.abs(args), 0, 1)
        return weights / weights.sum()

    return coeffs


def _cubic(a: float, antialias: bool) -> Coeffs:
    def kernel(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        if x < 2:
            return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
        return 0.0

    def coeffs(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return np.array([kernel(ratio + 1), kernel(ratio), kernel(1 - ratio),
                             kernel(2 - ratio)])
        scale = min(scale, 1.0)
        start = int(np.floor(-2 / scale) + 1)
        weights = np.array([kernel(scale * (i - ratio)) for i in range(start, 2 - start)])
        return weights / weights.sum()

    return coeffs


def _source(mode: str, out_len: int, in_len: int, scale: float,
            roi: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Source coordinate of every output position, and which fall outside (crop and resize)."""
    y = np.arange(out_len, dtype=np.float64)
    width = scale * in_len
    if mode == "align_corners":
        return (np.zeros(out_len) if width == 1 else y * (in_len - 1) / (width - 1)), None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "tf_crop_and_resize":
        start, end = roi if roi is not None else (0.0, 1.0)
        x = (np.full(out_len, (end - start) * (in_len - 1) / 2) if width == 1
             else y * (end - start) * (in_len - 1) / (width - 1)) + start * (in_len - 1)
        return x, (x < 0) | (x > in_len - 1)
    if mode == "pytorch_half_pixel":
        return (np.full(out_len, -0.5) if width == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / width)
        return offset + (y + 0.5) / scale - 0.5, None
    return (y + 0.5) / scale - 0.5, None  # half_pixel


def axis_table(in_len: int, out_len: int, scale: float, coeffs: Coeffs, mode: str,
               roi: tuple[float, float] | None,
               exclude_outside: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(indices, weights) of shape (out_len, taps), and the extrapolated positions."""
    x, outside = _source(mode, out_len, in_len, scale, roi)
    floor = np.floor(x)
    ratios = np.where(x == floor, 1.0, x - floor)
    weights = np.stack([coeffs(float(r), scale) for r in ratios])
    taps = weights.shape[1]
    pad = math.ceil(taps / 2)
    padded = x + pad
    base = np.floor(padded).astype(np.int64)
    frac = padded - base
    if taps % 2 == 0:  # ties go to the smaller index, as the spec's reference does
        offset = np.where(frac == 0, -(taps // 2), -(taps // 2) + 1)
    else:
        offset = np.where(frac <= 0.5, -((taps - 1) // 2), -((taps - 1) // 2) + 1)
    indices = (base + offset)[:, None] + np.arange(taps)[None, :] - pad
    if exclude_outside:
        weights = np.where((indices < 0) | (indices >= in_len), 0.0, weights)
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    return np.clip(indices, 0, in_len - 1), weights, outside


def _resize_axis(ctx: Any, x: Any, axis: int, out_len: int, scale: float, coeffs: Coeffs,
                 mode: str, roi: tuple[float, float] | None, exclude_outside: bool,
                 extrapolation_value: float) -> Any:
    xp = ctx.xp
    in_len = shape_of(x)[axis]
    indices, weights, outside = axis_table(in_len, out_len, scale, coeffs, mode, roi,
                                           exclude_outside)
    taps = indices.shape[1]
    gathered = xp.take(x, xp.asarray(indices.reshape(-1)), axis=axis)
    dims = shape_of(x)
    gathered = xp.reshape(gathered, (*dims[:axis], out_len, taps, *dims[axis + 1:]))
    shape = (1,) * axis + (out_len, taps) + (1,) * (len(dims) - axis - 1)
    result = xp.sum(gathered * xp.asarray(weights.reshape(shape), dtype=x.dtype), axis=axis + 1)
    if outside is not None and outside.any():
        mask = xp.asarray(outside.reshape((1,) * axis + (out_len,) + (1,) * (len(dims) - axis - 1)))
        result = xp.where(mask, xp.asarray(extrapolation_value, dtype=x.dtype), result)
    return result


@op("Resize", 11, 13, 18, 19, host=(1, 2, 3))
def resize(ctx: Any, x: Any, roi: Any = None, scales: Any = None, sizes: Any = None, *,
           antialias: int = 0, axes: list[int] | None = None,
           coordinate_transformation_mode: str = "half_pixel", cubic_coeff_a: float = -0.75,
           exclude_outside: int = 0, extrapolation_value: float = 0.0,
           keep_aspect_ratio_policy: str = "stretch", mode: str = "nearest",
           nearest_mode: str = "round_prefer_floor") -> Any:
    dims = shape_of(x)
    rank = len(dims)
    axes_ = [normalize_axis(a, rank) for a in axes] if axes is not None else list(range(rank))
    if sizes is not None and np.size(sizes):
        out = dict(zip(axes_, (int(s) for s in sizes), strict=True))
        scale = {a: out[a] / dims[a] for a in axes_}
        if keep_aspect_ratio_policy != "stretch":
            chosen = (min if keep_aspect_ratio_policy == "not_larger" else max)(scale.values())
            scale = dict.fromkeys(axes_, chosen)
            out = {a: int(chosen * dims[a] + 0.5) for a in axes_}
    else:
        scale = dict(zip(axes_, (float(s) for s in scales), strict=True))
        out = {a: int(scale[a] * dims[a]) for a in axes_}
    rois: dict[int, tuple[float, float]] = {}
    if roi is not None and np.size(roi):
        r = np.asarray(roi, dtype=np.float64)
        rois = {a: (float(r[i]), float(r[i + len(axes_)])) for i, a in enumerate(axes_)}
    coeffs = (_nearest(nearest_mode) if mode == "nearest" else
              _linear(bool(antialias)) if mode == "linear" else
              _cubic(cubic_coeff_a, bool(antialias)))
    xp = ctx.xp
    original = x.dtype
    work = xp.float64 if original == xp.float64 or xp.isdtype(original, "integral") \
        else xp.float32
    x = xp.astype(x, work)
    for axis in axes_:
        roi_axis = rois.get(axis)
        unchanged = math.isclose(scale[axis], 1.0) and out[axis] == dims[axis] and (
            roi_axis is None or coordinate_transformation_mode != "tf_crop_and_resize"
            or roi_axis == (0.0, 1.0))
        if unchanged:
            continue
        x = _resize_axis(ctx, x, axis, out[axis], scale[axis], coeffs,
                         coordinate_transformation_mode, roi_axis, bool(exclude_outside),
                         extrapolation_value)
    if xp.isdtype(original, "integral"):  # round and saturate back, as the reference does
        info = xp.iinfo(original)
        x = xp.clip(xp.round(x), info.min, info.max)
    return xp.astype(x, original)


@op("Resize", 10, host=(1,))
def resize_10(ctx: Any, x: Any, scales: Any, *, mode: str = "nearest") -> Any:
    return resize(ctx, x, None, scales, None, mode=mode,
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")


@op("Upsample", 9, host=(1,))
def upsample(ctx: Any, x: Any, scales: Any, *, mode: str = "nearest") -> Any:
    return resize_10(ctx, x, scales, mode=mode)


@op("Upsample", 1)
def upsample_1(ctx: Any, x: Any, *, mode: str = "nearest", height_scale: float,
               width_scale: float) -> Any:
    """Version 1 (experimental): NCHW only, scales for height and width, "bilinear"."""
    scales = np.array([1.0, 1.0, height_scale, width_scale], np.float32)
    return resize_10(ctx, x, scales, mode="linear" if mode == "bilinear" else mode)


@op("Upsample", 7)
def upsample_7(ctx: Any, x: Any, *, mode: str = "nearest", scales: list[float]) -> Any:
    """Version 7 (opsets 7 and 8, much of the ONNX Model Zoo): the scales are an attribute."""
    return resize_10(ctx, x, np.asarray(scales, np.float32), mode=mode)
