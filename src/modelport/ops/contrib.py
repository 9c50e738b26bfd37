"""Microsoft contrib operators (``com.microsoft``) that onnxruntime's tools write into files:
the transformers optimizer's fusions and the quantizer's QOperator companions, so far. The
semantics are onnxruntime's (docs/ContribOperators.md in its repository), each written with
the shared operators it fuses; the attribute defaults are those of onnxruntime's own schemas, which
``tests/test_contrib.py`` compares with these declarations.

Every contrib operator is version 1 of its domain.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from modelport.ops.elementwise import gelu, leaky_relu, sigmoid
from modelport.ops.linalg import mat_mul
from modelport.ops.nn import global_average_pool, layer_norm
from modelport.ops.quant import dequantized, requantized
from modelport.ops.registry import op

MS = "com.microsoft"


@op("Gelu", 1, domain=MS)
def ms_gelu(ctx: Any, x: Any) -> Any:
    return gelu(ctx, x, approximate="none")


@op("BiasGelu", 1, domain=MS)
def bias_gelu(ctx: Any, a: Any, bias: Any) -> Any:
    return gelu(ctx, a + bias, approximate="none")


@op("FastGelu", 1, domain=MS)
def fast_gelu(ctx: Any, x: Any, bias: Any = None) -> Any:
    """The tanh approximation of Gelu, of ``x + bias``."""
    return gelu(ctx, x if bias is None else x + bias, approximate="tanh")


@op("QuickGelu", 1, domain=MS)
def quick_gelu(ctx: Any, x: Any, *, alpha: float = 1.702) -> Any:
    return x * sigmoid(ctx, alpha * x)


@op("FusedMatMul", 1, domain=MS)
def fused_mat_mul(ctx: Any, a: Any, b: Any, *, alpha: float = 1.0, transA: int = 0,
                  transB: int = 0, transBatchA: int = 0, transBatchB: int = 0) -> Any:
    """alpha * MatMul(A', B'): ``trans*`` swaps the last two axes, ``transBatch*`` moves the
    first axis to the second-last place (a batch of rows becomes rows of a batch)."""
    return alpha * mat_mul(ctx, _transposed(ctx, a, transA, transBatchA),
                           _transposed(ctx, b, transB, transBatchB))


def _transposed(ctx: Any, x: Any, trans: int, trans_batch: int) -> Any:
    rank = len(x.shape)
    if rank < 2 or not (trans or trans_batch):
        return x
    axes = list(range(rank))
    if trans_batch:  # (B, ..., M, K) -> (..., M, B, K): the batch axis becomes the rows' neighbour
        axes = [*axes[1:-1], 0, rank - 1]
    if trans:
        axes[-2], axes[-1] = axes[-1], axes[-2]
    return ctx.xp.permute_dims(x, tuple(axes))


@op("SkipLayerNormalization", 1, domain=MS)
def skip_layer_normalization(ctx: Any, x: Any, skip: Any, gamma: Any, beta: Any = None,
                             bias: Any = None, *, epsilon: float = 1e-12) -> Any:
    """LayerNormalization over the last axis of ``x + skip (+ bias)``; the outputs after the
    first are the mean, the inverse standard deviation and the sum itself."""
    total = x + skip if bias is None else x + skip + bias
    if ctx.n_outputs == 1:
        return layer_norm(ctx, total, gamma, beta, -1, epsilon)
    y, mean, inv_std = layer_norm(ctx, total, gamma, beta, -1, epsilon, statistics=True)
    return (y, mean, inv_std, total)[:ctx.n_outputs]


# --- the quantizer's QOperator format: each is Dequantize -> the float operator -> Quantize ---


def _qlinear_binary(name: str, combine: Callable[[Any, Any], Any]) -> None:
    def qlinear(ctx: Any, a: Any, a_scale: Any, a_zero_point: Any, b: Any, b_scale: Any,
                b_zero_point: Any, c_scale: Any, c_zero_point: Any = None) -> Any:
        real = combine(dequantized(ctx, a, a_scale, a_zero_point),
                       dequantized(ctx, b, b_scale, b_zero_point))
        return requantized(ctx, real, c_scale, c_zero_point)

    qlinear.__name__ = f"qlinear_{combine.__name__}"
    op(name, 1, domain=MS)(qlinear)


_qlinear_binary("QLinearAdd", operator.add)
_qlinear_binary("QLinearMul", operator.mul)


@op("QLinearSigmoid", 1, domain=MS)
def qlinear_sigmoid(ctx: Any, x: Any, x_scale: Any, x_zero_point: Any, y_scale: Any,
                    y_zero_point: Any = None) -> Any:
    return requantized(ctx, sigmoid(ctx, dequantized(ctx, x, x_scale, x_zero_point)),
                        y_scale, y_zero_point)


@op("QLinearLeakyRelu", 1, domain=MS)
def qlinear_leaky_relu(ctx: Any, x: Any, x_scale: Any, x_zero_point: Any, y_scale: Any,
                       y_zero_point: Any = None, *, alpha: float = 0.01) -> Any:
    real = dequantized(ctx, x, x_scale, x_zero_point)
    return requantized(ctx, leaky_relu(ctx, real, alpha=alpha), y_scale, y_zero_point)


@op("QLinearGlobalAveragePool", 1, domain=MS)
def qlinear_global_average_pool(ctx: Any, x: Any, x_scale: Any, x_zero_point: Any,
                                y_scale: Any, y_zero_point: Any, *,
                                channels_last: int = 0) -> Any:
    xp = ctx.xp
    real = dequantized(ctx, x, x_scale, x_zero_point)
    rank = len(real.shape)
    if channels_last:  # (N, ..., C) -> (N, C, ...) and back
        real = xp.permute_dims(real, (0, rank - 1, *range(1, rank - 1)))
    pooled = global_average_pool(ctx, real)
    if channels_last:
        pooled = xp.permute_dims(pooled, (0, *range(2, rank), 1))
    return requantized(ctx, pooled, y_scale, y_zero_point)
