"""A fifth framework from public parts: the array-API reference namespace plus the host kernels.

``array_api_strict`` rejects anything outside the array API standard, so this test also proves
that the shared operators ask of ``xp`` only what the standard defines (the rest goes through
``ctx.k``). It is the example of docs/adding-a-framework.md, run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.backends.translating import TranslatingBackend
from modelport.ops.context import Framework, HostFallback
from modelport.ops.host import HostKernels

xps = pytest.importorskip("array_api_strict")
Array = type(xps.asarray(0))


class StrictFramework(Framework):
    name = "array_api_strict"
    xp = xps
    k = HostKernels(to_host=np.from_dlpack, from_host=lambda a: StrictFramework().asarray(a))

    def is_native(self, value: Any) -> bool:
        return isinstance(value, Array)

    def asarray(self, value: np.ndarray) -> Any:
        try:
            return xps.asarray(value)
        except (TypeError, ValueError) as exc:  # strings, float16, int4...: numpy runs them
            raise HostFallback(str(exc)) from exc

    def to_host(self, value: Any) -> np.ndarray:
        return np.from_dlpack(value)

    def dtype(self, elem_type: int) -> Any:
        name = np.dtype(super().dtype(elem_type)).name
        if not hasattr(xps, name):
            raise HostFallback(f"the array API has no {name}")
        return getattr(xps, name)

    def elem_type(self, value: Any) -> int:
        return super().elem_type(self.to_host(value) if self.is_native(value) else value)


class StrictBackend(TranslatingBackend):
    name = "array_api_strict"

    def framework(self, device: str) -> Framework:
        return StrictFramework()


@pytest.mark.parametrize("model", ["seed", "resnet", "bert"])
def test_a_backend_on_the_strict_namespace_agrees_with_onnxruntime(
        model: str, zoo: dict[str, Path], register) -> None:  # type: ignore[no-untyped-def]
    from models.zoo import feeds_for

    register("array_api_strict", StrictBackend)
    path = zoo[model]
    feeds = feeds_for(path, 2, seed=0)
    report = modelport.compare(path, ["onnxruntime", "array_api_strict"], inputs=feeds,
                               atol=1e-4, rtol=1e-4)
    (result,) = report.results
    assert result.error is None and result.passed, result
    assert all(o.max_abs_error is not None and o.max_abs_error <= 1e-4 for o in result.outputs)
