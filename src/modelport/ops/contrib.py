"""Microsoft contrib operators (``com.microsoft``) that onnxruntime's tools write into files:
the transformers optimizer's fusions, so far. The semantics are onnxruntime's
(docs/ContribOperators.md in its repository), each written with the shared operators it
fuses; the attribute defaults are those of onnxruntime's own schemas, which
``tests/test_contrib.py`` compares with these declarations.

Every contrib operator is version 1 of its domain.
"""

from __future__ import annotations

from typing import Any

from modelport.ops.elementwise import gelu, sigmoid
from modelport.ops.linalg import mat_mul
from modelport.ops.nn import layer_norm
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
