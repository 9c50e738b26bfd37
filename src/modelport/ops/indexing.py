"""Gather and scatter operators, NonZero, Unique."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.ops.context import host_value
from modelport.ops.registry import op
from modelport.ops.shape import normalize_axis, shape_of


def _wrap(ctx: Any, indices: Any, size: int) -> Any:
    """Negative indices count from the end."""
    xp = ctx.xp
    indices = xp.astype(indices, xp.int64)
    return xp.where(indices < 0, indices + size, indices)


@op("Gather", 1, 11, 13)  # 11 only spelled out negative indices
def gather(ctx: Any, data: Any, indices: Any, *, axis: int = 0) -> Any:
    xp = ctx.xp
    axis = normalize_axis(axis, len(data.shape))
    dims = shape_of(data)
    flat = xp.reshape(_wrap(ctx, indices, dims[axis]), (-1,))
    taken = xp.take(data, flat, axis=axis)
    return xp.reshape(taken, (*dims[:axis], *shape_of(indices), *dims[axis + 1:]))


@op("GatherElements", 11, 13)
def gather_elements(ctx: Any, data: Any, indices: Any, *, axis: int = 0) -> Any:
    axis = normalize_axis(axis, len(data.shape))
    return ctx.xp.take_along_axis(data, _wrap(ctx, indices, shape_of(data)[axis]), axis=axis)


@op("GatherND", 11, 12, 13)
def gather_nd(ctx: Any, data: Any, indices: Any, *, batch_dims: int = 0) -> Any:
    xp = ctx.xp
    dims, index_dims = shape_of(data), shape_of(indices)
    depth = index_dims[-1]
    n_batch = int(np.prod(index_dims[:batch_dims]))
    indexed = dims[batch_dims:batch_dims + depth]
    rest = dims[batch_dims + depth:]
    # Flatten the indexed axes so one take_along_axis per batch row does the gather (no
    # advanced indexing, which not every framework's tensors support).
    flat = xp.reshape(data, (n_batch, int(np.prod(indexed)), *rest))
    indices = xp.reshape(xp.astype(indices, xp.int64), (n_batch, -1, depth))
    linear = 0
    for i, size in enumerate(indexed):
        linear = linear + _wrap(ctx, indices[:, :, i], size) * int(np.prod(indexed[i + 1:]))
    count = shape_of(indices)[1]
    linear = xp.broadcast_to(xp.reshape(linear, (n_batch, count, *[1] * len(rest))),
                             (n_batch, count, *rest))
    gathered = xp.take_along_axis(flat, linear, axis=1)
    return xp.reshape(gathered, (*index_dims[:-1], *rest))


@op("ScatterElements", 11, 13, 16, 18)
def scatter_elements(ctx: Any, data: Any, indices: Any, updates: Any, *, axis: int = 0,
                     reduction: str = "none") -> Any:
    axis = normalize_axis(axis, len(data.shape))
    return ctx.k.scatter_elements(data, _wrap(ctx, indices, shape_of(data)[axis]), updates,
                                  axis, reduction)


@op("Scatter", 9, 11)
def scatter(ctx: Any, data: Any, indices: Any, updates: Any, *, axis: int = 0) -> Any:
    return scatter_elements(ctx, data, indices, updates, axis=axis)


@op("ScatterND", 11, 13, 16, 18)
def scatter_nd(ctx: Any, data: Any, indices: Any, updates: Any, *,
               reduction: str = "none") -> Any:
    return ctx.k.scatter_nd(data, ctx.xp.astype(indices, ctx.xp.int64), updates, reduction)


@op("NonZero", 9, 13)
def non_zero(ctx: Any, x: Any) -> Any:
    xp = ctx.xp
    found = xp.nonzero(xp.reshape(x, (1,)) if len(x.shape) == 0 else x)
    return xp.astype(xp.stack(found), xp.int64)


@op("Unique", 11, 28)
def unique(ctx: Any, x: Any, *, axis: int | None = None, sorted: int = 1) -> Any:
    return ctx.k.unique(x, axis, bool(sorted))


@op("TensorScatter", 24)
def tensor_scatter(ctx: Any, past: Any, update: Any, write_indices: Any = None, *,
                   axis: int = -2, mode: str = "linear") -> Any:
    """Write ``update`` into each batch row of ``past`` along ``axis`` at ``write_indices``."""
    xp = ctx.xp
    dims = shape_of(past)
    axis = normalize_axis(axis, len(dims))
    batch, length, steps = dims[0], dims[axis], shape_of(update)[axis]
    starts = (np.zeros(batch, np.int64) if write_indices is None
              else host_value(ctx, write_indices))
    positions = np.arange(length)
    rows = []
    for b in range(batch):
        offsets = positions - int(starts[b])
        if mode == "circular":
            offsets %= length
        inside = (offsets >= 0) & (offsets < steps)
        index = np.where(inside, offsets, 0)
        take = xp.take(update[b], xp.asarray(index), axis=axis - 1)
        mask = xp.reshape(xp.asarray(inside), tuple(-1 if i == axis - 1 else 1
                                                    for i in range(len(dims) - 1)))
        rows.append(xp.where(mask, take, past[b]))
    return xp.stack(rows)
