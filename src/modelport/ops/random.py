"""Random generators: RandomUniform, RandomNormal, their -Like forms, Bernoulli, Multinomial.

Draws come from numpy's ``RandomState(seed)`` on the host, as the reference evaluator makes
them: a seeded node gives the same values on every backend and every call, and a traced program
holds them as a constant. An unseeded node draws afresh on each call, so it cannot be traced
and runs eagerly. (No two frameworks share a generator, so a seed is the only way two backends
can agree on random values at all.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelport.errors import BackendError
from modelport.ops.context import eager_host_value
from modelport.ops.registry import op
from modelport.ops.shape import shape_of

_FROM_VALUES = "a random draw from a tensor's values runs on the host"


def _state(ctx: Any, seed: float | None, like: Any = None) -> np.random.RandomState:
    if seed is None and like is not None and ctx.fw.tracing(like):
        raise BackendError("an unseeded random node draws afresh on every call")
    return np.random.RandomState(None if seed is None else int(seed))


def _dtype(ctx: Any, dtype: int | None, like: Any = None) -> np.dtype:
    import onnx.helper

    if dtype is None:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(ctx.fw.elem_type(like)))
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(dtype))


def _uniform(state: np.random.RandomState, shape: Sequence[int], dtype: np.dtype,
             low: float, high: float) -> np.ndarray:
    """Draws in [0, 1) scaled in the target type, step by step as the reference does."""
    draw = state.rand(*shape).astype(dtype)
    return (draw * dtype.type(high - low) + dtype.type(low)).astype(dtype)


def _normal(state: np.random.RandomState, shape: Sequence[int], dtype: np.dtype,
            mean: float, scale: float) -> np.ndarray:
    draw = state.randn(*shape).astype(dtype)
    return (draw * dtype.type(scale) + dtype.type(mean)).astype(dtype)


@op("RandomUniform", 1, 22)
def random_uniform(ctx: Any, *, dtype: int = 1, high: float = 1.0, low: float = 0.0,
                   seed: float | None = None, shape: Sequence[int]) -> Any:
    return _uniform(_state(ctx, seed), shape, _dtype(ctx, dtype), low, high)


@op("RandomNormal", 1, 22)
def random_normal(ctx: Any, *, dtype: int = 1, mean: float = 0.0, scale: float = 1.0,
                  seed: float | None = None, shape: Sequence[int]) -> Any:
    return _normal(_state(ctx, seed), shape, _dtype(ctx, dtype), mean, scale)


@op("RandomUniformLike", 1, 22)
def random_uniform_like(ctx: Any, x: Any, *, dtype: int | None = None, high: float = 1.0,
                        low: float = 0.0, seed: float | None = None) -> Any:
    return _uniform(_state(ctx, seed, x), shape_of(x), _dtype(ctx, dtype, x), low, high)


@op("RandomNormalLike", 1, 22)
def random_normal_like(ctx: Any, x: Any, *, dtype: int | None = None, mean: float = 0.0,
                       scale: float = 1.0, seed: float | None = None) -> Any:
    return _normal(_state(ctx, seed, x), shape_of(x), _dtype(ctx, dtype, x), mean, scale)


@op("Bernoulli", 15, 22)
def bernoulli(ctx: Any, x: Any, *, dtype: int | None = None, seed: float | None = None) -> Any:
    """1 with probability ``x``, element by element."""
    chances = eager_host_value(ctx, x, _FROM_VALUES)
    return _state(ctx, seed).binomial(1, p=chances).astype(_dtype(ctx, dtype, x))


@op("Multinomial", 7, 22)
def multinomial(ctx: Any, x: Any, *, dtype: int = 6, sample_size: int = 1,
                seed: float | None = None) -> Any:
    """``sample_size`` class indices per row, drawn from the softmax of the row's logits."""
    logits = eager_host_value(ctx, x, _FROM_VALUES).astype(np.float64)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    state = _state(ctx, seed)
    rows = [state.choice(p.size, size=sample_size, p=p) for p in probabilities]
    return np.array(rows).reshape(len(rows), sample_size).astype(_dtype(ctx, dtype))
