"""NumPy: the plain interpreter over the shared operator library, on the host framework that
constant folding runs on too. Slow next to an engine, but with no dependency beyond numpy it
runs anywhere."""

from __future__ import annotations

import numpy as np

from modelport.backends.base import onnx_backend_api
from modelport.backends.translating import TranslatingBackend
from modelport.ops.context import Framework
from modelport.ops.host import NumpyFramework


class NumpyBackend(TranslatingBackend):
    name = "numpy"

    def framework(self, device: str) -> Framework:
        return NumpyFramework()

    def version(self) -> str:
        return f"numpy {np.__version__}"


globals().update(onnx_backend_api(NumpyBackend))
