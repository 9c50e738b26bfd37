"""The ONNX reference evaluator (``onnx.reference``): slow, pure numpy, the spec made code."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from modelport.backends.base import Backend, Session, onnx_backend_api
from modelport.errors import BackendError, one_line


class ReferenceSession(Session):
    def __init__(self, backend: Backend, model: onnx.ModelProto, device: str) -> None:
        super().__init__(backend, model, device)
        try:
            self._evaluator = ReferenceEvaluator(model)
        except Exception as exc:
            raise BackendError(f"onnx.reference could not load the model: {one_line(exc)}") from exc
        self._names = [o.name for o in self.outputs]

    def _execute(self, native_feeds: dict[str, np.ndarray]) -> list[Any]:
        try:
            return list(self._evaluator.run(self._names, native_feeds))
        except Exception as exc:
            raise BackendError(f"onnx.reference failed to run the model: {one_line(exc)}") from exc


class ReferenceBackend(Backend):
    name = "reference"

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Session:
        return ReferenceSession(self, model, device, **options)

    def version(self) -> str:
        return f"onnx {onnx.__version__}"


globals().update(onnx_backend_api(ReferenceBackend))
