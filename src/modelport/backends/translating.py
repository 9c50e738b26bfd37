"""What translating backends share: a Session over the interpreter's plan of the model."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from modelport.backends.base import Backend, Session, failures_as, option
from modelport.interpreter import Plan, plan_model
from modelport.ops.context import Framework, HostFallback


class TranslatingSession(Session):
    """Runs the planned model with a framework's namespace and kernels."""

    def __init__(self, backend: TranslatingBackend, model: Any, device: str,
                 framework: Framework, plan: Plan) -> None:
        super().__init__(backend, model, device)
        self.framework = framework
        self.plan = plan

    def _to_native(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        return {name: _convert(value, self._native) for name, value in feeds.items()}

    def _native(self, value: np.ndarray) -> Any:
        try:
            return self.framework.asarray(value)
        except HostFallback:  # strings, int4, ...: the nodes that read it run on numpy
            return value

    def _execute(self, native_feeds: dict[str, Any]) -> list[Any]:
        return self.plan.run(self.framework, native_feeds)

    def _plan_feeds(self, native_feeds: dict[str, Any]) -> dict[str, Any]:
        """Everything the plan reads: the feeds, and the weights where they are framework
        values (parameters of a module, variables)."""
        return native_feeds

    def run_traced(self, feeds: Any) -> dict[str, np.ndarray]:
        """Run eagerly and return every value the graph computes, by name (for bisect)."""
        from modelport.inputs import check_feeds

        fw = self.framework
        values: dict[str, Any] = dict(self.plan.constants)

        def record(step: Any, outs: tuple[Any, ...]) -> None:
            values.update({n: v for n, v in zip(step.outputs, outs, strict=False) if n})

        native = self._to_native(check_feeds(self.inputs, feeds))
        with failures_as(f"backend {self.backend.name!r} could not run the model"):
            self.plan.run(fw, self._plan_feeds(native), trace=record)
        return {name: _convert(v, self._host) for name, v in values.items()}

    def _to_numpy(self, native_outputs: list[Any]) -> dict[str, np.ndarray]:
        return super()._to_numpy([_convert(v, self._host) for v in native_outputs])

    def _host(self, value: Any) -> np.ndarray:
        fw = self.framework
        return np.asarray(fw.to_host(value) if fw.is_native(value) else value)


def _convert(value: Any, fn: Any) -> Any:
    if isinstance(value, list):
        return [_convert(v, fn) for v in value]
    if value is None:
        return None
    return fn(value)


@dataclasses.dataclass(frozen=True)
class FoldOptions:
    fold: bool = option(True, "run the nodes whose inputs are all constants once, at prepare")


class TranslatingBackend(Backend):
    """A backend that translates the graph into a framework's own computation."""

    kind = "translating"
    Options: ClassVar[type] = FoldOptions

    def framework(self, device: str) -> Framework:
        raise NotImplementedError

    def _prepare(self, model: Any, device: str, **options: Any) -> Session:
        plan = plan_model(model, fold=options["fold"])
        return TranslatingSession(self, model, device, self.framework(device), plan)
