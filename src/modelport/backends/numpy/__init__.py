"""NumPy: the plain interpreter over the shared operator library, and what constant folding
runs on. Slow next to an engine, but with no dependency beyond numpy it runs anywhere."""

from __future__ import annotations

from typing import Any

import array_api_compat.numpy as xp
import numpy as np

from modelport.backends.base import onnx_backend_api
from modelport.backends.numpy import kernels
from modelport.backends.translating import TranslatingBackend
from modelport.interpreter import Framework


class NumpyFramework(Framework):
    name = "numpy"
    xp = xp
    k = kernels

    def asarray(self, value: np.ndarray) -> Any:
        return value


class NumpyBackend(TranslatingBackend):
    name = "numpy"

    def framework(self, device: str) -> Framework:
        return NumpyFramework()

    def version(self) -> str:
        return f"numpy {np.__version__}"


globals().update(onnx_backend_api(NumpyBackend))
