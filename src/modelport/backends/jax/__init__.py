"""JAX: the ONNX graph as a pure function of (parameters, inputs), jitted.

``jax.jit`` specialises and caches the function per input-shape signature. Models whose
control flow depends on tensor values (an ``If`` on a computed condition, a ``Loop`` with a
computed trip count) cannot be traced; they run eagerly, operator by operator, and the session
says so (``Session.compiled``). 64-bit types are enabled inside the session's calls only, so a
float64 model computes in float64 without changing JAX's global configuration. ``device`` may be
``"gpu"`` (or ``"cuda:1"``) where JAX sees one: weights, feeds and the arrays operators make
live there.

``Session.native()`` returns ``(fn, params)`` with ``fn(params, *inputs)``;
``Session.save(path)`` writes a ``jax.export`` serialization with a symbolic batch dimension.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from modelport.backends.base import onnx_backend_api, option
from modelport.backends.jax import kernels
from modelport.backends.translating import (
    FoldOptions,
    TranslatingBackend,
    TranslatingSession,
    scopes,
)
from modelport.errors import BackendError
from modelport.ops.context import Framework, HostFallback


class JaxFramework(Framework):
    name = "jax"
    xp = jnp
    k = kernels
    overrides: ClassVar[Mapping[str, Callable[..., Any]]] = {"cond": kernels.cond}

    def __init__(self, device: str = "cpu") -> None:
        kind, _, index = device.lower().partition(":")
        self.device = jax.devices("cpu" if kind == "cpu" else "gpu")[int(index or 0)]
        self.is_default = self.device == jax.devices()[0]

    def is_native(self, value: Any) -> bool:
        return isinstance(value, jax.Array)

    def asarray(self, value: np.ndarray) -> Any:
        if value.dtype == object or value.dtype.kind in "SU":
            raise HostFallback("strings stay numpy arrays")
        return jax.device_put(value, self.device)

    def tracing(self, value: Any) -> bool:
        return isinstance(value, jax.core.Tracer)

    def to_host(self, value: Any) -> np.ndarray:
        if isinstance(value, jax.core.Tracer):
            raise BackendError("this operator needs a value known while tracing (a shape, an "
                               "axis, a condition); it cannot be jitted")
        return np.asarray(value)


class JaxSession(TranslatingSession):
    trainable = True
    untraceable = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                   jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError)
    options: JaxOptions
    framework: JaxFramework

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        # 64-bit types for this session's calls only, not JAX's global configuration; the
        # arrays that operators make go to the session's device.
        x64 = jax.enable_x64(True)
        fw = self.framework
        return x64 if fw.is_default else scopes(x64, jax.default_device(fw.device))

    def _compile(self, fn: Callable[..., list[Any]]) -> Callable[..., list[Any]] | None:
        # Weights enter the compiled program as constants (fn closes over them): XLA then
        # transforms them once (layouts, folded arithmetic) instead of on every call; 2x on
        # ResNet-50 at batch 1.
        return jax.jit(fn) if self.options.jit else None

    def _synchronize(self, outputs: list[Any]) -> list[Any]:
        return [jax.block_until_ready(o) for o in outputs]

    def native(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """``(fn, params)``: ``fn(params, *inputs)`` is pure and can be jitted or differentiated."""
        graph = self._graph

        def fn(params: dict[str, Any], *inputs: Any) -> tuple[Any, ...]:
            return tuple(graph(params, *inputs))

        return fn, self.weights

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a ``jax.export`` serialization: call ``jax.export.deserialize(data).call(*x)``.

        The parameters are baked in; the leading dimension of each input with a symbolic one
        in the ONNX model is symbolic (``batch``).
        """
        from jax import export

        from modelport.io import write_bytes

        specs = []
        scope = export.SymbolicScope()
        for spec in self.inputs:
            dims = ["batch" if i == 0 and not isinstance(d, int) else
                    str(d) if isinstance(d, int) else "1" for i, d in enumerate(spec.shape or ())]
            shape = export.symbolic_shape(", ".join(dims), scope=scope) if dims else ()
            specs.append(jax.ShapeDtypeStruct(shape, spec.dtype))
        graph, weights = self._graph, self.weights
        with self._scope():
            try:
                exported = export.export(jax.jit(lambda *x: tuple(graph(weights, *x))))(*specs)
            except Exception as exc:
                raise BackendError(f"jax.export could not export the model with a symbolic "
                                   f"batch: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                                   ) from exc
            write_bytes(path, bytes(exported.serialize()))


@dataclasses.dataclass(frozen=True)
class JaxOptions(FoldOptions):
    jit: bool = option(True, "trace the model with jax.jit per input shape (else eager)")


class JaxBackend(TranslatingBackend):
    name = "jax"
    devices = ("cpu", "gpu", "cuda")
    Options = JaxOptions
    session_type = JaxSession

    def framework(self, device: str) -> JaxFramework:
        return JaxFramework(device)

    def supports_device(self, device: str) -> bool:
        kind, _, index = device.lower().partition(":")
        platform = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu"}.get(kind)
        try:
            return platform is not None and len(jax.devices(platform)) > int(index or 0)
        except (RuntimeError, ValueError):  # no such platform here; an index that is not one
            return False

    def version(self) -> str:
        return f"jax {jax.__version__}"


globals().update(onnx_backend_api(JaxBackend))
