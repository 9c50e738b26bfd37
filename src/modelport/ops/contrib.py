"""Microsoft contrib operators (``com.microsoft``) that onnxruntime's tools write into files:
the transformers optimizer's fusions and the quantizer's QOperator companions, so far. The
semantics are onnxruntime's (docs/ContribOperators.md in its repository), each written with
the shared operators it fuses; the attribute defaults are those of onnxruntime's own schemas, which
``tests/test_contrib.py`` compares with these declarations.

Every contrib operator is version 1 of its domain.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from modelport.ops.elementwise import gelu, hard_sigmoid, leaky_relu, relu, sigmoid
from modelport.ops.linalg import gemm, mat_mul
from modelport.ops.nn import average_pool, conv, global_average_pool, layer_norm
from modelport.ops.quant import (
    dequantized,
    dynamic_quantize_linear,
    requantized,
    xp_float32,
)
from modelport.ops.reduction import softmax_along
from modelport.ops.registry import op
from modelport.ops.shape import shape_of

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


def _channels_first(ctx: Any, x: Any, channels_last: int) -> Any:
    """(N, ..., C) as (N, C, ...) when ``channels_last``."""
    rank = len(shape_of(x))
    return ctx.xp.permute_dims(x, (0, rank - 1, *range(1, rank - 1))) if channels_last else x


def _channels_back(ctx: Any, x: Any, channels_last: int) -> Any:
    rank = len(shape_of(x))
    return ctx.xp.permute_dims(x, (0, *range(2, rank), 1)) if channels_last else x


@op("QLinearGlobalAveragePool", 1, domain=MS)
def qlinear_global_average_pool(ctx: Any, x: Any, x_scale: Any, x_zero_point: Any,
                                y_scale: Any, y_zero_point: Any, *,
                                channels_last: int = 0) -> Any:
    real = _channels_first(ctx, dequantized(ctx, x, x_scale, x_zero_point), channels_last)
    pooled = _channels_back(ctx, global_average_pool(ctx, real), channels_last)
    return requantized(ctx, pooled, y_scale, y_zero_point)


@op("QLinearAveragePool", 1, domain=MS)
def qlinear_average_pool(ctx: Any, x: Any, x_scale: Any, x_zero_point: Any, y_scale: Any,
                         y_zero_point: Any = None, *, auto_pad: str = "NOTSET",
                         ceil_mode: int = 0, channels_last: int = 0,
                         count_include_pad: int = 0, kernel_shape: list[int] | None = None,
                         pads: list[int] | None = None,
                         strides: list[int] | None = None) -> Any:
    if kernel_shape is None:
        raise ValueError("QLinearAveragePool needs kernel_shape")
    real = _channels_first(ctx, dequantized(ctx, x, x_scale, x_zero_point), channels_last)
    pooled = average_pool(ctx, real, auto_pad=auto_pad, ceil_mode=ceil_mode,
                          count_include_pad=count_include_pad, kernel_shape=kernel_shape,
                          pads=pads, strides=strides)
    return requantized(ctx, _channels_back(ctx, pooled, channels_last), y_scale, y_zero_point)


@op("QLinearConcat", 1, domain=MS)
def qlinear_concat(ctx: Any, y_scale: Any, y_zero_point: Any, *inputs: Any,
                   axis: int | None = None) -> Any:
    """Concat of (tensor, scale, zero point) triples, requantized to the output's scale."""
    if axis is None:
        raise ValueError("QLinearConcat needs axis")
    reals = [dequantized(ctx, inputs[i], inputs[i + 1], inputs[i + 2])
             for i in range(0, len(inputs), 3)]
    rank = len(shape_of(reals[0]))
    return requantized(ctx, ctx.xp.concat(reals, axis=axis % rank), y_scale, y_zero_point)


# --- the transformers optimizer's BERT fusions ---------------------------------------------------


@op("EmbedLayerNormalization", 1, domain=MS)
def embed_layer_normalization(ctx: Any, input_ids: Any, segment_ids: Any, word_embedding: Any,
                              position_embedding: Any, segment_embedding: Any = None,
                              gamma: Any = None, beta: Any = None, mask: Any = None,
                              position_ids: Any = None, *, epsilon: float = 1e-12,
                              mask_index_type: int | None = None) -> Any:
    """LayerNormalization of word + position (+ segment) embeddings; outputs: the result, each
    row's count of unmasked tokens (Attention's ``mask_index``), the sum before normalizing."""
    xp = ctx.xp
    batch, length = shape_of(input_ids)
    total = _embedded(ctx, word_embedding, input_ids)
    positions = (xp.broadcast_to(xp.arange(length, dtype=xp.int64)[None, :], (batch, length))
                 if position_ids is None else position_ids)
    total = total + _embedded(ctx, position_embedding, positions)
    if segment_embedding is not None and segment_ids is not None:
        total = total + _embedded(ctx, segment_embedding, segment_ids)
    y = layer_norm(ctx, total, gamma, beta, -1, epsilon)
    counts = (xp.zeros((batch,), dtype=xp.int32) if mask is None
              else xp.astype(xp.sum(xp.astype(mask, xp.int64), axis=1), xp.int32))
    return (y, counts, total)[:ctx.n_outputs]


def _embedded(ctx: Any, table: Any, ids: Any) -> Any:
    xp = ctx.xp
    rows = xp.take(table, xp.reshape(xp.astype(ids, xp.int64), (-1,)), axis=0)
    return xp.reshape(rows, (*shape_of(ids), shape_of(table)[-1]))


@op("Attention", 1, domain=MS)
def attention(ctx: Any, x: Any, weights: Any, bias: Any = None, mask_index: Any = None,
              past: Any = None, attention_bias: Any = None, past_sequence_length: Any = None,
              *, num_heads: int | None = None, qkv_hidden_sizes: list[int] | None = None,
              unidirectional: int = 0, mask_filter_value: float | None = None,
              scale: float | None = None, do_rotary: int | None = None,
              past_present_share_buffer: int | None = None,
              rotary_embedding_dim: int | None = None) -> Any:
    """Multi-head self-attention with the Q, K and V projections packed in ``weights``. A 1-D
    ``mask_index`` holds each row's length (keys past it are masked); a 2-D one is a 0/1 mask
    over the keys; masked scores get ``mask_filter_value`` added, as onnxruntime does."""
    if past is not None or do_rotary or num_heads is None:
        raise NotImplementedError("Attention with a past state, rotary embeddings or no "
                                  "num_heads")
    xp = ctx.xp
    q_size, k_size, v_size = qkv_hidden_sizes or [shape_of(weights)[1] // 3] * 3
    qkv = xp.matmul(x, weights) if bias is None else xp.matmul(x, weights) + bias
    q, k, v = (qkv[..., :q_size], qkv[..., q_size:q_size + k_size],
               qkv[..., q_size + k_size:q_size + k_size + v_size])
    return _attend(ctx, _heads(ctx, q, num_heads), _heads(ctx, k, num_heads),
                   _heads(ctx, v, num_heads), mask_index, attention_bias, unidirectional,
                   scale, mask_filter_value)


def _heads(ctx: Any, t: Any, num_heads: int) -> Any:
    """[B, S, H * d] as [B, H, S, d]."""
    batch, length, width = shape_of(t)
    return ctx.xp.permute_dims(ctx.xp.reshape(t, (batch, length, num_heads,
                                                  width // num_heads)), (0, 2, 1, 3))


def _attend(ctx: Any, q: Any, k: Any, v: Any, key_mask: Any, attention_bias: Any,
            causal: int, scale: float | None, fill: float | None) -> Any:
    """softmax(q kᵀ * scale + masks) v over heads [B, H, S, d], as [B, S, H * d_v]. A 1-D
    ``key_mask`` is each row's length, a 2-D one 0/1 per key; masked or future keys get
    ``fill`` (onnxruntime's -10000 by default) added, so a fully masked row stays finite."""
    xp = ctx.xp
    batch, _, length, size = shape_of(q)
    keys = shape_of(k)[2]
    scores = xp.matmul(q, xp.permute_dims(k, (0, 1, 3, 2))) * (scale or 1 / math.sqrt(size))
    fill = -10000.0 if fill is None else fill
    penalty = xp.asarray(fill, dtype=scores.dtype)
    zero = xp.asarray(0.0, dtype=scores.dtype)
    if key_mask is not None:
        if len(shape_of(key_mask)) == 1:  # each row's length
            kept = xp.arange(keys, dtype=xp.int64)[None, :] < \
                xp.astype(key_mask, xp.int64)[:batch, None]
        else:  # 0/1 over the keys
            kept = xp.astype(key_mask, xp.int64) != 0
        scores = scores + xp.where(kept, zero, penalty)[:, None, None, :]
    if causal:  # query i, the last of the keys' length - S + i, sees the keys up to itself
        allowed = np.tril(np.ones((length, keys), bool), k=keys - length)
        scores = xp.where(xp.asarray(allowed), scores, penalty)
    if attention_bias is not None:
        scores = scores + attention_bias
    return attended(ctx, scores, v)


def attended(ctx: Any, scores: Any, v: Any) -> Any:
    """The values weighted by the softmax of ``scores`` [B, H, S, T], heads merged back:
    [B, S, H * d_v]. The end of every attention operator."""
    xp = ctx.xp
    batch, heads, length, _ = shape_of(scores)
    out = xp.matmul(softmax_along(ctx, scores, 3), v)
    return xp.reshape(xp.permute_dims(out, (0, 2, 1, 3)),
                      (batch, length, heads * shape_of(v)[3]))


@op("MultiHeadAttention", 1, domain=MS)
def multi_head_attention(ctx: Any, query: Any, key: Any = None, value: Any = None,
                         bias: Any = None, key_padding_mask: Any = None,
                         attention_bias: Any = None, past_key: Any = None,
                         past_value: Any = None, past_sequence_length: Any = None,
                         cache_indirection: Any = None, *, num_heads: int | None = None,
                         unidirectional: int = 0, mask_filter_value: float | None = None,
                         scale: float | None = None) -> Any:
    """Attention of projected query, key and value: [B, S, D] each, or key and value already
    split into heads ([B, H, L, d], cross-attention), or packed ([B, S, H, 3, d] QKV in
    ``query``; [B, L, H, 2, d] KV in ``key``). ``bias`` adds to q, k and v; a past key and
    value are prepended, and the outputs after the first are the key and value with them."""
    if num_heads is None or cache_indirection is not None:
        raise NotImplementedError("MultiHeadAttention without num_heads or with beam search")
    xp = ctx.xp
    dims = shape_of(query)
    if len(dims) == 5:  # packed QKV: B, S, H, 3, d
        q, k, v = (xp.permute_dims(query[:, :, :, i], (0, 2, 1, 3)) for i in range(3))
    else:
        width = dims[2]
        if bias is not None:
            query = query + bias[:width]
        q = _heads(ctx, query, num_heads)
        if len(shape_of(key)) == 5:  # packed KV: B, L, H, 2, d
            k, v = (xp.permute_dims(key[:, :, :, i], (0, 2, 1, 3)) for i in range(2))
        elif len(shape_of(key)) == 4:  # already split into heads
            k, v = key, value
        else:
            k_width = shape_of(key)[2]
            if bias is not None:
                key, value = key + bias[width:width + k_width], value + bias[width + k_width:]
            k, v = _heads(ctx, key, num_heads), _heads(ctx, value, num_heads)
    if past_key is not None:
        k, v = xp.concat([past_key, k], axis=2), xp.concat([past_value, v], axis=2)
    out = _attend(ctx, q, k, v, key_padding_mask, attention_bias, unidirectional, scale,
                  mask_filter_value)
    return (out, k, v)[:ctx.n_outputs]


@op("QGemm", 1, domain=MS)
def qgemm(ctx: Any, a: Any, a_scale: Any, a_zero_point: Any, b: Any, b_scale: Any,
          b_zero_point: Any, c: Any = None, y_scale: Any = None, y_zero_point: Any = None, *,
          alpha: float = 1.0, transA: int = 0, transB: int = 0) -> Any:
    """Gemm of quantized A and B (B per tensor or per output column); C is int32 at scale
    ``alpha * a_scale * b_scale``; the result is quantized when ``y_scale`` is given, else
    float32."""
    xp = ctx.xp
    a_real = dequantized(ctx, a, a_scale, a_zero_point)
    b_real = dequantized(ctx, b, b_scale, b_zero_point, axis=0 if transB else 1)
    y = xp.matmul(xp.matrix_transpose(a_real) if transA else a_real,
                  xp.matrix_transpose(b_real) if transB else b_real) * alpha
    if c is not None:
        bias_scale = xp_float32(ctx, a_scale) * xp_float32(ctx, b_scale) * alpha
        y = y + xp.astype(c, xp.float32) * bias_scale
    return y if y_scale is None else requantized(ctx, y, y_scale, y_zero_point)


# --- quantize_dynamic on a fused BERT ------------------------------------------------------------


@op("QAttention", 1, domain=MS)
def qattention(ctx: Any, x: Any, weight: Any, bias: Any, input_scale: Any, weight_scale: Any,
               mask_index: Any = None, input_zero_point: Any = None,
               weight_zero_point: Any = None, past: Any = None, *,
               num_heads: int | None = None, unidirectional: int = 0,
               mask_filter_value: float | None = None, scale: float | None = None,
               do_rotary: int | None = None,
               past_present_share_buffer: int | None = None) -> Any:
    """Attention on a quantized input and quantized packed weights (per tensor or per output
    column), the bias and the result in float."""
    return attention(ctx, dequantized(ctx, x, input_scale, input_zero_point),
                     dequantized(ctx, weight, weight_scale, weight_zero_point), bias,
                     mask_index, past, num_heads=num_heads, unidirectional=unidirectional,
                     mask_filter_value=mask_filter_value, scale=scale, do_rotary=do_rotary)


@op("QEmbedLayerNormalization", 1, domain=MS)
def qembed_layer_normalization(ctx: Any, input_ids: Any, segment_ids: Any, word: Any,
                               position: Any, segment: Any, gamma: Any, beta: Any, mask: Any,
                               word_scale: Any, position_scale: Any, segment_scale: Any,
                               gamma_scale: Any, beta_scale: Any, word_zero: Any,
                               position_zero: Any, segment_zero: Any, gamma_zero: Any,
                               beta_zero: Any, *, epsilon: float = 1e-12) -> Any:
    """EmbedLayerNormalization whose tables, gamma and beta are quantized (per tensor)."""
    def real(q: Any, s: Any, z: Any) -> Any:
        return None if q is None else dequantized(ctx, q, s, z)

    return embed_layer_normalization(
        ctx, input_ids, segment_ids, real(word, word_scale, word_zero),
        real(position, position_scale, position_zero), real(segment, segment_scale, segment_zero),
        real(gamma, gamma_scale, gamma_zero), real(beta, beta_scale, beta_zero), mask,
        epsilon=epsilon)


# --- onnxruntime's own graph optimizer, as a saved optimized model holds it ---------------------


def _activated(ctx: Any, y: Any, activation: str | None, params: list[float]) -> Any:
    """The activation onnxruntime fuses into a Conv or Gemm, with its parameters in order."""
    if activation in (None, "", "Identity"):
        return y
    fused: dict[str, Callable[[], Any]] = {
        "Relu": lambda: relu(ctx, y),
        "Tanh": lambda: ctx.xp.tanh(y),
        "Sigmoid": lambda: sigmoid(ctx, y),
        "LeakyRelu": lambda: leaky_relu(ctx, y, alpha=params[0] if params else 0.01),
        "Clip": lambda: ctx.xp.clip(y, params[0], params[1]),
        "HardSigmoid": lambda: hard_sigmoid(ctx, y, alpha=params[0], beta=params[1]),
    }
    if activation not in fused:
        raise NotImplementedError(f"a fused {activation} activation")
    return fused[activation]()


@op("FusedConv", 1, domain=MS)
def fused_conv(ctx: Any, x: Any, w: Any, b: Any = None, z: Any = None, *,
               activation: str | None = None, activation_params: list[float] | None = None,
               auto_pad: str = "NOTSET", dilations: list[int] | None = None, group: int = 1,
               kernel_shape: list[int] | None = None, pads: list[int] | None = None,
               strides: list[int] | None = None) -> Any:
    """Conv, plus ``z`` where given (a fused residual Add), then the activation."""
    y = conv(ctx, x, w, b, auto_pad=auto_pad, dilations=dilations, group=group,
             kernel_shape=kernel_shape, pads=pads, strides=strides)
    return _activated(ctx, y if z is None else y + z, activation, activation_params or [])


@op("FusedGemm", 1, domain=MS)
def fused_gemm(ctx: Any, a: Any, b: Any, c: Any = None, *, alpha: float = 1.0,
               beta: float = 1.0, transA: int = 0, transB: int = 0,
               activation: str | None = None, activation_alpha: float | None = None,
               activation_beta: float | None = None,
               activation_gamma: float | None = None) -> Any:
    y = gemm(ctx, a, b, c, alpha=alpha, beta=beta, transA=transA, transB=transB)
    params = [p for p in (activation_alpha, activation_beta, activation_gamma) if p is not None]
    return _activated(ctx, y, activation, params)


@op("MatMulIntegerToFloat", 1, domain=MS)
def mat_mul_integer_to_float(ctx: Any, a: Any, b: Any, a_scale: Any, b_scale: Any,
                             a_zero_point: Any = None, b_zero_point: Any = None,
                             bias: Any = None) -> Any:
    """MatMulInteger, scaled to float32 (B per tensor or per column), plus ``bias``."""
    y = ctx.xp.matmul(dequantized(ctx, a, a_scale, a_zero_point),
                      dequantized(ctx, b, b_scale, b_zero_point, axis=-1))
    return y if bias is None else y + bias


@op("DynamicQuantizeMatMul", 1, domain=MS)
def dynamic_quantize_mat_mul(ctx: Any, a: Any, b: Any, b_scale: Any, b_zero_point: Any = None,
                             bias: Any = None) -> Any:
    """A quantized to uint8 as DynamicQuantizeLinear does, then MatMulIntegerToFloat."""
    a_quantized, a_scale, a_zero = dynamic_quantize_linear(ctx, a)
    return mat_mul_integer_to_float(ctx, a_quantized, b, a_scale, b_scale, a_zero, b_zero_point,
                                    bias)
