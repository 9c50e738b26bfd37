"""What translating backends share: one Session over the interpreter's plan of the model.

The session owns everything that is not a framework's business: which initializers stay
framework values (trainable weights), the compiled call with its fallback to running eagerly
when the graph cannot be traced, and host fallback for values a framework cannot hold. A
framework's session supplies hooks:

* ``trainable``: float initializers stay framework values (parameters, variables) instead of
  host constants, so the native object can be fine-tuned;
* ``_scope()``: a context every call runs in (``torch.no_grad``, ``jax.enable_x64``, a device);
* ``_weights(parameters)``: the trainable initializers as framework values;
* ``_compile(fn)``: the compiled form of ``fn(*inputs)``, or ``None`` to run eagerly;
  ``untraceable`` lists the errors by which tracing says the graph depends on tensor values;
* ``_synchronize(outputs)``: wait for asynchronous work, so that timings are honest.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
import onnx

from modelport.backends.base import Backend, Session, failures_as, option
from modelport.errors import BackendError
from modelport.interpreter import plan_model
from modelport.ops.context import Framework, HostFallback

_FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
           onnx.TensorProto.BFLOAT16)


@dataclasses.dataclass(frozen=True)
class FoldOptions:
    """The options every translating backend takes."""

    fold: bool = option(True, "run the nodes whose inputs are all constants once, at prepare")


class TranslatingSession(Session):
    """Runs the planned model with a framework's namespace and kernels."""

    trainable: ClassVar[bool] = False
    untraceable: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, backend: TranslatingBackend, model: onnx.ModelProto, device: str,
                 options: FoldOptions) -> None:
        super().__init__(backend, model, device)
        self.options = options
        self.framework = backend.framework(device)
        # Only float initializers can be trained; the rest stay host constants, so that shapes
        # and axes among them remain Python values while tracing.
        trainable = ([t.name for t in model.graph.initializer if t.data_type in _FLOATS]
                     if self.trainable else [])
        self._names = [s.name for s in self.inputs]
        with self._scope():
            self.plan = plan_model(model, fold=options.fold, parameters=trainable)
            self.weights: dict[str, Any] = self._weights(self.plan.parameters)
            self._compiled = None if self.plan.draws_afresh else self._compile(
                lambda *inputs: self._graph(self.weights, *inputs))

    @property
    def compiled(self) -> bool:
        """Whether calls run the compiled graph (False: eagerly, operator by operator, because
        the backend was asked to, because the graph's control flow depends on tensor values, or
        because an unseeded random node must draw anew on every call)."""
        return self._compiled is not None

    # hooks ----------------------------------------------------------------------------------

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def _weights(self, parameters: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return {name: self.framework.asarray(value) for name, value in parameters.items()}

    def _compile(self, fn: Callable[..., list[Any]]) -> Callable[..., list[Any]] | None:
        return None

    def _synchronize(self, outputs: list[Any]) -> list[Any]:
        return outputs

    # the run --------------------------------------------------------------------------------

    def _graph(self, weights: Mapping[str, Any], *inputs: Any) -> list[Any]:
        """One run of the plan on framework values, in graph-input order: what compiling traces,
        and what the native objects call."""
        return self._run(weights, dict(zip(self._names, inputs, strict=True)))

    def _run(self, weights: Mapping[str, Any], feeds: Mapping[str, Any]) -> list[Any]:
        outputs = self.plan.run(self.framework, {**weights, **feeds} if weights else feeds)
        return [_convert(o, self._native) for o in outputs]

    def _to_native(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        with self._scope():
            return {name: _convert(value, self._native) for name, value in feeds.items()}

    def _native(self, value: Any) -> Any:
        if not isinstance(value, np.ndarray) or self.framework.is_native(value):
            return value
        try:
            return self.framework.asarray(value)
        except HostFallback:  # strings, int4, ...: the nodes that read it run on numpy
            return value

    def _execute(self, native_feeds: dict[str, Any]) -> list[Any]:
        with self._scope():
            if self._compiled is not None:
                inputs = [native_feeds[name] for name in self._names]
                if all(self.framework.is_native(v) for v in inputs):
                    untraceable: tuple[type[Exception], ...] = (*self.untraceable, BackendError)
                    try:
                        return self._synchronize(self._compiled(*inputs))
                    except untraceable:
                        self._compiled = None  # data-dependent control flow: run eagerly
            return self._synchronize(self._run(self.weights, native_feeds))

    def run_traced(self, feeds: Any) -> dict[str, np.ndarray]:
        """Run eagerly and return every value the graph computes, by name (for bisect)."""
        from modelport.inputs import check_feeds

        values: dict[str, Any] = dict(self.plan.constants)

        def record(step: Any, outs: tuple[Any, ...]) -> None:
            values.update({n: v for n, v in zip(step.outputs, outs, strict=False) if n})

        native = self._to_native(check_feeds(self.inputs, feeds))
        with failures_as(f"backend {self.backend.name!r} could not run the model"), \
                self._scope():
            self.plan.run(self.framework, {**self.weights, **native}, trace=record)
        return {name: _convert(v, self._host) for name, v in values.items()}

    def _to_numpy(self, native_outputs: list[Any]) -> dict[str, np.ndarray]:
        return super()._to_numpy([_convert(v, self._host) for v in native_outputs])

    def _host(self, value: Any) -> np.ndarray:
        fw = self.framework
        return np.asarray(fw.to_host(value) if fw.is_native(value) else value)


def _convert(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn`` on a value, on each value of a sequence, and not on an absent optional or a map."""
    if isinstance(value, list):
        return [_convert(v, fn) for v in value]
    if value is None or isinstance(value, dict):  # absent, or one of ZipMap's host maps
        return value
    return fn(value)


class TranslatingBackend(Backend):
    """A backend that translates the graph into a framework's own computation.

    A subclass gives ``framework(device)`` and, where it has more to offer than running the
    plan (a native object, compiling, saving), a ``session_type`` with the session's hooks.
    """

    kind = "translating"
    Options: ClassVar[type] = FoldOptions
    session_type: ClassVar[type[TranslatingSession]] = TranslatingSession

    def framework(self, device: str) -> Framework:
        raise NotImplementedError

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Session:
        return self.session_type(self, model, device, self.Options(**options))


@contextlib.contextmanager
def scopes(*contexts: contextlib.AbstractContextManager[Any]) -> Iterator[None]:
    """Several contexts as one, for a ``_scope`` hook."""
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        yield
