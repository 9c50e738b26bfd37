"""`import modelport` stays light, and the public API is what we say it is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import modelport

HEAVY = ("torch", "tensorflow", "jax", "onnxruntime", "openvino")


@pytest.mark.parametrize("modules", ["modelport, modelport.errors, modelport.export",
                                     "modelport.cli.main"])
def test_importing_modelport_imports_no_framework_or_runtime(modules: str) -> None:
    code = (f"import json, sys, {modules}; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert json.loads(out) == []


def test_public_api_is_curated() -> None:
    assert set(modelport.__all__) == {
        "Backend", "Session", "TensorSpec", "__version__", "backends", "bench", "bisect", "check",
        "compare", "errors", "export", "generate_inputs", "get_backend", "inspect",
        "list_backends", "load", "load_inputs", "register_backend"}
    for name in modelport.__all__:
        assert getattr(modelport, name) is not None


def test_function_names_survive_importing_their_modules() -> None:
    import modelport.benchmark
    import modelport.bisection
    import modelport.comparison

    assert callable(modelport.compare) and modelport.compare.__module__ == "modelport.comparison"
    assert callable(modelport.bench) and modelport.bench.__module__ == "modelport.benchmark"
    assert callable(modelport.bisect) and modelport.bisect.__module__ == "modelport.bisection"
