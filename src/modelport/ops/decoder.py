"""The operators onnxruntime-genai's model builder writes for decoder-only language models
(LLaMA, Mistral, Qwen, Phi, ...): RMS normalization, rotary embeddings, grouped-query attention
with a key/value cache, and 4-bit weights. Semantics are onnxruntime's (its
docs/ContribOperators.md), checked against onnxruntime by ``tests/test_contrib.py``.

``SimplifiedLayerNormalization`` (and ``LayerNormalization`` before opset 17) are onnxruntime
operators that its tools write into the ONNX domain, version 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelport.ops.contrib import attended
from modelport.ops.nn import layer_normalization
from modelport.ops.registry import op
from modelport.ops.shape import shape_of

MS = "com.microsoft"

op("LayerNormalization", 1)(layer_normalization)  # onnxruntime's, before ONNX had it (17)


def rms_norm(ctx: Any, x: Any, scale: Any, axis: int, epsilon: float,
             statistics: bool = False) -> Any:
    """``x / sqrt(mean(x²) + epsilon) * scale`` over the axes from ``axis``, in float32."""
    xp = ctx.xp
    first = axis % len(shape_of(x))
    work = xp.astype(x, xp.float32)
    axes = tuple(range(first, len(shape_of(x))))
    inv_std = 1 / xp.sqrt(xp.mean(work * work, axis=axes, keepdims=True) + epsilon)
    y = xp.astype(work * inv_std, x.dtype) * scale
    return (y, inv_std) if statistics else y


@op("SimplifiedLayerNormalization", 1)
def simplified_layer_normalization(ctx: Any, x: Any, scale: Any, *, axis: int = -1,
                                   epsilon: float = 1e-5, stash_type: int = 1) -> Any:
    return rms_norm(ctx, x, scale, axis, epsilon, ctx.n_outputs > 1)


@op("SkipSimplifiedLayerNormalization", 1, domain=MS)
def skip_simplified_layer_normalization(ctx: Any, x: Any, skip: Any, gamma: Any,
                                        bias: Any = None, *, epsilon: float = 1e-12) -> Any:
    """RMS normalization of ``x + skip (+ bias)``; outputs: the result, an unused mean, the
    inverse standard deviation and the sum itself."""
    total = x + skip if bias is None else x + skip + bias
    if ctx.n_outputs == 1:
        return rms_norm(ctx, total, gamma, -1, epsilon)
    y, inv_std = rms_norm(ctx, total, gamma, -1, epsilon, statistics=True)
    return (y, None, inv_std, total)[:ctx.n_outputs]


# --- rotary embeddings --------------------------------------------------------------------------


def rotate(ctx: Any, x: Any, cos: Any, sin: Any, interleaved: int) -> Any:
    """``x`` [..., head_size] rotated by angles whose cos and sin are [..., rotary_dim / 2]
    (broadcast against x's leading axes); dimensions past rotary_dim pass unchanged."""
    xp = ctx.xp
    half = shape_of(cos)[-1]
    rotary, rest = x[..., :2 * half], x[..., 2 * half:]
    if interleaved:  # pairs (x0, x1), (x2, x3), ...
        pairs = xp.reshape(rotary, (*shape_of(rotary)[:-1], half, 2))
        first, second = pairs[..., 0], pairs[..., 1]
        turned = xp.stack([first * cos - second * sin, second * cos + first * sin], axis=-1)
        turned = xp.reshape(turned, shape_of(rotary))
    else:  # the first half with the second
        first, second = rotary[..., :half], rotary[..., half:]
        turned = xp.concat([first * cos - second * sin, second * cos + first * sin], axis=-1)
    return turned if shape_of(rest)[-1] == 0 else xp.concat([turned, rest], axis=-1)


@op("RotaryEmbedding", 1, domain=MS)
def rotary_embedding(ctx: Any, x: Any, position_ids: Any, cos_cache: Any, sin_cache: Any, *,
                     interleaved: int | None = None, num_heads: int | None = None,
                     rotary_embedding_dim: int | None = None,
                     is_packed_batching: int | None = None, scale: float | None = None) -> Any:
    """``x`` [B, S, hidden] or [B, heads, S, head_size] rotated at ``position_ids`` ([B, S],
    or one offset [1] for every row)."""
    xp = ctx.xp
    dims = shape_of(x)
    batch, length = dims[0], dims[-2] if len(dims) == 4 else dims[1]
    positions = _positions(ctx, position_ids, batch, length)
    half = (rotary_embedding_dim or 2 * shape_of(cos_cache)[-1]) // 2
    interleaved = interleaved or 0
    cos = _rows(ctx, cos_cache, positions)[..., :half]  # B, S, half
    sin = _rows(ctx, sin_cache, positions)[..., :half]
    if len(dims) == 4:  # B, heads, S, head_size
        return rotate(ctx, x, cos[:, None], sin[:, None], interleaved)
    heads = num_heads or dims[2] // (2 * half)
    split = xp.reshape(x, (batch, length, heads, dims[2] // heads))
    turned = rotate(ctx, split, cos[:, :, None], sin[:, :, None], interleaved)
    return xp.reshape(turned, dims)


def _positions(ctx: Any, position_ids: Any, batch: int, length: int) -> Any:
    xp = ctx.xp
    ids = xp.astype(position_ids, xp.int64)
    if len(shape_of(ids)) == 1:  # one start for every row
        return xp.broadcast_to(ids[:1] + xp.arange(length, dtype=xp.int64)[None, :],
                               (batch, length))
    return ids


def _rows(ctx: Any, table: Any, positions: Any) -> Any:
    """``table[positions]`` for positions of any shape."""
    xp = ctx.xp
    taken = xp.take(table, xp.reshape(positions, (-1,)), axis=0)
    return xp.reshape(taken, (*shape_of(positions), shape_of(table)[-1]))


# --- grouped-query attention ---------------------------------------------------------------------


@op("GroupQueryAttention", 1, domain=MS, host=(5, 6))
def group_query_attention(ctx: Any, query: Any, key: Any = None, value: Any = None,
                          past_key: Any = None, past_value: Any = None,
                          seqlens_k: Any = None, total_sequence_length: Any = None,
                          cos_cache: Any = None, sin_cache: Any = None,
                          position_ids: Any = None, attention_bias: Any = None,
                          head_sink: Any = None, *rest: Any, num_heads: int | None = None,
                          kv_num_heads: int | None = None, scale: float | None = None,
                          softcap: float | None = None, local_window_size: int = -1,
                          do_rotary: int | None = None, rotary_interleaved: int | None = None,
                          smooth_softmax: int = -1, causal: int = 1, qk_output: int = 0,
                          sliding_window_cache: int = 0, k_quant_type: str = "NONE",
                          v_quant_type: str = "NONE",
                          qk_norm_epsilon: float = 1e-6, q_norm_epsilon: float | None = None,
                          k_norm_epsilon: float | None = None,
                          kv_cache_bit_width: int | None = None) -> Any:
    """Causal attention of ``num_heads`` query heads over ``kv_num_heads`` shared key/value
    heads, the new keys and values appended to the cache (``present``). ``seqlens_k[b]`` is
    row b's total length minus one: its new tokens sit just before it, and keys past it are
    padding."""
    if any(r is not None for r in rest) or head_sink is not None or smooth_softmax > 0 \
            or not causal or qk_output or (k_quant_type, v_quant_type) != ("NONE", "NONE"):
        raise NotImplementedError("GroupQueryAttention with quantized caches, a head sink, "
                                  "smooth softmax, q/k norms, no causal mask or a qk output")
    if num_heads is None or kv_num_heads is None:
        raise ValueError("GroupQueryAttention needs num_heads and kv_num_heads")
    xp = ctx.xp
    batch, length, width = shape_of(query)
    if key is None:  # packed: query, key and value heads side by side
        head_size = width // (num_heads + 2 * kv_num_heads)
        q_end, k_end = num_heads * head_size, (num_heads + kv_num_heads) * head_size
        query, key, value = query[..., :q_end], query[..., q_end:k_end], query[..., k_end:]
    else:
        head_size = width // num_heads
    q = xp.permute_dims(xp.reshape(query, (batch, length, num_heads, head_size)), (0, 2, 1, 3))
    k = xp.permute_dims(xp.reshape(key, (batch, length, kv_num_heads, head_size)),
                        (0, 2, 1, 3))
    v = xp.permute_dims(xp.reshape(value, (batch, length, kv_num_heads, head_size)),
                        (0, 2, 1, 3))
    total = int(np.asarray(total_sequence_length).reshape(-1)[0])
    valid = np.asarray(seqlens_k, np.int64).reshape(-1) + 1  # keys per row
    past = 0 if past_key is None else shape_of(past_key)[2]
    first_prompt = past == 0 and total == length
    # the absolute position of each new token: 0.. for a first prompt, else just before the end
    start = np.zeros(batch, np.int64) if first_prompt else valid - length
    positions = start[:, None] + np.arange(length)[None, :]  # B, S
    if do_rotary:
        at = (xp.astype(position_ids, xp.int64) if position_ids is not None
              else xp.asarray(positions))
        cos, sin = _rows(ctx, cos_cache, at)[:, None], _rows(ctx, sin_cache, at)[:, None]
        q = rotate(ctx, q, cos, sin, rotary_interleaved or 0)
        k = rotate(ctx, k, cos, sin, rotary_interleaved or 0)
    if past_key is not None and past:
        k = xp.concat([past_key, k], axis=2)
        v = xp.concat([past_value, v], axis=2)
    keys = shape_of(k)[2]
    # query i of row b sees key j when j <= its position, j < the row's length, and j lies in
    # the local window
    j = np.arange(keys)[None, None, :]
    seen = (j <= positions[:, :, None]) & (j < valid[:, None, None])
    if local_window_size >= 0:
        seen &= j > positions[:, :, None] - local_window_size
    group = num_heads // kv_num_heads
    k_heads = xp.repeat(k, group, axis=1) if group > 1 else k
    v_heads = xp.repeat(v, group, axis=1) if group > 1 else v
    factor = scale or 1 / math.sqrt(head_size)
    scores = xp.matmul(q, xp.permute_dims(k_heads, (0, 1, 3, 2))) * factor  # B, H, S, T
    if softcap:
        scores = softcap * xp.tanh(scores / softcap)
    if attention_bias is not None:
        scores = scores + attention_bias
    scores = xp.where(xp.asarray(seen[:, None]), scores,
                      xp.asarray(-np.inf, dtype=scores.dtype))
    out = attended(ctx, scores, v_heads)
    return (out, k, v)[:ctx.n_outputs]


# --- 4-bit weights -------------------------------------------------------------------------------


@op("MatMulNBits", 1, domain=MS, host=(1, 3, 4))
def mat_mul_n_bits(ctx: Any, a: Any, b: Any, scales: Any, zero_points: Any = None,
                   g_idx: Any = None, bias: Any = None, *, K: int | None = None,
                   N: int | None = None, bits: int = 4, block_size: int | None = None,
                   accuracy_level: int = 0, weight_prepacked: int = 0) -> Any:
    """``a @ W + bias`` where W [K, N] is stored by column in blocks of ``block_size``
    ``bits``-bit integers (packed low bits first), each block with a scale and a zero point
    (packed the same way, or floats; 2^(bits-1) when absent). The integers are unpacked on the
    host; the scales stay framework values (they may be trainable weights)."""
    if g_idx is not None or weight_prepacked:
        raise NotImplementedError("MatMulNBits with g_idx or prepacked weights")
    if K is None or N is None or block_size is None:
        raise ValueError("MatMulNBits needs K, N and block_size")
    xp = ctx.xp
    blocks = -(-K // block_size)
    q = _unpacked(np.asarray(b).reshape(N, blocks, -1), bits)[:, :, :block_size]
    if zero_points is None:
        zero = np.full((N, blocks, 1), 1 << (bits - 1), np.float32)
    elif np.asarray(zero_points).dtype == np.uint8:  # packed like the weights
        zero = _unpacked(np.asarray(zero_points).reshape(N, -1), bits)[:, :blocks, None]
    else:
        zero = np.asarray(zero_points, np.float32).reshape(N, blocks, 1)
    centred = xp.asarray((q.astype(np.float32) - zero.astype(np.float32)), dtype=a.dtype)
    weight = centred * xp.reshape(xp.astype(scales, a.dtype), (N, blocks, 1))
    weight = xp.reshape(weight, (N, blocks * block_size))[:, :K]
    y = xp.matmul(a, xp.permute_dims(weight, (1, 0)))
    return y if bias is None else y + bias


def _unpacked(packed: np.ndarray, bits: int) -> np.ndarray:
    """Each byte's ``8 / bits`` values, low bits first, along the last axis."""
    shifts = np.arange(0, 8, bits, dtype=np.uint8)
    values = (packed[..., None] >> shifts) & np.uint8((1 << bits) - 1)
    return values.reshape(*packed.shape[:-1], -1)
