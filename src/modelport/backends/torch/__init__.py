"""PyTorch: the ONNX graph as an ``nn.Module`` built on the shared operator library.

``Session.native()`` returns that module: float initializers are ``nn.Parameter``s (so it can
be fine-tuned), the others constants. ``Session.save(path)`` writes a ``torch.export`` program
(``.pt2``) with a dynamic batch dimension. ``device`` may be ``"cuda"`` (or ``"cuda:1"``) where
a GPU exists: weights, feeds and every tensor an operator makes live there.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import array_api_compat.torch as xp
import numpy as np
import onnx
import torch

from modelport.backends.base import onnx_backend_api
from modelport.backends.torch import kernels
from modelport.backends.translating import (
    FoldOptions,
    TranslatingBackend,
    TranslatingSession,
    scopes,
)
from modelport.errors import BackendError
from modelport.ops.context import Framework, HostFallback

_DTYPES: dict[int, torch.dtype] = {
    onnx.TensorProto.FLOAT: torch.float32, onnx.TensorProto.DOUBLE: torch.float64,
    onnx.TensorProto.FLOAT16: torch.float16, onnx.TensorProto.BFLOAT16: torch.bfloat16,
    onnx.TensorProto.INT8: torch.int8, onnx.TensorProto.INT16: torch.int16,
    onnx.TensorProto.INT32: torch.int32, onnx.TensorProto.INT64: torch.int64,
    onnx.TensorProto.UINT8: torch.uint8, onnx.TensorProto.UINT16: torch.uint16,
    onnx.TensorProto.UINT32: torch.uint32, onnx.TensorProto.UINT64: torch.uint64,
    onnx.TensorProto.BOOL: torch.bool, onnx.TensorProto.COMPLEX64: torch.complex64,
    onnx.TensorProto.COMPLEX128: torch.complex128,
    onnx.TensorProto.FLOAT8E4M3FN: torch.float8_e4m3fn,
    onnx.TensorProto.FLOAT8E4M3FNUZ: torch.float8_e4m3fnuz,
    onnx.TensorProto.FLOAT8E5M2: torch.float8_e5m2,
    onnx.TensorProto.FLOAT8E5M2FNUZ: torch.float8_e5m2fnuz,
}
_ELEM_TYPES = {v: k for k, v in _DTYPES.items()}
# numpy cannot hold these torch dtypes natively: move them as same-width integers.
_VIEWS = {torch.bfloat16: torch.int16, torch.float8_e4m3fn: torch.uint8,
          torch.float8_e4m3fnuz: torch.uint8, torch.float8_e5m2: torch.uint8,
          torch.float8_e5m2fnuz: torch.uint8}


def torch_dtype(elem_type: int) -> torch.dtype:
    if elem_type not in _DTYPES:
        raise HostFallback(f"torch has no dtype for {onnx.TensorProto.DataType.Name(elem_type)}")
    return _DTYPES[elem_type]


def from_numpy(value: np.ndarray, device: Any = "cpu") -> torch.Tensor:
    """A numpy array as a tensor; raises HostFallback for dtypes torch lacks (int4, ...)."""
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "SU":
        raise HostFallback("strings stay numpy arrays")
    elem = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
    dtype = torch_dtype(elem)
    if dtype in _VIEWS:
        raw = array.view(np.int16 if dtype == torch.bfloat16 else np.uint8)
        return torch.from_numpy(np.require(raw, requirements=["C", "W"])).view(dtype).to(device)
    # A writable, C-ordered copy where needed; ascontiguousarray would make 0-d arrays 1-d.
    return torch.from_numpy(np.require(array, requirements=["C", "W"])).to(device)


def to_numpy(value: torch.Tensor) -> np.ndarray:
    tensor = value.detach().cpu()
    if tensor.dtype in _VIEWS:
        raw = tensor.view(_VIEWS[tensor.dtype]).numpy()
        return raw.view(onnx.helper.tensor_dtype_to_np_dtype(_ELEM_TYPES[tensor.dtype]))
    return tensor.resolve_conj().numpy()


class TorchFramework(Framework):
    name = "torch"
    xp = xp
    k = kernels
    overrides: ClassVar[Mapping[str, Callable[..., Any]]] = {
        "relu": kernels.relu, "sigmoid": kernels.sigmoid, "gelu": kernels.gelu,
        "softmax": kernels.softmax, "log_softmax": kernels.log_softmax,
        "layer_norm": kernels.layer_norm, "batch_norm": kernels.batch_norm}

    def __init__(self, device: str = "cpu") -> None:
        self.device = torch.device(device)

    def is_native(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor)

    def tracing(self, value: Any) -> bool:
        return torch.compiler.is_compiling() or torch.compiler.is_exporting()

    def lacks_kernel(self, error: Exception) -> bool:
        # torch's words for a dtype without a kernel (most uint16/32/64 arithmetic)
        return isinstance(error, RuntimeError) and "not implemented for" in str(error)

    def asarray(self, value: np.ndarray) -> Any:
        return from_numpy(value, self.device)

    def to_host(self, value: Any) -> np.ndarray:
        return to_numpy(value)

    def dtype(self, elem_type: int) -> Any:
        return torch_dtype(elem_type)

    def elem_type(self, value: Any) -> int:
        if isinstance(value, torch.Tensor):
            return _ELEM_TYPES[value.dtype]
        return super().elem_type(value)


class OnnxModule(torch.nn.Module):
    """An ONNX graph as a module; its float initializers are parameters."""

    def __init__(self, graph: Callable[..., list[Any]], weights: Mapping[str, Any],
                 inputs: list[str], outputs: list[str]) -> None:
        super().__init__()
        self._graph = graph
        self.input_names, self.output_names = inputs, outputs
        self._keys: dict[str, str] = {}
        for i, (name, parameter) in enumerate(weights.items()):
            self._keys[name] = f"p{i}"
            self.register_parameter(f"p{i}", parameter)

    def forward(self, *inputs: torch.Tensor) -> Any:
        weights = {n: getattr(self, k) for n, k in self._keys.items()}
        device = inputs[0].device if inputs else torch.device("cpu")
        # Tensors the operators make (indices, masks, constants) go where the inputs are.
        with contextlib.nullcontext() if device.type == "cpu" else device:
            outputs = self._graph(weights, *inputs)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


class TorchSession(TranslatingSession):
    trainable = True
    framework: TorchFramework

    def __init__(self, backend: TorchBackend, model: onnx.ModelProto, device: str,
                 options: FoldOptions) -> None:
        super().__init__(backend, model, device, options)
        self.module = OnnxModule(self._graph, self.weights, self._names,
                                 [o.name for o in self.outputs]).eval()

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        device = self.framework.device
        # a device as a context: the tensors that operators make are made there
        return torch.no_grad() if device.type == "cpu" else scopes(torch.no_grad(), device)

    def _weights(self, parameters: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return {name: torch.nn.Parameter(t) for name, t in super()._weights(parameters).items()}

    def _synchronize(self, outputs: list[Any]) -> list[Any]:
        device = self.framework.device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return outputs

    def native(self) -> torch.nn.Module:
        """The model as an ``nn.Module``: call it with tensors in graph-input order."""
        return self.module

    def save(self, path: str | os.PathLike[str], batch: int = 2) -> None:
        """Write a ``torch.export`` program (``.pt2``) with a dynamic batch dimension."""
        from modelport.inputs import generate_inputs
        from modelport.io import atomic_path

        feeds = generate_inputs(self.inputs, batch=batch)
        example = tuple(self.framework.asarray(feeds[s.name]) for s in self.inputs)
        batch_dim = torch.export.Dim("batch", min=1)
        dynamic = tuple({0: batch_dim} if s.shape and not isinstance(s.shape[0], int) else {}
                        for s in self.inputs)
        try:
            program = torch.export.export(self.module, example,
                                          dynamic_shapes={"inputs": dynamic})
        except Exception as exc:
            raise BackendError(f"torch.export could not export the model with a dynamic "
                               f"batch: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                               ) from exc
        with atomic_path(path) as tmp:
            torch.export.save(program, str(tmp))


class TorchBackend(TranslatingBackend):
    name = "torch"
    devices = ("cpu", "cuda")
    session_type = TorchSession

    def framework(self, device: str) -> TorchFramework:
        return TorchFramework(device)

    def supports_device(self, device: str) -> bool:
        kind = device.split(":")[0].lower()
        return kind == "cpu" or (kind == "cuda" and torch.cuda.is_available())

    def version(self) -> str:
        return f"torch {torch.__version__}"


globals().update(onnx_backend_api(TorchBackend))
