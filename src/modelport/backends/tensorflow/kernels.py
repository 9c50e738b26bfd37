"""TensorFlow kernels. TensorFlow's CPU convolutions and pools are channels-last only, so they
transpose in and out; inside a ``tf.function`` Grappler cancels the adjacent pairs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from modelport.ops.context import HostFallback


def erf(x: tf.Tensor) -> tf.Tensor:
    return tf.math.erf(x)


def gelu(x: tf.Tensor, approximate: str) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=approximate == "tanh")


def relu(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.relu(x)


def sigmoid(x: tf.Tensor) -> tf.Tensor:
    return tf.math.sigmoid(x)


def softmax(x: tf.Tensor, axis: int) -> tf.Tensor:
    # tf.nn.softmax drops a NaN from its row's maximum; the spec's row (the maximum subtracted,
    # exponentiated, summed) is NaN throughout, and so is a row holding +inf (inf - inf)
    poisoned = tf.reduce_any(tf.math.is_nan(x) | (x == math.inf), axis=axis, keepdims=True)
    return tf.where(poisoned, tf.constant(float("nan"), x.dtype), tf.nn.softmax(x, axis=axis))


def cond(pred: tf.Tensor, then_fn: Any, else_fn: Any) -> tuple[Any, ...]:
    """If: Python decides an eager condition; in a graph it becomes ``tf.cond``, whose
    branches must give tensors of one structure. Where they do not (sequences, optionals),
    tracing stops and the session runs eagerly."""
    from modelport.errors import BackendError

    if tf.executing_eagerly():
        return tuple((then_fn if bool(tf.reshape(pred, [-1])[0]) else else_fn)())

    def branch(fn: Any) -> Any:
        def run() -> tuple[tf.Tensor, ...]:
            outputs = fn()
            if not all(tf.is_tensor(v) or isinstance(v, np.ndarray) for v in outputs):
                raise BackendError("an If branch gives sequences or optionals")
            return tuple(tf.convert_to_tensor(v) for v in outputs)

        return run

    return tuple(tf.cond(tf.cast(tf.reshape(pred, [-1])[0], tf.bool), branch(then_fn),
                         branch(else_fn)))


def pad(x: tf.Tensor, widths: list[list[int]], mode: str, value: Any) -> tf.Tensor:
    if mode == "constant":
        return tf.pad(x, widths, constant_values=tf.cast(value, x.dtype))
    if mode == "reflect":
        return tf.pad(x, widths, mode="REFLECT")
    for axis, (lo, hi) in enumerate(widths):  # edge and wrap: gather host-computed indices
        if lo or hi:
            size = x.shape[axis]
            positions = np.arange(-lo, size + hi)
            index = np.clip(positions, 0, size - 1) if mode == "edge" else positions % size
            x = tf.gather(x, index, axis=axis)
    return x


def cast(x: tf.Tensor, to: int, saturate: int) -> tf.Tensor:
    from modelport.backends.tensorflow import tf_dtype

    return tf.cast(x, tf_dtype(to))


def cast_like(x: tf.Tensor, target: tf.Tensor, saturate: int) -> tf.Tensor:
    return tf.cast(x, target.dtype)


def top_k(x: tf.Tensor, k: int, axis: int, largest: bool) -> tuple[tf.Tensor, tf.Tensor]:
    rank = len(x.shape)
    moved = tf.experimental.numpy.moveaxis(x, axis, -1)
    keys = moved if largest else -tf.cast(moved, tf.float64)
    _, indices = tf.math.top_k(keys, k=k, sorted=True)  # ties: the lower index first
    values = tf.gather(moved, indices, batch_dims=rank - 1)
    back = tf.experimental.numpy.moveaxis
    return back(values, -1, axis), back(tf.cast(indices, tf.int64), -1, axis)


def _channels_last(x: tf.Tensor) -> tf.Tensor:
    nd = len(x.shape) - 2
    return tf.transpose(x, [0, *range(2, 2 + nd), 1])


def _channels_first(x: tf.Tensor) -> tf.Tensor:
    nd = len(x.shape) - 2
    return tf.transpose(x, [0, nd + 1, *range(1, nd + 1)])


def _pad_spatial(x: tf.Tensor, begin: list[int], end: list[int], value: Any = 0) -> tf.Tensor:
    if not any(begin) and not any(end):
        return x
    return tf.pad(x, [[0, 0], [0, 0], *zip(begin, end, strict=True)],
                  constant_values=tf.cast(value, x.dtype))


def conv(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | None, strides: list[int],
         begin: list[int], end: list[int], dilations: list[int], group: int) -> tf.Tensor:
    nd = len(x.shape) - 2
    if any(s > 1 for s in strides) and any(d > 1 for d in dilations):
        # TensorFlow's convolution refuses strides with dilations: every output position of
        # stride 1, then every stride-th of them
        dense = conv(x, w, b, [1] * nd, begin, end, dilations, group)
        return dense[(slice(None), slice(None), *(slice(None, None, s) for s in strides))]
    filters = tf.transpose(w, [*range(2, 2 + nd), 1, 0])  # spatial..., in/group, out
    padded = _channels_last(_pad_spatial(x, begin, end))
    if group == 1 or nd != 2:
        outs = [tf.nn.convolution(padded, filters, strides, "VALID", dilations=dilations)] \
            if group == 1 else [
                tf.nn.convolution(xg, fg, strides, "VALID", dilations=dilations)
                for xg, fg in zip(tf.split(padded, group, axis=-1),
                                  tf.split(filters, group, axis=-1), strict=True)]
        y = tf.concat(outs, axis=-1)
    elif group == x.shape[1] and w.shape[0] % group == 0:  # depthwise
        multiplier = w.shape[0] // group
        depthwise = tf.reshape(tf.transpose(w, [2, 3, 1, 0]),
                               [*w.shape[2:], group, multiplier])
        y = tf.nn.depthwise_conv2d(padded, depthwise, [1, *strides, 1], "VALID",
                                   dilations=dilations)
    else:
        y = tf.concat([tf.nn.convolution(xg, fg, strides, "VALID", dilations=dilations)
                       for xg, fg in zip(tf.split(padded, group, axis=-1),
                                         tf.split(filters, group, axis=-1), strict=True)],
                      axis=-1)
    if b is not None:
        y = y + b
    return _channels_first(y)


def conv_transpose(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | None, strides: list[int],
                   begin: list[int], end: list[int], dilations: list[int], group: int,
                   output_padding: list[int]) -> tf.Tensor:
    nd = len(x.shape) - 2
    kernel = list(w.shape[2:])
    n, c_out_g = x.shape[0], w.shape[1]
    full = [(i - 1) * s + (k - 1) * d + 1 + p for i, s, k, d, p in
            zip(x.shape[2:], strides, kernel, dilations, output_padding, strict=True)]
    xs = tf.split(_channels_last(x), group, axis=-1)
    ws = tf.split(w, group, axis=0)
    outs = []
    for xg, wg in zip(xs, ws, strict=True):
        filters = _dilate(tf.transpose(wg, [*range(2, 2 + nd), 1, 0]), dilations)
        outs.append(tf.nn.conv_transpose(xg, filters, [n, *full, c_out_g], strides, "VALID"))
    y = _channels_first(tf.concat(outs, axis=-1))
    index = (slice(None), slice(None), *(slice(bg, f - e) for bg, e, f in
                                         zip(begin, end, full, strict=True)))
    y = y[index]
    return y if b is None else y + tf.reshape(b, [1, -1, *[1] * nd])


def _dilate(filters: tf.Tensor, dilations: list[int]) -> tf.Tensor:
    """A channels-last kernel with ``dilation - 1`` zeros between its taps.

    Some TensorFlow CPU builds refuse dilated transposed convolutions ("Current CPU
    implementations do not yet support dilation rates larger than 1"): whether it runs would
    depend on the machine, so the kernel is dilated here once.
    """
    for axis, d in enumerate(dilations):
        if d == 1:
            continue
        shape = filters.shape.as_list()
        gaps = tf.zeros([*shape[:axis + 1], d - 1, *shape[axis + 1:]], filters.dtype)
        spread = tf.concat([tf.expand_dims(filters, axis + 1), gaps], axis=axis + 1)
        spread = tf.reshape(spread, [*shape[:axis], shape[axis] * d, *shape[axis + 1:]])
        filters = tf.slice(spread, [0] * len(shape),
                           [*shape[:axis], (shape[axis] - 1) * d + 1, *shape[axis + 1:]])
    return filters


def pool(x: tf.Tensor, kind: str, kernel: list[int], strides: list[int],
         dilations: list[int], begin: list[int], end: list[int]) -> tf.Tensor:
    if (any(d > 1 for d in dilations) and any(s > 1 for s in strides)) or any(
            s > k for s, k in zip(strides, kernel, strict=True)):
        raise HostFallback("tf.nn.pool refuses strides with dilations, and strides wider "
                           "than the window")
    if kind == "max":
        fill = -math.inf if x.dtype.is_floating else x.dtype.min
        padded = _channels_last(_pad_spatial(x, begin, end, fill))
        return _channels_first(tf.nn.pool(padded, kernel, "MAX", strides=strides,
                                          padding="VALID", dilations=dilations))
    padded = _channels_last(_pad_spatial(x, begin, end))
    return _channels_first(tf.nn.pool(padded, kernel, "AVG", strides=strides, padding="VALID",
                                      dilations=dilations) * math.prod(kernel))


def max_pool_with_indices(x: tf.Tensor, kernel: list[int], strides: list[int],
                          dilations: list[int], begin: list[int], end: list[int]
                          ) -> tuple[tf.Tensor, tf.Tensor]:
    raise HostFallback("MaxPool's indices are computed on numpy")


def _full_index(indices: tf.Tensor, axis: int) -> tf.Tensor:
    """(..., rank) coordinates for scatter_elements: the index grid with ``axis`` replaced."""
    shape = tf.shape(indices, out_type=tf.int64)
    grids = tf.meshgrid(*[tf.range(shape[i]) for i in range(len(indices.shape))],
                        indexing="ij")
    grids[axis] = tf.cast(indices, tf.int64)
    return tf.stack(grids, axis=-1)


_SCATTER = {"none": tf.tensor_scatter_nd_update, "add": tf.tensor_scatter_nd_add,
            "max": tf.tensor_scatter_nd_max, "min": tf.tensor_scatter_nd_min}


def scatter_elements(data: tf.Tensor, indices: tf.Tensor, updates: tf.Tensor, axis: int,
                     reduction: str) -> tf.Tensor:
    return scatter_nd(data, _full_index(indices, axis), updates, reduction)


def scatter_nd(data: tf.Tensor, indices: tf.Tensor, updates: tf.Tensor,
               reduction: str) -> tf.Tensor:
    if reduction == "mul":
        raise HostFallback("TensorFlow has no multiplying scatter")
    return _SCATTER[reduction](data, tf.cast(indices, tf.int64), updates)


def unique(x: tf.Tensor, axis: int | None, sort: bool) -> Any:
    raise HostFallback("Unique runs on numpy")


def bit_cast(x: tf.Tensor, dtype: Any) -> tf.Tensor:
    return tf.bitcast(tf.cast(x, tf.uint8) if x.dtype == tf.bool else x, dtype)


def gather_in_range(x: tf.Tensor, indices: tf.Tensor, axis: int) -> tf.Tensor:
    # take_along_axis without broadcasting: the leading axes are batch axes of one gather
    return tf.gather(x, indices, axis=axis, batch_dims=axis)
