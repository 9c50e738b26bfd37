"""The host framework's kernels: what the array API lacks, written over numpy (see
:mod:`modelport.ops.host`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    return np.asarray(_erf(x), dtype=np.float64).astype(x.dtype)


def pad(x: np.ndarray, widths: list[list[int]], mode: str, value: Any) -> np.ndarray:
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=np.asarray(value, x.dtype))
    return np.pad(x, widths, mode=_PAD_MODES[mode])


_PAD_MODES: dict[str, Any] = {"reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def cast(x: np.ndarray, to: int, saturate: int) -> np.ndarray:
    import onnx.helper

    return cast_to(x, onnx.helper.tensor_dtype_to_np_dtype(to), saturate)


def cast_like(x: np.ndarray, target: np.ndarray, saturate: int) -> np.ndarray:
    return cast_to(x, target.dtype, saturate)


def cast_to(x: np.ndarray, dtype: np.dtype[Any], saturate: int) -> np.ndarray:
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if dtype == np.object_:  # to STRING: the shortest repr that round-trips, as the spec asks
        return np.vectorize(_to_string, otypes=[object])(x) if x.size else x.astype(object)
    if x.dtype == np.object_:
        return x.astype(np.float64 if dtype.kind != "b" else dtype).astype(dtype)
    return x.astype(dtype)  # out-of-range values were settled by the shared Cast


def _to_string(value: Any) -> str:
    if isinstance(value, float | np.floating):
        value = float(value)
        if np.isnan(value):
            return "NaN"
        if np.isinf(value):
            return "INF" if value > 0 else "-INF"
        return np.format_float_positional(value, trim="-") if abs(value) < 1e16 else repr(value)
    return str(value)


def top_k(x: np.ndarray, k: int, axis: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    # A stable sort keeps equal values in index order, as the spec asks.
    order = np.argsort(-x if largest and x.dtype.kind != "u" else x, axis=axis, kind="stable")
    if largest and x.dtype.kind == "u":
        order = np.flip(np.argsort(x, axis=axis, kind="stable"), axis=axis)
    indices = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, indices, axis=axis), indices


# --- sliding windows: convolution and pooling -------------------------------------------------


def windows(x: np.ndarray, kernel: list[int], strides: list[int], dilations: list[int],
            begin: list[int], end: list[int], fill: Any) -> np.ndarray:
    """(N, C, *out, *kernel) views of ``x`` padded with ``fill``."""
    nd = len(kernel)
    x = np.pad(x, [(0, 0), (0, 0), *zip(begin, end, strict=True)], constant_values=fill)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    view = np.lib.stride_tricks.sliding_window_view(x, eff, axis=tuple(range(2, 2 + nd)))
    index = (slice(None), slice(None), *(slice(None, None, s) for s in strides),
             *(slice(None, None, d) for d in dilations))
    return view[index]


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: list[int],
         begin: list[int], end: list[int], dilations: list[int], group: int) -> np.ndarray:
    nd = x.ndim - 2
    view = windows(x, list(w.shape[2:]), strides, dilations, begin, end, 0)
    n, c = x.shape[:2]
    out = view.shape[2:2 + nd]
    m = w.shape[0]
    view = view.reshape(n, group, c // group, *out, *w.shape[2:])
    weights = w.reshape(group, m // group, c // group, *w.shape[2:])
    spatial = "".join(chr(ord("p") + i) for i in range(nd))
    kern = "".join(chr(ord("h") + i) for i in range(nd))
    y = np.einsum(f"ngc{spatial}{kern},gmc{kern}->ngm{spatial}", view, weights, optimize=True)
    y = y.reshape(n, m, *out).astype(x.dtype)
    return y if b is None else y + b.reshape(1, -1, *[1] * nd)


def conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: list[int],
                   begin: list[int], end: list[int], dilations: list[int], group: int,
                   output_padding: list[int]) -> np.ndarray:
    nd = x.ndim - 2
    n, c = x.shape[:2]
    kernel = w.shape[2:]
    m = w.shape[1] * group
    full = [(i - 1) * s + (k - 1) * d + 1 + p for i, s, k, d, p in
            zip(x.shape[2:], strides, kernel, dilations, output_padding, strict=True)]
    y = np.zeros((n, m, *full), dtype=np.float64)
    xg = x.reshape(n, group, c // group, *x.shape[2:])
    wg = w.reshape(group, c // group, m // group, *kernel)
    for offset in np.ndindex(*kernel):
        contribution = np.einsum("ngc...,gcm->ngm...", xg, wg[(slice(None),) * 3 + offset])
        index = (slice(None), slice(None), *(
            slice(o * d, o * d + (i - 1) * s + 1, s)
            for o, d, i, s in zip(offset, dilations, x.shape[2:], strides, strict=True)))
        y[index] += contribution.reshape(n, m, *x.shape[2:])
    crop = (slice(None), slice(None), *(slice(bg, f - e) for bg, e, f in
                                        zip(begin, end, full, strict=True)))
    y = y[crop].astype(x.dtype)
    return y if b is None else y + b.reshape(1, -1, *[1] * nd)


def pool(x: np.ndarray, kind: str, kernel: list[int], strides: list[int],
         dilations: list[int], begin: list[int], end: list[int]) -> np.ndarray:
    axes = tuple(range(-len(kernel), 0))
    if kind == "max":
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        return windows(x, kernel, strides, dilations, begin, end, fill).max(axis=axes)
    view = windows(x, kernel, strides, dilations, begin, end, 0)
    return view.sum(axis=axes, dtype=np.float64 if x.dtype.kind == "f" else None
                    ).astype(x.dtype)


def max_pool_with_indices(x: np.ndarray, kernel: list[int], strides: list[int],
                          dilations: list[int], begin: list[int], end: list[int]
                          ) -> tuple[np.ndarray, np.ndarray]:
    nd = len(kernel)
    view = windows(x, kernel, strides, dilations, begin, end, -np.inf)
    flat = view.reshape(*view.shape[:2 + nd], -1)
    best = flat.argmax(axis=-1)
    values = np.take_along_axis(flat, best[..., None], axis=-1)[..., 0]
    offsets = np.unravel_index(best, kernel)
    coords = [np.arange(o).reshape([-1 if i == a else 1 for i in range(nd)]) * strides[a]
              + offsets[a] * dilations[a] for a, o in enumerate(view.shape[2:2 + nd])]
    padded = [s + b + e for s, b, e in zip(x.shape[2:], begin, end, strict=True)]
    return values, np.ravel_multi_index(tuple(coords), padded).astype(np.int64)


# --- scatter ----------------------------------------------------------------------------------

_REDUCE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def scatter_elements(data: np.ndarray, indices: np.ndarray, updates: np.ndarray, axis: int,
                     reduction: str) -> np.ndarray:
    out = data.copy()
    grid: list[Any] = list(np.indices(indices.shape, sparse=True))
    grid[axis] = indices
    if reduction == "none":
        out[tuple(grid)] = updates
    else:
        _REDUCE[reduction].at(out, tuple(grid), updates)
    return out


def scatter_nd(data: np.ndarray, indices: np.ndarray, updates: np.ndarray,
               reduction: str) -> np.ndarray:
    out = data.copy()
    index = tuple(np.moveaxis(indices, -1, 0))
    if reduction == "none":
        out[index] = updates
    else:
        _REDUCE[reduction].at(out, index, updates)
    return out


def unique(x: np.ndarray, axis: int | None, sort: bool) -> tuple[np.ndarray, ...]:
    values, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True,
                                               return_counts=True, axis=axis)
    inverse = inverse.reshape(-1)
    if not sort:  # order of first occurrence
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        values = np.take(values, order, axis=0 if axis is None else axis)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    return (values, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64))


def bit_cast(x: np.ndarray, dtype: Any) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.itemsize == x.dtype.itemsize:
        return x.view(dtype)
    raise NotImplementedError(f"BitCast between sizes {x.dtype.itemsize} and {dtype.itemsize}")


def gather_in_range(x: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
    return np.take_along_axis(x, indices, axis=axis)
