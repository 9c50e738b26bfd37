"""The host framework: numpy, which host values, constant folding and the numpy backend run on.

Its kernels (:mod:`modelport.ops.host_kernels`) are what the array API lacks, written over
numpy; other frameworks fall back to them for what they cannot compute
(:class:`~modelport.ops.context.HostFallback`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import array_api_compat.numpy
import numpy as np

from modelport.ops import host_kernels
from modelport.ops.context import Framework


class NumpyFramework(Framework):
    name = "numpy"
    xp = array_api_compat.numpy
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
