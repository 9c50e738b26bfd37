"""The host framework: numpy, which host values, constant folding and the numpy backend run on.

Its kernels (:mod:`modelport.ops.host_kernels`) are what the array API lacks, written over
numpy; other frameworks fall back to them for what they cannot compute
(:class:`~modelport.ops.context.HostFallback`).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import array_api_compat.numpy
import ml_dtypes
import numpy as np

from modelport.ops import host_kernels
from modelport.ops.context import Framework


def _ml_dtype(dtype: Any) -> bool:
    """bfloat16, float8, float4, int4, int2: numpy types only through ml_dtypes."""
    return isinstance(dtype, np.dtype) and dtype.type.__module__ == "ml_dtypes"


def _isdtype(dtype: Any, kind: str | tuple[str, ...]) -> bool:
    if not _ml_dtype(dtype):
        return bool(array_api_compat.numpy.isdtype(dtype, kind))  # type: ignore[attr-defined]
    if isinstance(kind, tuple):
        return any(_isdtype(dtype, k) for k in kind)
    try:
        signed = ml_dtypes.iinfo(dtype).min < 0
        own = {"integral", "numeric", "signed integer" if signed else "unsigned integer"}
    except ValueError:  # not an integer type: one of the small floats
        own = {"real floating", "numeric"}
    return kind in own


def _in_float32(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` computed in float32 for ml_dtypes operands (numpy's einsum refuses them, its
    matmul answers in float32), the result in the first operand's type, as ONNX requires."""
    def call(*args: Any, **kwargs: Any) -> Any:
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        if not any(_ml_dtype(a.dtype) for a in arrays):
            return fn(*args, **kwargs)
        wide = [a.astype(np.float32) if isinstance(a, np.ndarray) and _ml_dtype(a.dtype) else a
                for a in args]
        return fn(*wide, **kwargs).astype(arrays[0].dtype)

    return call


# The array-API namespace numpy values run on: array_api_compat's, taught the ml_dtypes types.
host_xp = types.ModuleType("modelport.ops.host_xp")
host_xp.__dict__.update(vars(array_api_compat.numpy))
host_xp.isdtype = _isdtype  # type: ignore[attr-defined]
host_xp.matmul = _in_float32(array_api_compat.numpy.matmul)  # type: ignore[attr-defined]
host_xp.einsum = _in_float32(array_api_compat.numpy.einsum)  # type: ignore[attr-defined]


class NumpyFramework(Framework):
    positions = "int64"
    name = "numpy"
    xp = host_xp
    k = host_kernels


@functools.cache
def numpy_framework() -> NumpyFramework:
    """The framework host values run on."""
    return NumpyFramework()


class HostKernels:
    """The host kernels lent to a framework that has none of its own yet.

    Each call converts the framework's arrays to numpy (``to_host``), runs the numpy kernel and
    converts the result back (``from_host``). That is what a new framework needs to run every
    operator at once; it works in eager mode only (a tracer cannot leave its framework), and a
    framework replaces kernels with its own one by one. See docs/adding-a-framework.md.
    """

    def __init__(self, to_host: Callable[[Any], np.ndarray],
                 from_host: Callable[[np.ndarray], Any]) -> None:
        self._to_host, self._from_host = to_host, from_host

    def __getattr__(self, name: str) -> Callable[..., Any]:
        kernel = getattr(host_kernels, name)

        def call(*args: Any) -> Any:
            return self._back(kernel(*(self._there(a) for a in args)))

        return call

    def _there(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return type(value)(self._there(v) for v in value)
        if value is None or isinstance(value, np.ndarray | int | float | str | bool):
            return value
        return self._to_host(value)

    def _back(self, value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(self._back(v) for v in value)
        return self._from_host(value) if isinstance(value, np.ndarray) else value
