"""What translating backends share: a Session over the interpreter's plan of the model."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.backends.base import Backend, Session
from modelport.interpreter import Framework, HostFallback, Plan, plan_model


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

    def _to_numpy(self, native_outputs: list[Any]) -> dict[str, np.ndarray]:
        fw = self.framework
        values = [_convert(v, lambda t: np.asarray(fw.to_host(t)) if fw.is_native(t) else
                           np.asarray(t)) for v in native_outputs]
        return super()._to_numpy(values)


def _convert(value: Any, fn: Any) -> Any:
    if isinstance(value, list):
        return [_convert(v, fn) for v in value]
    if value is None:
        return None
    return fn(value)


class TranslatingBackend(Backend):
    """A backend that translates the graph into a framework's own computation."""

    kind = "translating"

    def framework(self, device: str) -> Framework:
        raise NotImplementedError

    def _prepare(self, model: Any, device: str, **options: Any) -> Session:
        plan = plan_model(model, fold=options.pop("fold", True))
        return TranslatingSession(self, model, device, self.framework(device), plan)
