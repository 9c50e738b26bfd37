"""The optimizers of the ``ai.onnx.preview.training`` domain: one update step each.

Every operator takes the learning rate ``R`` and the step count ``T`` (a host value: the bias
correction branches on it), then n tensors to optimize and their n-long state lists, and
returns the n updated tensors followed by the updated state lists, as the spec lays them out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelport.ops.registry import op

TRAINING = "ai.onnx.preview.training"


def _groups(tensors: tuple[Any, ...], count: int) -> list[tuple[Any, ...]]:
    """``X1..Xn, G1..Gn, ...`` as n tuples ``(Xi, Gi, ...)``."""
    n = len(tensors) // count
    return [tuple(tensors[i + j * n] for j in range(count)) for i in range(n)]


def _flat(updates: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """n tuples ``(Xi', Si', ...)`` back as ``X1'..Xn', S1'..Sn', ...``."""
    return tuple(u[j] for j in range(len(updates[0])) for u in updates)


@op("Adagrad", 1, domain=TRAINING, host=(1,))
def adagrad(ctx: Any, r: Any, t: Any, *tensors: Any, decay_factor: float = 0.0,
            epsilon: float = 1e-6, norm_coefficient: float = 0.0) -> Any:
    rate = r / (1 + float(np.asarray(t)) * decay_factor)
    updates = []
    for x, g, h in _groups(tensors, 3):
        g = norm_coefficient * x + g
        h = h + g * g
        updates.append((x - rate * g / (ctx.xp.sqrt(h) + epsilon), h))
    return _flat(updates)


@op("Momentum", 1, domain=TRAINING, host=(1,))
def momentum(ctx: Any, r: Any, t: Any, *tensors: Any, alpha: float, beta: float, mode: str,
             norm_coefficient: float) -> Any:
    beta_t = beta if float(np.asarray(t)) > 0 else 1.0  # the first step takes the whole gradient
    updates = []
    for x, g, v in _groups(tensors, 3):
        g = norm_coefficient * x + g
        v = alpha * v + beta_t * g
        step = g + alpha * v if mode == "nesterov" else v
        updates.append((x - r * step, v))
    return _flat(updates)


@op("Adam", 1, domain=TRAINING, host=(1,))
def adam(ctx: Any, r: Any, t: Any, *tensors: Any, alpha: float = 0.9, beta: float = 0.999,
         epsilon: float = 1e-6, norm_coefficient: float = 0.0,
         norm_coefficient_post: float = 0.0) -> Any:
    step = float(np.asarray(t))
    # bias correction of both moments, from the second step on
    rate = r * (math.sqrt(1 - beta**step) / (1 - alpha**step)) if step > 0 else r
    updates = []
    for x, g, v, h in _groups(tensors, 4):
        g = norm_coefficient * x + g
        v = alpha * v + (1 - alpha) * g
        h = beta * h + (1 - beta) * (g * g)
        x = x - rate * (v / (ctx.xp.sqrt(h) + epsilon))
        updates.append(((1 - norm_coefficient_post) * x, v, h))
    return _flat(updates)
