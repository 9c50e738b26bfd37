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

from modelport.backends.base import Backend, Session, onnx_backend_api, option
from modelport.errors import BackendError, one_line

# OpenVINO otherwise computes f32 models in bf16 / f16 on CPUs that have them, which breaks
# parity with the source framework; modelport compares, so it asks for full precision.
_DEFAULT_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


class OpenVinoSession(Session):
    def __init__(self, backend: OpenVinoBackend, model: onnx.ModelProto, device: str, *,
                 config: dict[str, Any] | None) -> None:
        super().__init__(backend, model, device)
        try:
            ov_model = backend.core.read_model(model.SerializeToString(), b"")
            self._compiled = backend.core.compile_model(
                ov_model, device.upper(), {**_DEFAULT_CONFIG, **(config or {})})
        except Exception as exc:
            raise BackendError(f"openvino could not load the model: {_message(exc)}") from exc
        self._request = self._compiled.create_infer_request()
        self._names = [o.name for o in self.outputs]
        # OpenVINO may reorder outputs; map each graph output by name.
        self._ports = [self._port(name) for name in self._names]

    def _port(self, name: str) -> Any:
        for port in self._compiled.outputs:
            if name in port.get_names():
                return port
        raise BackendError(f"openvino lost output {name!r} while compiling the model")

    def _execute(self, native_feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            results = self._request.infer(native_feeds)
        except Exception as exc:
            raise BackendError(f"openvino failed to run the model: {_message(exc)}") from exc
        # Copy: the request reuses its output buffers on the next call.
        return [np.array(results[port]) for port in self._ports]


@dataclasses.dataclass(frozen=True)
class OpenVinoOptions:
    config: dict[str, Any] | None = option(
        None, "compile_model properties, over modelport's INFERENCE_PRECISION_HINT=f32")


class OpenVinoBackend(Backend):
    name = "openvino"
    devices = ("cpu", "gpu", "npu")
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
