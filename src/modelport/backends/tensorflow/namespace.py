"""The array API over TensorFlow: the names the operator library uses, on ``tf`` ops.

TensorFlow is not array-API compatible (``array-api-compat`` has no TensorFlow namespace) and
``tf.experimental.numpy`` needs a global switch to behave like numpy, so this adapter maps
each function the shared operators call onto TensorFlow, with array-API semantics (keyword
``axis``/``keepdims``, ``astype``, ``permute_dims``, Python-style ``remainder``...).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

float16, float32, float64, bfloat16 = tf.float16, tf.float32, tf.float64, tf.bfloat16
int8, int16, int32, int64 = tf.int8, tf.int16, tf.int32, tf.int64
uint8, uint16, uint32, uint64 = tf.uint8, tf.uint16, tf.uint32, tf.uint64
complex64, complex128 = tf.complex64, tf.complex128
bool = tf.bool
inf, nan, pi, e = float("inf"), float("nan"), math.pi, math.e

_KINDS = {
    "bool": lambda d: d == tf.bool,
    "signed integer": lambda d: d.is_integer and not d.is_unsigned,
    "unsigned integer": lambda d: d.is_integer and d.is_unsigned,
    "integral": lambda d: d.is_integer,
    "real floating": lambda d: d.is_floating,
    "complex floating": lambda d: d.is_complex,
    "numeric": lambda d: d.is_integer or d.is_floating or d.is_complex,
}


def isdtype(dtype: Any, kind: str | tuple[str, ...]) -> Any:
    dtype = tf.as_dtype(dtype)
    kinds = (kind,) if isinstance(kind, str) else kind
    return builtins.any(_KINDS[k](dtype) for k in kinds)  # `any` here is the array API's


def iinfo(dtype: Any) -> Any:
    return np.iinfo(tf.as_dtype(dtype).as_numpy_dtype)


def asarray(value: Any, dtype: Any = None) -> tf.Tensor:
    if tf.is_tensor(value):
        return value if dtype is None else tf.cast(value, dtype)
    array = np.asarray(value)
    return tf.constant(array, dtype=dtype if dtype is not None else None)


def astype(x: Any, dtype: Any) -> tf.Tensor:
    return x if x.dtype == dtype else tf.cast(x, dtype)


def _same(a: Any, b: Any) -> tuple[Any, Any]:
    """Bring a Python scalar or numpy value to the other operand's dtype."""
    if tf.is_tensor(a) and not tf.is_tensor(b):
        return a, tf.constant(np.asarray(b), dtype=a.dtype)
    if tf.is_tensor(b) and not tf.is_tensor(a):
        return tf.constant(np.asarray(a), dtype=b.dtype), b
    return a, b


def where(condition: Any, a: Any, b: Any) -> tf.Tensor:
    a, b = _same(a, b)
    return tf.where(condition, a, b)


def reshape(x: Any, shape: Sequence[Any]) -> tf.Tensor:
    return tf.reshape(x, shape)


def permute_dims(x: Any, axes: Sequence[int]) -> tf.Tensor:
    return tf.transpose(x, axes)


def matrix_transpose(x: Any) -> tf.Tensor:
    return tf.linalg.matrix_transpose(x)


def matmul(a: Any, b: Any) -> tf.Tensor:
    if a.dtype in (tf.float16, tf.bfloat16):
        # Eigen's CPU matmul sums half-precision products in half precision; torch and
        # onnxruntime sum them in float32, and so does this.
        return tf.cast(matmul(tf.cast(a, tf.float32), tf.cast(b, tf.float32)), a.dtype)
    if len(a.shape) == 1 or len(b.shape) == 1:  # numpy's 1-D promotion rules
        left = tf.expand_dims(a, 0) if len(a.shape) == 1 else a
        right = tf.expand_dims(b, -1) if len(b.shape) == 1 else b
        out = tf.linalg.matmul(left, right)
        if len(b.shape) == 1:
            out = tf.squeeze(out, -1)
        return tf.squeeze(out, -1 if len(b.shape) == 1 else -2) if len(a.shape) == 1 else out
    return tf.linalg.matmul(a, b)


def _reduce(fn: Any) -> Any:
    def reduce(x: Any, axis: Any = None, keepdims: Any = False, dtype: Any = None) -> Any:
        if dtype is not None:
            x = astype(x, dtype)
        if x.dtype == tf.bool and fn in (tf.reduce_max, tf.reduce_min):
            reduced = (tf.reduce_any if fn is tf.reduce_max else tf.reduce_all)(
                x, axis=axis, keepdims=keepdims)
            return reduced
        if x.dtype in (tf.float16, tf.bfloat16) and fn in _ACCUMULATING:
            # Sums accumulate halves in float32, as numpy's and torch's do (TF's kernels
            # accumulate in the half and drift a unit or two of the last place).
            return tf.cast(fn(tf.cast(x, tf.float32), axis=axis, keepdims=keepdims), x.dtype)
        return fn(x, axis=axis, keepdims=keepdims)

    return reduce


_ACCUMULATING = (tf.reduce_sum, tf.reduce_mean, tf.math.reduce_variance)


sum = _reduce(tf.reduce_sum)
prod = _reduce(tf.reduce_prod)
mean = _reduce(tf.reduce_mean)
max = _reduce(tf.reduce_max)
min = _reduce(tf.reduce_min)
var = _reduce(tf.math.reduce_variance)
any = _reduce(tf.reduce_any)
all = _reduce(tf.reduce_all)


def _arg(fn: Any) -> Any:
    def arg(x: Any, axis: int | None = None, keepdims: Any = False) -> Any:
        found = fn(x, axis=axis, output_type=tf.int64)
        return tf.expand_dims(found, axis) if keepdims else found

    return arg


argmax, argmin = _arg(tf.math.argmax), _arg(tf.math.argmin)


def clip(x: Any, low: Any = None, high: Any = None) -> tf.Tensor:
    if low is not None:
        x = tf.maximum(x, tf.cast(low, x.dtype))
    if high is not None:
        x = tf.minimum(x, tf.cast(high, x.dtype))
    return x


def take(x: Any, indices: Any, axis: int | None = None) -> tf.Tensor:
    if axis is None:
        return tf.gather(tf.reshape(x, [-1]), indices)
    return tf.gather(x, indices, axis=axis)


def take_along_axis(x: Any, indices: Any, axis: int) -> tf.Tensor:
    return tnp.take_along_axis(x, indices, axis=axis)


def searchsorted(sorted_sequence: Any, values: Any, side: str = "left") -> tf.Tensor:
    """The array API's one sorted 1-D sequence for values of any shape (TensorFlow's own
    searchsorted pairs each row of values with a row of the sequence)."""
    values = tf.convert_to_tensor(values)
    flat = tf.searchsorted(sorted_sequence, tf.reshape(values, [-1]), side=side,
                           out_type=tf.int64)
    return tf.reshape(flat, tf.shape(values))


def stack(xs: Sequence[Any], axis: int = 0) -> tf.Tensor:
    return tf.stack(list(xs), axis=axis)


def concat(xs: Sequence[Any], axis: int = 0) -> tf.Tensor:
    return tf.concat(list(xs), axis=axis)


def zeros_like(x: Any, dtype: Any = None) -> tf.Tensor:
    return tf.zeros_like(x, dtype=dtype)


def ones_like(x: Any, dtype: Any = None) -> tf.Tensor:
    return tf.ones_like(x, dtype=dtype)


def zeros(shape: Any, dtype: Any = float32) -> tf.Tensor:
    return tf.zeros(shape, dtype=dtype)


def full(shape: Any, value: Any, dtype: Any = None) -> tf.Tensor:
    return tf.fill(shape, tf.constant(value, dtype=dtype))


def full_like(x: Any, value: Any, dtype: Any = None) -> tf.Tensor:
    return tf.fill(tf.shape(x), tf.constant(value, dtype=dtype or x.dtype))


def eye(n: int, m: int | None = None, k: int = 0, dtype: Any = float32) -> tf.Tensor:
    return tf.cast(tnp.eye(n, m, k=k), dtype)


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> tf.Tensor:
    if stop is None:
        start, stop = 0, start
    return tf.range(start, stop, step, dtype=dtype or tf.int64)


def flip(x: Any, axis: Any = None) -> tf.Tensor:
    axes = list(range(len(x.shape))) if axis is None else (
        [axis] if isinstance(axis, int) else list(axis))
    return tf.reverse(x, axes)


def squeeze(x: Any, axis: Any) -> tf.Tensor:
    return tf.squeeze(x, axis=axis)


def expand_dims(x: Any, axis: int = 0) -> tf.Tensor:
    return tf.expand_dims(x, axis)


def broadcast_to(x: Any, shape: Any) -> tf.Tensor:
    return tf.broadcast_to(x, shape)


def moveaxis(x: Any, source: int, destination: int) -> tf.Tensor:
    return tnp.moveaxis(x, source, destination)


def tile(x: Any, reps: Sequence[int]) -> tf.Tensor:
    reps = list(reps)
    rank = len(x.shape)
    if len(reps) > rank:
        x = tf.reshape(x, [1] * (len(reps) - rank) + list(x.shape))
    return tf.tile(x, [1] * (len(x.shape) - len(reps)) + reps)


def repeat(x: Any, repeats: int, axis: int) -> tf.Tensor:
    return tf.repeat(x, repeats, axis=axis)


def cumulative_sum(x: Any, axis: int, dtype: Any = None) -> tf.Tensor:
    return tf.math.cumsum(astype(x, dtype) if dtype is not None else x, axis=axis)


def cumulative_prod(x: Any, axis: int, dtype: Any = None) -> tf.Tensor:
    return tf.math.cumprod(astype(x, dtype) if dtype is not None else x, axis=axis)


def nonzero(x: Any) -> tuple[tf.Tensor, ...]:
    found = tf.where(tf.cast(x, tf.bool))
    return tuple(found[:, i] for i in range(len(x.shape)))


def remainder(a: Any, b: Any) -> tf.Tensor:
    return tf.math.floormod(*_same(a, b))


def fmod(a: Any, b: Any) -> tf.Tensor:
    """C's fmod (exact: x - trunc(x / y) * y would be NaN at y = inf and lose -0.0).
    TensorFlow has no CPU kernel for half types; float32 holds them and their remainder."""
    a, b = _same(a, b)
    if a.dtype in (tf.float16, tf.bfloat16):
        return tf.cast(tf.truncatemod(tf.cast(a, tf.float32), tf.cast(b, tf.float32)), a.dtype)
    return tf.truncatemod(a, b)


def trunc(x: Any) -> tf.Tensor:
    return tf.math.sign(x) * tf.math.floor(tf.math.abs(x)) if x.dtype.is_floating else x


def pow(a: Any, b: Any) -> tf.Tensor:
    return tf.math.pow(*_same(a, b))


def triu(x: Any, k: int = 0) -> tf.Tensor:
    return tnp.triu(x, k=k)


def tril(x: Any, k: int = 0) -> tf.Tensor:
    return tnp.tril(x, k=k)


def einsum(equation: str, *operands: Any) -> tf.Tensor:
    return tf.einsum(equation, *operands)


def logaddexp(a: Any, b: Any) -> tf.Tensor:
    peak = tf.maximum(a, b)
    return peak + tf.math.log1p(tf.exp(-tf.abs(a - b)))


def sign(x: Any) -> tf.Tensor:
    return tf.math.sign(x)


_UNARY = {
    "abs": tf.math.abs, "acos": tf.math.acos, "acosh": tf.math.acosh, "asin": tf.math.asin,
    "asinh": tf.math.asinh, "atan": tf.math.atan, "atanh": tf.math.atanh,
    "ceil": tf.math.ceil, "cos": tf.math.cos, "cosh": tf.math.cosh, "exp": tf.math.exp,
    "expm1": tf.math.expm1, "floor": tf.math.floor, "log": tf.math.log,
    "negative": tf.math.negative, "sin": tf.math.sin, "sinh": tf.math.sinh,
    "sqrt": tf.math.sqrt, "tan": tf.math.tan, "tanh": tf.math.tanh,
    "logical_not": tf.math.logical_not, "round": tf.math.round, "isnan": tf.math.is_nan,
    "isinf": tf.math.is_inf, "isfinite": tf.math.is_finite, "real": tf.math.real,
    "imag": tf.math.imag, "bitwise_invert": tf.bitwise.invert,
}
_BINARY = {
    "logical_and": tf.math.logical_and, "logical_or": tf.math.logical_or,
    "logical_xor": tf.math.logical_xor, "bitwise_and": tf.bitwise.bitwise_and,
    "bitwise_or": tf.bitwise.bitwise_or, "bitwise_xor": tf.bitwise.bitwise_xor,
    "equal": tf.math.equal, "greater": tf.math.greater, "less": tf.math.less,
    "greater_equal": tf.math.greater_equal, "less_equal": tf.math.less_equal,
    "maximum": tf.math.maximum, "minimum": tf.math.minimum,
}
globals().update(_UNARY)


def _binary(fn: Any) -> Any:
    return lambda a, b: fn(*_same(a, b))


globals().update({name: _binary(fn) for name, fn in _BINARY.items()})


def _shift_out_of_range(x: Any, by: Any) -> Any:
    return (by < 0) | (by >= x.dtype.size * 8)


def bitwise_left_shift(x: Any, by: Any) -> tf.Tensor:
    """numpy's semantics: shifting by the width or more (or by a negative amount) gives 0."""
    x, by = _same(x, by)
    return tf.where(_shift_out_of_range(x, by), tf.zeros_like(x), tf.bitwise.left_shift(x, by))


def bitwise_right_shift(x: Any, by: Any) -> tf.Tensor:
    x, by = _same(x, by)
    fill = tf.where(x < 0, -tf.ones_like(x), tf.zeros_like(x)) if not x.dtype.is_unsigned \
        else tf.zeros_like(x)
    return tf.where(_shift_out_of_range(x, by), fill, tf.bitwise.right_shift(x, by))


def _fft_axis(fn: Any) -> Any:
    """tf.signal transforms the last axis only: move the axis there and back."""
    def transform(x: Any, n: int | None = None, axis: int = -1) -> tf.Tensor:
        x = tnp.moveaxis(x, axis, -1)
        if n is not None:
            length = x.shape[-1]
            if fn is not tf.signal.irfft:
                if n > length:
                    x = tf.pad(x, [[0, 0]] * (len(x.shape) - 1) + [[0, n - length]])
                x = x[..., :n]
        out = fn(x) if fn is not tf.signal.irfft else fn(x, fft_length=[n])
        return tnp.moveaxis(out, -1, axis)

    return transform


fft = SimpleNamespace(fft=_fft_axis(tf.signal.fft), ifft=_fft_axis(tf.signal.ifft),
                      irfft=_fft_axis(tf.signal.irfft))
linalg = SimpleNamespace(det=tf.linalg.det)
