"""JAX: the ONNX graph as a pure function of (parameters, inputs), jitted.

``jax.jit`` specialises and caches the function per input-shape signature. Models whose
control flow depends on tensor values (an ``If`` on a computed condition, a ``Loop`` with a
computed trip count) cannot be traced; they run eagerly, operator by operator, and the session
says so (``Session.jitted``). 64-bit types are enabled inside the session's calls only, so a
float64 model computes in float64 without changing JAX's global configuration.

``Session.native()`` returns ``(fn, params)`` with ``fn(params, *inputs)``;
``Session.save(path)`` writes a ``jax.export`` serialization with a symbolic batch dimension.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import onnx

from modelport.backends.base import onnx_backend_api, option
from modelport.backends.jax import kernels
from modelport.backends.translating import TranslatingBackend, TranslatingSession
from modelport.errors import BackendError
from modelport.interpreter import plan_model
from modelport.ops.context import Framework, HostFallback


class JaxFramework(Framework):
    name = "jax"
    xp = jnp
    k = kernels
    overrides: ClassVar[Mapping[str, Callable[..., Any]]] = {"cond": kernels.cond}

    def is_native(self, value: Any) -> bool:
        return isinstance(value, jax.Array)

    def asarray(self, value: np.ndarray) -> Any:
        if value.dtype == object or value.dtype.kind in "SU":
            raise HostFallback("strings stay numpy arrays")
        return jnp.asarray(value)

    def to_host(self, value: Any) -> np.ndarray:
        if isinstance(value, jax.core.Tracer):
            raise BackendError("this operator needs a value known while tracing (a shape, an "
                               "axis, a condition); it cannot be jitted")
        return np.asarray(value)


_TRACING_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                   jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError)


class JaxSession(TranslatingSession):
    def __init__(self, backend: JaxBackend, model: onnx.ModelProto, device: str, *,
                 jit: bool) -> None:
        trainable = [t.name for t in model.graph.initializer
                     if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                                        onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)]
        with jax.enable_x64(True):
            plan = plan_model(model, parameters=trainable)
            super().__init__(backend, model, device, JaxFramework(), plan)
            self.params = {name: jnp.asarray(value) for name, value in plan.parameters.items()}
        self._names = [s.name for s in self.inputs]
        self._fn = self._function()
        # Weights enter the compiled program as constants: XLA then transforms them once
        # (layouts, folded arithmetic) instead of on every call; 2x on ResNet-50 at batch 1.
        weights = self.params
        self._jitted: Callable[..., Any] | None = (
            jax.jit(lambda *inputs: self._fn(weights, *inputs)) if jit else None)
        self.jitted = jit

    def _function(self) -> Callable[..., Any]:
        plan, framework, names = self.plan, self.framework, self._names

        def fn(params: dict[str, Any], *inputs: Any) -> tuple[Any, ...]:
            outputs = plan.run(framework, {**params, **dict(zip(names, inputs, strict=True))})
            return tuple(jnp.asarray(o) if isinstance(o, np.ndarray) and o.dtype != object
                         else o for o in outputs)

        return fn

    def _to_native(self, feeds: dict[str, np.ndarray]) -> Any:
        with jax.enable_x64(True):
            return super()._to_native(feeds)

    def _execute(self, native_feeds: dict[str, Any]) -> list[Any]:
        inputs = [native_feeds[n] for n in self._names]
        with jax.enable_x64(True):
            if self._jitted is not None and all(isinstance(v, jax.Array) for v in inputs):
                try:
                    outputs = self._jitted(*inputs)
                    return [jax.block_until_ready(o) for o in outputs]
                except (*_TRACING_ERRORS, BackendError):
                    self._jitted, self.jitted = None, False  # data-dependent: go eager
            return list(self._fn(self.params, *inputs))

    def _plan_feeds(self, native_feeds: dict[str, Any]) -> dict[str, Any]:
        return {**self.params, **native_feeds}

    def run_traced(self, feeds: Any) -> dict[str, np.ndarray]:
        with jax.enable_x64(True):
            return super().run_traced(feeds)

    def native(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """``(fn, params)``: ``fn(params, *inputs)`` is pure and can be jitted or differentiated."""
        return self._fn, self.params

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
        params = self.params
        fn = self._fn
        with jax.enable_x64(True):
            try:
                exported = export.export(jax.jit(lambda *x: fn(params, *x)))(*specs)
            except Exception as exc:
                raise BackendError(f"jax.export could not export the model with a symbolic "
                                   f"batch: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                                   ) from exc
            write_bytes(path, bytes(exported.serialize()))


@dataclasses.dataclass(frozen=True)
class JaxOptions:
    jit: bool = option(True, "trace the model with jax.jit per input shape (else eager)")


class JaxBackend(TranslatingBackend):
    name = "jax"
    devices = ("cpu", "gpu", "cuda")
    Options = JaxOptions

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> JaxSession:
        return JaxSession(self, model, device, **options)

    def supports_device(self, device: str) -> bool:
        kind = device.split(":")[0].lower()
        if kind == "cpu":
            return True
        try:
            return bool(jax.devices("gpu"))
        except RuntimeError:
            return False

    def version(self) -> str:
        return f"jax {jax.__version__}"


globals().update(onnx_backend_api(JaxBackend))
