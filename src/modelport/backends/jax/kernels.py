"""JAX kernels: ``lax`` convolutions and reduce-windows, ``.at[]`` scatters; all jittable
except ``unique`` (its output shape depends on the data)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def erf(x: jax.Array) -> jax.Array:
    return jax.scipy.special.erf(x)


def cond(pred: jax.Array, then_fn: Any, else_fn: Any) -> tuple[Any, ...]:
    """If: Python decides a concrete condition; a traced one becomes ``lax.cond``, whose
    branches must give arrays of one shape and dtype. Where they do not (sequences,
    optionals, shapes that differ), tracing stops and the session runs eagerly."""
    from modelport.errors import BackendError

    if not isinstance(pred, jax.core.Tracer):
        return tuple((then_fn if bool(np.asarray(pred).reshape(-1)[0]) else else_fn)())

    def branch(fn: Any) -> Any:
        def run(_: Any) -> tuple[jax.Array, ...]:
            outputs = fn()
            if not all(isinstance(v, jax.Array | np.ndarray) for v in outputs):
                raise BackendError("an If branch gives sequences or optionals")
            return tuple(jnp.asarray(v) for v in outputs)

        return run

    try:
        return tuple(lax.cond(jnp.reshape(pred, ()).astype(bool), branch(then_fn),
                              branch(else_fn), None))
    except TypeError as exc:  # the branches disagree in shape or dtype
        raise BackendError(f"the If branches cannot be one lax.cond: {exc}") from exc


def pad(x: jax.Array, widths: list[list[int]], mode: str, value: Any) -> jax.Array:
    if mode == "constant":
        return jnp.pad(x, widths, mode="constant", constant_values=jnp.asarray(value, x.dtype))
    return jnp.pad(x, widths, mode=mode)


def cast(x: jax.Array, to: int, saturate: int) -> jax.Array:
    import onnx.helper

    return cast_to(x, onnx.helper.tensor_dtype_to_np_dtype(to), saturate)


def cast_like(x: jax.Array, target: jax.Array, saturate: int) -> jax.Array:
    return cast_to(x, target.dtype, saturate)


def cast_to(x: jax.Array, dtype: Any, saturate: int) -> jax.Array:
    dtype = np.dtype(dtype)
    return x.astype(dtype)  # out-of-range values were settled by the shared Cast


def top_k(x: jax.Array, k: int, axis: int, largest: bool) -> tuple[jax.Array, jax.Array]:
    order = jnp.argsort(x, axis=axis, descending=largest, stable=True)
    indices = lax.slice_in_dim(order, 0, k, axis=axis)
    return jnp.take_along_axis(x, indices, axis=axis), indices


def _dimension_numbers(nd: int) -> tuple[str, str, str]:
    spatial = "DHW"[-nd:] if nd <= 3 else "".join(chr(ord("a") + i) for i in range(nd))
    return f"NC{spatial}", f"OI{spatial}", f"NC{spatial}"


def conv(x: jax.Array, w: jax.Array, b: jax.Array | None, strides: list[int],
         begin: list[int], end: list[int], dilations: list[int], group: int) -> jax.Array:
    nd = x.ndim - 2
    y = lax.conv_general_dilated(x, w.astype(x.dtype), tuple(strides),
                                 list(zip(begin, end, strict=True)),
                                 rhs_dilation=tuple(dilations),
                                 dimension_numbers=_dimension_numbers(nd),
                                 feature_group_count=group)
    return y if b is None else y + b.reshape(1, -1, *[1] * nd)


def conv_transpose(x: jax.Array, w: jax.Array, b: jax.Array | None, strides: list[int],
                   begin: list[int], end: list[int], dilations: list[int], group: int,
                   output_padding: list[int]) -> jax.Array:
    """The gradient of a convolution: dilate the input by the strides, flip the kernel."""
    nd = x.ndim - 2
    kernel = w.shape[2:]
    c_in, c_out_g = w.shape[:2]
    # (C_in, C_out/g, k) -> (C_out, C_in/g, k), flipped in space
    wg = w.reshape(group, c_in // group, c_out_g, *kernel)
    wg = jnp.swapaxes(wg, 1, 2).reshape(group * c_out_g, c_in // group, *kernel)
    wg = jnp.flip(wg, axis=tuple(range(2, 2 + nd)))
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    padding = [(e - 1 - bg, e - 1 - en + op) for e, bg, en, op in
               zip(eff, begin, end, output_padding, strict=True)]
    y = lax.conv_general_dilated(x, wg.astype(x.dtype), (1,) * nd, padding,
                                 lhs_dilation=tuple(strides), rhs_dilation=tuple(dilations),
                                 dimension_numbers=_dimension_numbers(nd),
                                 feature_group_count=group)
    return y if b is None else y + b.reshape(1, -1, *[1] * nd)


def pool(x: jax.Array, kind: str, kernel: list[int], strides: list[int],
         dilations: list[int], begin: list[int], end: list[int]) -> jax.Array:
    window = (1, 1, *kernel)
    steps = (1, 1, *strides)
    dilation = (1, 1, *dilations)
    padding = ((0, 0), (0, 0), *zip(begin, end, strict=True))
    if kind == "max":
        init = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
        return lax.reduce_window(x, jnp.asarray(init, x.dtype), lax.max, window, steps,
                                 padding, window_dilation=dilation)
    return lax.reduce_window(x, jnp.asarray(0, x.dtype), lax.add, window, steps, padding,
                             window_dilation=dilation)


def max_pool_with_indices(x: jax.Array, kernel: list[int], strides: list[int],
                          dilations: list[int], begin: list[int], end: list[int]
                          ) -> tuple[jax.Array, jax.Array]:
    """Windows gathered by host-computed positions, then max and argmax over each."""
    nd = len(kernel)
    spatial = x.shape[2:]
    padded = [s + bg + en for s, bg, en in zip(spatial, begin, end, strict=True)]
    out = [(p - ((k - 1) * d + 1)) // st + 1 for p, k, d, st in
           zip(padded, kernel, dilations, strides, strict=True)]
    grids = np.meshgrid(*[np.arange(o) for o in out], *[np.arange(k) for k in kernel],
                        indexing="ij")
    coords = [grids[a] * strides[a] + grids[nd + a] * dilations[a] for a in range(nd)]
    inside = np.logical_and.reduce([(c >= b) & (c < s + b) for c, s, b in
                                    zip(coords, spatial, begin, strict=True)])
    source = np.ravel_multi_index(tuple(np.clip(c - b, 0, s - 1) for c, s, b in
                                        zip(coords, spatial, begin, strict=True)), spatial)
    n, c = x.shape[:2]
    taps = jnp.take(x.reshape(n, c, -1), jnp.asarray(source.reshape(-1)), axis=2).reshape(
        n, c, *out, math.prod(kernel))
    taps = jnp.where(jnp.asarray(inside.reshape(*out, -1)), taps, -jnp.inf)
    best = jnp.argmax(taps, axis=-1)
    position = jnp.asarray(np.ravel_multi_index(tuple(coords), padded).reshape(*out, -1))
    chosen = jnp.take_along_axis(jnp.broadcast_to(position, taps.shape), best[..., None],
                                 axis=-1)[..., 0]
    return jnp.max(taps, axis=-1).astype(x.dtype), chosen.astype(jnp.int64)


def _grid(indices: jax.Array, axis: int) -> tuple[Any, ...]:
    grid = list(jnp.indices(indices.shape, sparse=True))
    grid[axis] = indices
    return tuple(grid)


_AT = {"none": "set", "add": "add", "mul": "multiply", "max": "max", "min": "min"}


def scatter_elements(data: jax.Array, indices: jax.Array, updates: jax.Array, axis: int,
                     reduction: str) -> jax.Array:
    at = data.at[_grid(indices, axis)]
    result: jax.Array = getattr(at, _AT[reduction])(updates)
    return result


def scatter_nd(data: jax.Array, indices: jax.Array, updates: jax.Array,
               reduction: str) -> jax.Array:
    at = data.at[tuple(jnp.moveaxis(indices, -1, 0))]
    result: jax.Array = getattr(at, _AT[reduction])(updates)
    return result


def unique(x: jax.Array, axis: int | None, sort: bool) -> tuple[jax.Array, ...]:
    from modelport.ops import host_kernels as numpy_kernels

    return tuple(jnp.asarray(v) for v in numpy_kernels.unique(np.asarray(x), axis, sort))


def bit_cast(x: jax.Array, dtype: Any) -> jax.Array:
    if x.dtype == jnp.bool_:  # lax refuses booleans: they are bytes of 0 or 1
        x = x.astype(jnp.uint8)
    return lax.bitcast_convert_type(x, dtype)


def gather_in_range(x: jax.Array, indices: jax.Array, axis: int) -> jax.Array:
    return jnp.take_along_axis(x, indices, axis=axis, mode="promise_in_bounds",
                               wrap_negative_indices=False)
