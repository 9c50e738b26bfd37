"""Element-wise operators: math, activations, comparisons, logic, variadic Max/Min/Sum/Mean.

Versions that only widened the set of types share one implementation; version 1 (and 6 where
it still had ``consumed_inputs``/legacy broadcasting) is not implemented.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from modelport.ops.context import native
from modelport.ops.registry import op
from modelport.ops.shape import normalize_axis, shape_of


def _unary(name: str, versions: tuple[int, ...], fn_name: str) -> None:
    def unary(ctx: Any, x: Any) -> Any:
        return getattr(ctx.xp, fn_name)(x)

    unary.__name__ = name.lower()
    op(name, *versions)(unary)


# Version 1 of the activations and math functions differs from 6 only by `consumed_inputs`, a
# legacy in-place hint without effect on results (the registry drops it).
for _name, _versions, _fn in [
    ("Abs", (1, 6, 13), "abs"), ("Acos", (7, 22), "acos"), ("Acosh", (9, 22), "acosh"),
    ("Asin", (7, 22), "asin"), ("Asinh", (9, 22), "asinh"), ("Atan", (7, 22), "atan"),
    ("Atanh", (9, 22), "atanh"), ("Ceil", (1, 6, 13), "ceil"), ("Cos", (7, 22), "cos"),
    ("Cosh", (9, 22), "cosh"), ("Exp", (1, 6, 13), "exp"), ("Floor", (1, 6, 13), "floor"),
    ("Log", (1, 6, 13), "log"), ("Neg", (1, 6, 13), "negative"), ("Sin", (7, 22), "sin"),
    ("Sinh", (9, 22), "sinh"), ("Sqrt", (1, 6, 13), "sqrt"), ("Tan", (7, 22), "tan"),
    ("Tanh", (1, 6, 13), "tanh"), ("Not", (1,), "logical_not"), ("Round", (11, 22), "round"),
    ("Sign", (9, 13), "sign"), ("IsNaN", (9, 13, 20), "isnan"),
    ("BitwiseNot", (18,), "bitwise_invert"),
]:
    _unary(_name, _versions, _fn)


@op("Reciprocal", 1, 6, 13)
def reciprocal(ctx: Any, x: Any) -> Any:
    return 1 / x


@op("Erf", 9, 13)
def erf(ctx: Any, x: Any) -> Any:
    return ctx.k.erf(x)


@op("IsInf", 10, 20)
def is_inf(ctx: Any, x: Any, *, detect_negative: int, detect_positive: int) -> Any:
    xp = ctx.xp
    inf = xp.isinf(x)
    if not detect_negative:
        inf = inf & (x > 0)
    if not detect_positive:
        inf = inf & (x < 0)
    return inf


# --- activations ------------------------------------------------------------------------------


@op("Relu", 1, 6, 13, 14)
def relu(ctx: Any, x: Any) -> Any:
    if fast := native(ctx, "relu"):
        return fast(x)
    return ctx.xp.maximum(x, ctx.xp.zeros_like(x))  # NaN stays NaN, as in the reference


@op("Sigmoid", 1, 6, 13)
def sigmoid(ctx: Any, x: Any) -> Any:
    if fast := native(ctx, "sigmoid"):
        return fast(x)
    return 1 / (1 + ctx.xp.exp(-x))


@op("Softplus", 1, 22)
def softplus(ctx: Any, x: Any) -> Any:
    return ctx.xp.logaddexp(x, ctx.xp.zeros_like(x))


@op("Softsign", 1, 22)
def softsign(ctx: Any, x: Any) -> Any:
    return x / (1 + ctx.xp.abs(x))


@op("Elu", 1, 6, 22)
def elu(ctx: Any, x: Any, *, alpha: float) -> Any:
    return ctx.xp.where(x >= 0, x, alpha * ctx.xp.expm1(_negative(ctx, x)))


def _negative(ctx: Any, x: Any) -> Any:
    """min(x, 0): the Elu family's exponential branch stays finite (and its gradient free of
    inf * 0) where the other branch is taken. ``x >= 0`` picks that branch so -0.0 stays -0.0."""
    return ctx.xp.minimum(x, ctx.xp.zeros_like(x))


@op("Celu", 12, 28)
def celu(ctx: Any, x: Any, *, alpha: float) -> Any:
    return ctx.xp.where(x >= 0, x, alpha * ctx.xp.expm1(_negative(ctx, x) / alpha))


@op("Selu", 1, 6, 22)
def selu(ctx: Any, x: Any, *, alpha: float, gamma: float) -> Any:
    return gamma * ctx.xp.where(x >= 0, x, alpha * ctx.xp.expm1(_negative(ctx, x)))


@op("LeakyRelu", 1, 6, 16)
def leaky_relu(ctx: Any, x: Any, *, alpha: float) -> Any:
    return ctx.xp.where(x >= 0, x, alpha * x)


@op("PRelu", 7, 9, 16)
def prelu(ctx: Any, x: Any, slope: Any) -> Any:
    return ctx.xp.where(x > 0, x, slope * x)  # the anchors' form: PRelu(-0.0) is slope * -0.0


@op("PRelu", 1, 6)
def prelu_6(ctx: Any, x: Any, slope: Any) -> Any:
    """Versions 1 and 6: a slope of one value per channel ([C], channel axis 1, as the Caffe2
    exporters wrote it) or one that broadcasts."""
    dims, slopes = shape_of(x), shape_of(slope)
    if len(slopes) == 1 and len(dims) > 2 and slopes[0] == dims[1] != dims[-1]:
        slope = ctx.xp.reshape(slope, (dims[1], *([1] * (len(dims) - 2))))
    return prelu(ctx, x, slope)


@op("ThresholdedRelu", 10, 22)
def thresholded_relu(ctx: Any, x: Any, *, alpha: float) -> Any:
    return ctx.xp.where(x > alpha, x, ctx.xp.zeros_like(x))


@op("HardSigmoid", 1, 6, 22)
def hard_sigmoid(ctx: Any, x: Any, *, alpha: float, beta: float) -> Any:
    return ctx.xp.clip(alpha * x + beta, 0, 1)


@op("HardSwish", 14, 22)
def hard_swish(ctx: Any, x: Any) -> Any:
    return x * ctx.xp.clip(x / 6 + 0.5, 0, 1)


@op("Swish", 24)
def swish(ctx: Any, x: Any, *, alpha: float) -> Any:
    return x * sigmoid(ctx, alpha * x)


@op("Mish", 18, 22)
def mish(ctx: Any, x: Any) -> Any:
    return x * ctx.xp.tanh(softplus(ctx, x))


@op("Shrink", 9)
def shrink(ctx: Any, x: Any, *, bias: float, lambd: float) -> Any:
    xp = ctx.xp
    return xp.where(x < -lambd, x + bias, xp.where(x > lambd, x - bias, xp.zeros_like(x)))


@op("Gelu", 20)
def gelu(ctx: Any, x: Any, *, approximate: str) -> Any:
    xp = ctx.xp
    # fused kernels for float32 only: TensorFlow's computes doubles with float32 constants
    if x.dtype == xp.float32 and (fast := native(ctx, "gelu")):
        return fast(x, approximate)
    if approximate == "tanh":
        return 0.5 * x * (1 + xp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + ctx.k.erf(x / math.sqrt(2)))


# --- binary arithmetic ------------------------------------------------------------------------


@op("Add", 7, 13, 14)
def add(ctx: Any, a: Any, b: Any) -> Any:
    return a + b


@op("Sub", 7, 13, 14)
def sub(ctx: Any, a: Any, b: Any) -> Any:
    return a - b


@op("Mul", 7, 13, 14)
def mul(ctx: Any, a: Any, b: Any) -> Any:
    return a * b


@op("Div", 7, 13, 14)
def div(ctx: Any, a: Any, b: Any) -> Any:
    xp = ctx.xp
    if xp.isdtype(a.dtype, "integral"):  # C-style: truncate toward zero
        return xp.astype(xp.trunc(xp.astype(a, xp.float64) / xp.astype(b, xp.float64)), a.dtype)
    return a / b


@op("Pow", 7, 12, 13, 15)
def pow_(ctx: Any, a: Any, b: Any) -> Any:
    xp = ctx.xp
    if xp.isdtype(a.dtype, "integral") and not xp.isdtype(b.dtype, "integral"):
        return xp.astype(xp.pow(xp.astype(a, b.dtype), b), a.dtype)
    return xp.astype(xp.pow(a, xp.astype(b, a.dtype)), a.dtype)


def _legacy_broadcast(name: str, versions: tuple[int, ...], fn: Callable[..., Any]) -> None:
    """Versions 1-6 of the binary operators broadcast only when asked (``broadcast=1``), B's
    axes lined up with A's from ``axis`` (from A's last axes when absent): B gets the trailing
    unit axes that make that alignment version 7's numpy broadcasting."""
    def legacy(ctx: Any, a: Any, b: Any, *, broadcast: int = 0, axis: int | None = None) -> Any:
        rank_a, shape_b = len(shape_of(a)), shape_of(b)
        if broadcast and axis is not None:
            trailing = rank_a - normalize_axis(axis, rank_a) - len(shape_b)
            b = ctx.xp.reshape(b, (*shape_b, *[1] * trailing)) if trailing > 0 else b
        return fn(ctx, a, b)

    legacy.__name__ = f"{name.lower()}_legacy"
    op(name, *versions)(legacy)


for _name, _impl in (("Add", add), ("Sub", sub), ("Mul", mul), ("Div", div)):
    _legacy_broadcast(_name, (1, 6), _impl)
_legacy_broadcast("Pow", (1,), pow_)


@op("Mod", 10, 13, 28)
def mod(ctx: Any, a: Any, b: Any, *, fmod: int) -> Any:
    return ctx.xp.fmod(a, b) if fmod else ctx.xp.remainder(a, b)


@op("BitShift", 11, 28)
def bit_shift(ctx: Any, x: Any, y: Any, *, direction: str) -> Any:
    xp = ctx.xp
    return (xp.bitwise_left_shift(x, y) if direction == "LEFT"
            else xp.bitwise_right_shift(x, y))


for _name, _versions, _fn in [
    ("And", (7,), "logical_and"), ("Or", (7,), "logical_or"), ("Xor", (7,), "logical_xor"),
    ("BitwiseAnd", (18,), "bitwise_and"), ("BitwiseOr", (18,), "bitwise_or"),
    ("BitwiseXor", (18,), "bitwise_xor"), ("Equal", (7, 11, 13, 19), "equal"),
    ("Greater", (7, 9, 13), "greater"), ("Less", (7, 9, 13), "less"),
    ("GreaterOrEqual", (12, 16), "greater_equal"), ("LessOrEqual", (12, 16), "less_equal"),
]:
    def _binary(ctx: Any, a: Any, b: Any, _fn: str = _fn) -> Any:
        return getattr(ctx.xp, _fn)(a, b)

    op(_name, *_versions)(_binary)
    if _versions[0] == 7:  # And, Or, Xor, Equal, Greater, Less
        _legacy_broadcast(_name, (1,), _binary)


@op("Where", 9, 16)
def where(ctx: Any, condition: Any, x: Any, y: Any) -> Any:
    return ctx.xp.where(condition, x, y)


@op("Clip", 1, 6)  # 1 has no defaults: an absent bound does not clip
def clip_6(ctx: Any, x: Any, *, min: float | None = None, max: float | None = None) -> Any:
    return ctx.xp.clip(x, min, max)


@op("Clip", 11, 12, 13)
def clip(ctx: Any, x: Any, low: Any = None, high: Any = None) -> Any:
    xp = ctx.xp
    if low is not None:
        x = xp.maximum(x, xp.astype(low, x.dtype))
    if high is not None:
        x = xp.minimum(x, xp.astype(high, x.dtype))
    return x


# --- variadic ---------------------------------------------------------------------------------


@op("Max", 1, 6, 8, 12, 13)  # 1 and 6 take equal shapes only; 8 broadcasts
def max_(ctx: Any, *xs: Any) -> Any:
    return functools.reduce(ctx.xp.maximum, xs)


@op("Min", 1, 6, 8, 12, 13)
def min_(ctx: Any, *xs: Any) -> Any:
    return functools.reduce(ctx.xp.minimum, xs)


@op("Sum", 1, 6, 8, 13)
def sum_(ctx: Any, *xs: Any) -> Any:
    return functools.reduce(lambda a, b: a + b, xs)


@op("Mean", 1, 6, 8, 13)
def mean(ctx: Any, *xs: Any) -> Any:
    return sum_(ctx, *xs) / len(xs)
