"""TensorFlow: the ONNX graph as TensorFlow ops, run as a ``tf.function``.

The seed's call works unchanged but for the import::

    import modelport.backends.tensorflow as backend   # was: import onnx_tf.backend as backend
    backend.prepare(model).run(x)

Inputs and outputs keep ONNX's layout (NCHW); kernels that TensorFlow offers only
channels-last on CPU transpose inside. ``run`` traces a ``tf.function`` per input-shape
signature; graphs with data-dependent control flow run eagerly (``Session.compiled`` says
which). ``Session.native()`` returns a ``tf.Module`` whose float initializers are
``tf.Variable``s, with a ``serve`` function; ``Session.save(dir)`` writes a SavedModel whose
signature uses the ONNX input and output names and a ``None`` batch dimension.
Options for ``prepare``: ``function=False`` runs eagerly; ``jit_compile`` compiles the
``tf.function`` with XLA (by default for models with tree ensembles only); ``fold=False``
keeps constant subgraphs in the traced program.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

# TensorFlow's C++ start-up chatter (oneDNN notices, CPU features) is not modelport's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import onnx
import tensorflow as tf

from modelport.backends.base import onnx_backend_api, option
from modelport.backends.tensorflow import kernels, namespace
from modelport.backends.translating import FoldOptions, TranslatingBackend, TranslatingSession
from modelport.errors import BackendError
from modelport.io import usual_mode
from modelport.ops.context import Framework, HostFallback

_DTYPES: dict[int, tf.DType] = {
    onnx.TensorProto.FLOAT: tf.float32, onnx.TensorProto.DOUBLE: tf.float64,
    onnx.TensorProto.FLOAT16: tf.float16, onnx.TensorProto.BFLOAT16: tf.bfloat16,
    onnx.TensorProto.INT8: tf.int8, onnx.TensorProto.INT16: tf.int16,
    onnx.TensorProto.INT32: tf.int32, onnx.TensorProto.INT64: tf.int64,
    onnx.TensorProto.UINT8: tf.uint8, onnx.TensorProto.UINT16: tf.uint16,
    onnx.TensorProto.UINT32: tf.uint32, onnx.TensorProto.UINT64: tf.uint64,
    onnx.TensorProto.BOOL: tf.bool, onnx.TensorProto.COMPLEX64: tf.complex64,
    onnx.TensorProto.COMPLEX128: tf.complex128,
}


def tf_dtype(elem_type: int) -> tf.DType:
    """TensorFlow's dtype; the others (strings, float8, int4, ...) stay numpy arrays."""
    if elem_type not in _DTYPES:
        raise HostFallback(f"TensorFlow computes no {onnx.TensorProto.DataType.Name(elem_type)}")
    return _DTYPES[elem_type]


class TensorFlowFramework(Framework):
    name = "tensorflow"
    xp = namespace
    k = kernels
    overrides: ClassVar[Mapping[str, Callable[..., Any]]] = {
        "relu": kernels.relu, "sigmoid": kernels.sigmoid, "gelu": kernels.gelu,
        "softmax": kernels.softmax, "cond": kernels.cond}

    def is_native(self, value: Any) -> bool:
        return tf.is_tensor(value)

    def asarray(self, value: np.ndarray) -> Any:
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind in "SU":
            raise HostFallback("strings stay numpy arrays")
        dtype = tf_dtype(onnx.helper.np_dtype_to_tensor_dtype(array.dtype))
        if dtype == tf.bfloat16:
            return tf.cast(tf.constant(array.astype(np.float32)), tf.bfloat16)
        return tf.constant(array, dtype=dtype)

    def tracing(self, value: Any) -> bool:
        return not tf.executing_eagerly()

    def to_host(self, value: Any) -> np.ndarray:
        if not tf.executing_eagerly() and not hasattr(value, "numpy"):
            raise BackendError("this operator needs a value known while tracing (a shape, an "
                               "axis, a condition); it runs eagerly instead")
        if value.dtype == tf.bfloat16:
            import ml_dtypes

            return np.asarray(tf.cast(value, tf.float32).numpy()).astype(ml_dtypes.bfloat16)
        return np.asarray(value.numpy())

    def dtype(self, elem_type: int) -> Any:
        return tf_dtype(elem_type)

    def elem_type(self, value: Any) -> int:
        if tf.is_tensor(value):
            if value.dtype == tf.bfloat16:
                return onnx.TensorProto.BFLOAT16
            return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(value.dtype.as_numpy_dtype)))
        return super().elem_type(value)


class OnnxModule(tf.Module):
    """An ONNX graph as a ``tf.Module``; its float initializers are ``tf.Variable``s."""

    def __init__(self, session: TensorFlowSession) -> None:
        super().__init__(name="onnx_model")
        self._graph = session._graph
        self._outputs = [s.name for s in session.outputs]
        self.weights = session.weights
        self._specs = session.inputs

    @property
    def serve(self) -> Any:
        """The serving function: named inputs with a ``None`` batch, outputs by name."""
        if "_serve_fn" not in self.__dict__:
            specs = [tf.TensorSpec([None if not isinstance(d, int) else d
                                    for d in (s.shape or ())],
                                   tf_dtype(s.elem_type), name=_safe(s.name))
                     for s in self._specs]
            self.__dict__["_serve_fn"] = tf.function(self._serve, input_signature=specs,
                                                     autograph=False)
        return self.__dict__["_serve_fn"]

    def __call__(self, *inputs: Any) -> list[Any]:
        return self._graph(self.weights, *inputs)

    def _serve(self, *inputs: Any) -> dict[str, Any]:
        return {_safe(name): tf.identity(value, name=_safe(name))
                for name, value in zip(self._outputs, self(*inputs), strict=True)}


def _safe(name: str) -> str:
    """A TensorFlow-legal name for an ONNX one (SavedModel signatures forbid some chars)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-/]", "_", name)
    return cleaned if re.match(r"[A-Za-z]", cleaned) else f"t_{cleaned}"


class TensorFlowSession(TranslatingSession):
    trainable = True
    # what tracing raises when the graph needs a tensor's value (BackendError from to_host)
    untraceable = (TypeError, ValueError, tf.errors.OperatorNotAllowedInGraphError)
    options: TensorFlowOptions

    def __init__(self, backend: TensorFlowBackend, model: onnx.ModelProto, device: str,
                 options: TensorFlowOptions) -> None:
        super().__init__(backend, model, device, options)
        self.module = OnnxModule(self)

    def _weights(self, parameters: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return {name: tf.Variable(value, name=_safe(name))
                for name, value in super()._weights(parameters).items()}

    def _compile(self, fn: Callable[..., list[Any]]) -> Callable[..., list[Any]] | None:
        # autograph=False: the interpreter is plain Python with no tensor-dependent branches.
        jit_compile = self.options.jit_compile
        if jit_compile is None:
            jit_compile = _walks_trees(self.model)
        return (tf.function(fn, jit_compile=jit_compile, autograph=False)
                if self.options.function else None)

    def native(self) -> tf.Module:
        """The ``tf.Module``: call it with tensors in graph-input order, or use ``serve``."""
        return self.module

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a SavedModel: ``tf.saved_model.load(path).signatures["serving_default"]``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            try:
                signature = self.module.serve.get_concrete_function()
                tf.saved_model.save(self.module, str(scratch),
                                    signatures={"serving_default": signature})
            except Exception as exc:
                raise BackendError(f"TensorFlow could not save the model with a None batch: "
                                   f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
            os.chmod(scratch, usual_mode(target, 0o777))
            if target.exists():
                shutil.rmtree(target)
            os.replace(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _walks_trees(model: onnx.ModelProto) -> bool:
    """Whether the graph has an ai.onnx.ml tree ensemble. XLA fuses a tree walk's gathers
    and comparisons (a 100-tree forest 78 -> 16 ms, 500 LightGBM trees 471 -> 89 ms at batch
    10,000), while on convolutional models it helps large batches only (ResNet-50: slower at
    batch 1), so it is not on for every model."""
    return any(node.domain == "ai.onnx.ml" and node.op_type.startswith("TreeEnsemble")
               for node in model.graph.node)


@dataclasses.dataclass(frozen=True)
class TensorFlowOptions(FoldOptions):
    function: bool = option(True, "trace a tf.function per input shape (else eager)")
    jit_compile: bool | None = option(
        None, "compile the tf.function with XLA; by default only for models with tree "
              "ensembles, whose walk XLA fuses (3.5-5x faster; docs/benchmarks.md)")


class TensorFlowBackend(TranslatingBackend):
    name = "tensorflow"
    Options = TensorFlowOptions
    session_type = TensorFlowSession

    def framework(self, device: str) -> TensorFlowFramework:
        return TensorFlowFramework()

    def version(self) -> str:
        return f"tensorflow {tf.__version__}"


globals().update(onnx_backend_api(TensorFlowBackend))
