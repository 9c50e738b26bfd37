"""The host framework: numpy, which host values, constant folding and the numpy backend run on.

Its kernels (:mod:`modelport.ops.host_kernels`) are what the array API lacks, written over
numpy; other frameworks fall back to them for what they cannot compute
(:class:`~modelport.ops.context.HostFallback`).
"""

from __future__ import annotations

import functools

import array_api_compat.numpy

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
