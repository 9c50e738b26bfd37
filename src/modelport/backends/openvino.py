"""OpenVINO: Intel's inference engine, reading ONNX directly.

Options for ``prepare``: ``config``, a dict of OpenVINO properties passed to
``compile_model`` (e.g. ``{"INFERENCE_NUM_THREADS": 2}``). Models are compiled with dynamic
shapes where the ONNX model has them, so one session serves every batch size.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import onnx
import openvino as ov

from modelport.backends import packed
from modelport.backends.base import Backend, Session, onnx_backend_api, option
from modelport.errors import BackendError, UnsupportedOperatorError, one_line

# The types numpy lacks that OpenVINO has (it has no int2 and no fnuz float8), by ONNX type.
_OV_TYPES: dict[int, ov.Type] = {
    onnx.TensorProto.BFLOAT16: ov.Type.bf16, onnx.TensorProto.FLOAT8E4M3FN: ov.Type.f8e4m3,
    onnx.TensorProto.FLOAT8E5M2: ov.Type.f8e5m2, onnx.TensorProto.FLOAT8E8M0: ov.Type.f8e8m0,
    onnx.TensorProto.FLOAT4E2M1: ov.Type.f4e2m1, onnx.TensorProto.INT4: ov.Type.i4,
    onnx.TensorProto.UINT4: ov.Type.u4}
_ONNX_TYPES = {ov_type: onnx_type for onnx_type, ov_type in _OV_TYPES.items()}

# OpenVINO otherwise computes f32 models in bf16 / f16 on CPUs that have them, which breaks
# parity with the source framework; modelport compares, so it asks for full precision.
_DEFAULT_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


class OpenVinoSession(Session):
    def __init__(self, backend: OpenVinoBackend, model: onnx.ModelProto, device: str, *,
                 config: dict[str, Any] | None, model_path: str | None = None) -> None:
        super().__init__(backend, model, device)
        try:
            ov_model = (backend.core.read_model(model_path) if model_path else
                        backend.core.read_model(model.SerializeToString(), b""))
            self._compiled = backend.core.compile_model(
                ov_model, device.upper(), {**_DEFAULT_CONFIG, **(config or {})})
        except Exception as exc:
            message = _message(exc)
            # Operators its ONNX front end has no rule for (ai.onnx.ml, most contrib ones):
            # the model cannot run here, which is not the same as a broken model.
            error = UnsupportedOperatorError if "No conversion rule found" in message \
                else BackendError
            raise error(f"openvino could not load the model: {message}") from exc
        self._request = self._compiled.create_infer_request()
        self._names = [o.name for o in self.outputs]
        # OpenVINO may reorder outputs; map each graph output by name.
        self._ports = [self._port(name) for name in self._names]
        # ... and drops inputs that no output needs (CastLike's `like`): they are not fed.
        self._fed = {name for port in self._compiled.inputs for name in port.get_names()}

    def _port(self, name: str) -> Any:
        for port in self._compiled.outputs:
            if name in port.get_names():
                return port
        raise BackendError(f"openvino lost output {name!r} while compiling the model")

    def _to_native(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        return {name: _to_tensor(array) for name, array in feeds.items() if name in self._fed}

    def _execute(self, native_feeds: dict[str, Any]) -> list[np.ndarray]:
        try:
            self._request.infer(native_feeds)
        except Exception as exc:
            raise BackendError(f"openvino failed to run the model: {_message(exc)}") from exc
        return [_from_tensor(self._request.get_tensor(port)) for port in self._ports]


def _to_tensor(array: np.ndarray) -> Any:
    """``array``, or an OpenVINO tensor holding its bytes where numpy lacks its type (OpenVINO
    would convert an ml_dtypes array element by element into the wrong type)."""
    onnx_type = packed.lacking_type(array.dtype)
    if onnx_type is None:
        return array
    if onnx_type not in _OV_TYPES:
        raise BackendError(f"openvino has no {array.dtype} tensors")
    tensor = ov.Tensor(_OV_TYPES[onnx_type], ov.Shape(array.shape))
    tensor.data.view(np.uint8).reshape(-1)[:] = np.frombuffer(packed.to_bytes(array), np.uint8)
    return tensor


def _from_tensor(tensor: Any) -> np.ndarray:
    """A copy (the request reuses its buffers), ml_dtypes where OpenVINO's view is only bytes
    (packed int4, bfloat16 seen as float16)."""
    onnx_type = _ONNX_TYPES.get(tensor.get_element_type())
    if onnx_type is None:
        return np.array(tensor.data)
    return packed.from_bytes(onnx_type, list(tensor.get_shape()), tensor.data.tobytes())


@dataclasses.dataclass(frozen=True)
class OpenVinoOptions:
    config: dict[str, Any] | None = option(
        None, "compile_model properties, over modelport's INFERENCE_PRECISION_HINT=f32")


class OpenVinoBackend(Backend):
    name = "openvino"
    devices = ("cpu", "gpu", "npu")
    reads_files = True
    Options = OpenVinoOptions

    def __init__(self) -> None:
        self.core = ov.Core()

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Session:
        return OpenVinoSession(self, model, device, **options)

    def supports_device(self, device: str) -> bool:
        return device.upper() in self.core.available_devices

    def version(self) -> str:
        return str(ov.get_version()).split("-")[0]  # drop the build hash


def _message(exc: BaseException) -> str:
    """OpenVINO's message without the C++ source locations and the documentation plug."""
    text = re.sub(r"(Exception from|Check '.*?' failed at) src/\S+:\d+:\s*", "", one_line(exc))
    return text.split(" To facilitate the conversion")[0]


globals().update(onnx_backend_api(OpenVinoBackend))
