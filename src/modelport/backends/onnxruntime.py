"""ONNX Runtime, the reference deployment engine (CPU execution provider by default).

Options for ``prepare``: ``providers`` (a list of execution providers, default: CUDA when
``device="cuda"``, else CPU), ``intra_op_num_threads``, ``graph_optimization_level``
(``"disable"``, ``"basic"``, ``"extended"``, ``"all"``).
"""

from __future__ import annotations

import ctypes
import dataclasses
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto

from modelport.backends import packed
from modelport.backends.base import Backend, Session, onnx_backend_api, option
from modelport.errors import BackendError, one_line

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def _to_ort_value(array: Any) -> Any:
    """An OrtValue in ONNX's layout for every feed of a model that has a type numpy lacks."""
    if not isinstance(array, np.ndarray):
        raise BackendError("onnxruntime takes sequences and optionals only in models without "
                           "bfloat16, float8, float4, int4 or int2 tensors")
    onnx_type = packed.lacking_type(array.dtype)
    if onnx_type is None:
        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array))
    raw = packed.to_bytes(array)
    value = ort.OrtValue.ortvalue_from_shape_and_type(array.shape, onnx_type)
    ctypes.memmove(value.data_ptr(), raw, len(raw))  # CPU memory that ORT allocated
    return value


def _from_ort_value(value: Any) -> Any:
    if not value.is_tensor() or value.element_type() not in packed.NUMPY_LACKS:
        return value.numpy()
    raw = ctypes.string_at(value.data_ptr(), value.tensor_size_in_bytes())
    return packed.from_bytes(value.element_type(), value.shape(), raw)


def _lacking(ort_type: str) -> bool:
    """``"tensor(bfloat16)"`` and the like: an ORT type string naming a type numpy lacks."""
    name = ort_type.removeprefix("tensor(").removesuffix(")").upper()
    return getattr(TensorProto, name, None) in packed.NUMPY_LACKS


class OnnxRuntimeSession(Session):
    def __init__(self, backend: Backend, model: onnx.ModelProto, device: str, *,
                 providers: list[str] | None, intra_op_num_threads: int | None,
                 graph_optimization_level: str, model_path: str | None = None) -> None:
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
            self._session = ort.InferenceSession(model_path or model.SerializeToString(),
                                                 options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types from C++
            raise BackendError(f"onnxruntime could not load the model: {one_line(exc)}") from exc
        self._names = [o.name for o in self._session.get_outputs()]
        # A type numpy lacks travels as an OrtValue in ONNX's byte layout (see packed.py);
        # other models keep run()'s faster path.
        self._by_bytes = any(_lacking(arg.type) for arg in
                             self._session.get_inputs() + self._session.get_outputs())

    def _to_native(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        if not self._by_bytes:
            return feeds
        return {name: _to_ort_value(array) for name, array in feeds.items()}

    def _execute(self, native_feeds: dict[str, Any]) -> list[Any]:
        try:
            if self._by_bytes:
                return self._session.run_with_ort_values(self._names, native_feeds)
            return self._session.run(self._names, native_feeds)
        except Exception as exc:
            raise BackendError(f"onnxruntime failed to run the model: {one_line(exc)}") from exc

    def _to_numpy(self, native_outputs: list[Any]) -> dict[str, np.ndarray]:
        if self._by_bytes:
            native_outputs = [_from_ort_value(value) for value in native_outputs]
        return super()._to_numpy(native_outputs)


@dataclasses.dataclass(frozen=True)
class OnnxRuntimeOptions:
    providers: list[str] | None = option(
        None, "execution providers in order (default: CUDA for a cuda device, then CPU)")
    intra_op_num_threads: int | None = option(None, "threads per operator (default: ORT's)")
    graph_optimization_level: str = option("all", "disable, basic, extended or all")


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    devices = ("cpu", "cuda")
    reads_files = True
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
