"""ONNX Runtime, the reference deployment engine (CPU execution provider by default).

Options for ``prepare``: ``providers`` (a list of execution providers, default: CUDA when
``device="cuda"``, else CPU), ``intra_op_num_threads``, ``graph_optimization_level``
(``"disable"``, ``"basic"``, ``"extended"``, ``"all"``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from modelport.backends.base import Backend, Session, onnx_backend_api, option
from modelport.errors import BackendError, one_line

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class OnnxRuntimeSession(Session):
    def __init__(self, backend: Backend, model: onnx.ModelProto, device: str, *,
                 providers: list[str] | None, intra_op_num_threads: int | None,
                 graph_optimization_level: str) -> None:
        if graph_optimization_level not in _LEVELS:
            raise BackendError(f"graph_optimization_level {graph_optimization_level!r}: one of "
                               f"{', '.join(_LEVELS)}")
        super().__init__(backend, model, device)
        options = ort.SessionOptions()
        options.log_severity_level = 4  # modelport reports errors itself; ORT would repeat them
        options.graph_optimization_level = _LEVELS[graph_optimization_level]
        if intra_op_num_threads:
            options.intra_op_num_threads = intra_op_num_threads
        if providers is None:
            providers = (["CUDAExecutionProvider"] if device.startswith("cuda") else []) + [
                "CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(model.SerializeToString(), options,
                                                 providers=providers)
        except Exception as exc:  # ORT raises its own exception types from C++
            raise BackendError(f"onnxruntime could not load the model: {one_line(exc)}") from exc
        self._names = [o.name for o in self._session.get_outputs()]

    def _execute(self, native_feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self._session.run(self._names, native_feeds)
        except Exception as exc:
            raise BackendError(f"onnxruntime failed to run the model: {one_line(exc)}") from exc


@dataclasses.dataclass(frozen=True)
class OnnxRuntimeOptions:
    providers: list[str] | None = option(
        None, "execution providers in order (default: CUDA for a cuda device, then CPU)")
    intra_op_num_threads: int | None = option(None, "threads per operator (default: ORT's)")
    graph_optimization_level: str = option("all", "disable, basic, extended or all")


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    devices = ("cpu", "cuda")
    Options = OnnxRuntimeOptions

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Session:
        return OnnxRuntimeSession(self, model, device, **options)

    def supports_device(self, device: str) -> bool:
        kind = device.split(":")[0].lower()
        return kind == "cpu" or (kind == "cuda" and "CUDAExecutionProvider"
                                 in ort.get_available_providers())

    def version(self) -> str:
        return str(ort.__version__)


globals().update(onnx_backend_api(OnnxRuntimeBackend))
