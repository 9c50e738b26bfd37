"""PyTorch kernels: what the array API lacks, on ``torch.nn.functional`` where it can."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def erf(x: torch.Tensor) -> torch.Tensor:
    return torch.special.erf(x)


# --- native overrides of shared operators: one fused kernel instead of several passes ------


def relu(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def gelu(x: torch.Tensor, approximate: str) -> torch.Tensor:
    y = F.gelu(x, approximate="tanh" if approximate == "tanh" else "none")
    return torch.where(torch.isposinf(x), x, y)  # torch gives NaN at +inf, the spec x


def softmax(x: torch.Tensor, axis: int) -> torch.Tensor:
    return torch.softmax(x, axis)


def log_softmax(x: torch.Tensor, axis: int) -> torch.Tensor:
    return torch.log_softmax(x, axis)


def layer_norm(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, axis: int,
               epsilon: float) -> torch.Tensor:
    shape = tuple(x.shape[axis:])
    return F.layer_norm(x, shape, scale.expand(shape), None if bias is None
                        else bias.expand(shape), epsilon)


def batch_norm(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor,
               var: torch.Tensor, epsilon: float) -> torch.Tensor:
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, epsilon)


def pad(x: torch.Tensor, widths: list[list[int]], mode: str, value: Any) -> torch.Tensor:
    if mode == "constant":
        flat = [w for lo_hi in reversed(widths) for w in lo_hi]
        if x.dtype == torch.bool:
            return F.pad(x.to(torch.uint8), flat, value=int(bool(value))).to(torch.bool)
        return F.pad(x, flat, value=value)
    for axis, (lo, hi) in enumerate(widths):  # any rank: gather with host-computed indices
        if lo or hi:
            size = x.shape[axis]
            positions = np.arange(-lo, size + hi)
            if mode == "edge":
                index = np.clip(positions, 0, size - 1)
            elif mode == "wrap":
                index = positions % size
            else:  # reflect, without repeating the edge
                period = 2 * (size - 1) if size > 1 else 1
                index = np.abs(positions) % period
                index = np.where(index >= size, period - index, index)
            x = torch.index_select(x, axis, torch.as_tensor(index, device=x.device))
    return x


def cast(x: torch.Tensor, to: int, saturate: int) -> torch.Tensor:
    from modelport.backends.torch import torch_dtype

    return cast_to(x, torch_dtype(to), saturate)


def cast_like(x: torch.Tensor, target: torch.Tensor, saturate: int) -> torch.Tensor:
    return cast_to(x, target.dtype, saturate)


def cast_to(x: torch.Tensor, dtype: torch.dtype, saturate: int) -> torch.Tensor:
    return x if x.dtype == dtype else x.to(dtype)  # ranges were settled by the shared Cast


def top_k(x: torch.Tensor, k: int, axis: int, largest: bool) -> tuple[torch.Tensor,
                                                                    torch.Tensor]:
    values, indices = torch.sort(x, dim=axis, descending=largest, stable=True)
    return values.narrow(axis, 0, k), indices.narrow(axis, 0, k)


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _pad_spatial(x: torch.Tensor, begin: list[int], end: list[int], value: float = 0.0
                 ) -> torch.Tensor:
    if not any(begin) and not any(end):
        return x
    flat = [w for b, e in zip(reversed(begin), reversed(end), strict=True) for w in (b, e)]
    return F.pad(x, flat, value=value)


def conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, strides: list[int],
         begin: list[int], end: list[int], dilations: list[int], group: int) -> torch.Tensor:
    nd = x.dim() - 2
    if begin == end:  # symmetric padding: let the kernel do it
        return _CONV[nd](x, w, b, strides, begin, dilations, group)
    return _CONV[nd](_pad_spatial(x, begin, end), w, b, strides, 0, dilations, group)


def conv_transpose(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                   strides: list[int], begin: list[int], end: list[int], dilations: list[int],
                   group: int, output_padding: list[int]) -> torch.Tensor:
    nd = x.dim() - 2
    y = _CONV_T[nd](x, w, None, strides, 0, 0, group, dilations)
    y = _pad_spatial(y, [0] * nd, output_padding)
    index = (slice(None), slice(None), *(slice(bg, y.shape[2 + i] - e) for i, (bg, e) in
                                         enumerate(zip(begin, end, strict=True))))
    y = y[index]
    return y if b is None else y + b.reshape(1, -1, *[1] * nd)


def _windows(x: torch.Tensor, kernel: list[int], strides: list[int],
             dilations: list[int]) -> torch.Tensor:
    """(N, C, *out, *kernel) windows, by unfolding one spatial axis at a time."""
    nd = len(kernel)
    for i in range(nd):
        eff = (kernel[i] - 1) * dilations[i] + 1
        x = x.unfold(2 + i, eff, strides[i])[..., ::dilations[i]]
    return x


def pool(x: torch.Tensor, kind: str, kernel: list[int], strides: list[int],
         dilations: list[int], begin: list[int], end: list[int]) -> torch.Tensor:
    nd = len(kernel)
    if kind == "max":
        if (nd <= 3 and x.is_floating_point() and begin == end
                and all(b <= k // 2 for b, k in zip(begin, kernel, strict=True))):
            return _MAX_POOL[nd](x, kernel, strides, begin, dilations)  # pads with -inf
        fill = -math.inf if x.is_floating_point() else torch.iinfo(x.dtype).min
        padded = _pad_spatial(x, begin, end, fill)
        if nd <= 3 and x.is_floating_point():
            return _MAX_POOL[nd](padded, kernel, strides, 0, dilations)
        return _windows(padded, kernel, strides, dilations).amax(dim=tuple(range(-nd, 0)))
    padded = _pad_spatial(x, begin, end)
    if nd <= 3 and all(d == 1 for d in dilations) and x.is_floating_point():
        return _AVG_POOL[nd](padded, kernel, strides) * math.prod(kernel)
    return _windows(padded, kernel, strides, dilations).sum(dim=tuple(range(-nd, 0)))


def max_pool_with_indices(x: torch.Tensor, kernel: list[int], strides: list[int],
                          dilations: list[int], begin: list[int], end: list[int]
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    padded = _pad_spatial(x, begin, end, -math.inf)
    return _MAX_POOL[len(kernel)](padded, kernel, strides, 0, dilations, return_indices=True)


_REDUCE = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def scatter_elements(data: torch.Tensor, indices: torch.Tensor, updates: torch.Tensor,
                     axis: int, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return data.scatter(axis, indices, updates)
    return data.scatter_reduce(axis, indices, updates, _REDUCE[reduction], include_self=True)


def scatter_nd(data: torch.Tensor, indices: torch.Tensor, updates: torch.Tensor,
               reduction: str) -> torch.Tensor:
    depth = indices.shape[-1]
    lead = data.shape[:depth]
    strides = [math.prod(lead[i + 1:]) for i in range(depth)]
    linear = (indices * torch.as_tensor(strides, device=indices.device)).sum(-1).reshape(-1)
    flat = data.reshape(math.prod(lead), *data.shape[depth:]).clone()
    rows = updates.reshape(-1, *data.shape[depth:])
    if reduction == "none":
        flat[linear] = rows
    else:
        expanded = linear.reshape(-1, *[1] * (rows.dim() - 1)).expand_as(rows)
        flat = flat.scatter_reduce(0, expanded, rows, _REDUCE[reduction], include_self=True)
    return flat.reshape(data.shape)


def unique(x: torch.Tensor, axis: int | None, sort: bool) -> tuple[torch.Tensor, ...]:
    from modelport.backends.torch import from_numpy, to_numpy
    from modelport.ops import host_kernels as numpy_kernels

    return tuple(from_numpy(v, x.device) for v in
                 numpy_kernels.unique(to_numpy(x), axis, sort))


def bit_cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return x.view(dtype)


def gather_in_range(x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
    if x.ndim == 1:  # index_select takes int32 positions too; gather only int64
        return torch.index_select(x, 0, indices)
    return torch.gather(x, axis, indices.long())
