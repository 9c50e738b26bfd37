"""The layers hold: the operator library and the interpreter sit below every backend.

``modelport.ops`` (the shared operators, the contract in ``ops/context.py`` and the host
framework) and ``modelport.interpreter`` import nothing from ``modelport.backends`` and no
framework, anywhere in a module (imports inside functions included), so a new framework builds
on them and no import cycle can run through a backend.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "modelport"
GROUND_FLOOR = sorted([*(SRC / "ops").glob("*.py"), SRC / "interpreter.py"])
FORBIDDEN = ("modelport.backends", "torch", "tensorflow", "jax", "openvino", "onnxruntime")


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", GROUND_FLOOR, ids=lambda p: p.name)
def test_the_ground_floor_imports_no_backend_and_no_framework(path: Path) -> None:
    bad = [m for m in imported_modules(path)
           if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == [], f"{path.name} imports {bad}"


def test_every_framework_declares_its_kernels_and_overrides() -> None:
    """Overrides are a declared table of callables, never looked up by name on a module."""
    from modelport.backends.jax import JaxFramework
    from modelport.backends.tensorflow import TensorFlowFramework
    from modelport.backends.torch import TorchFramework
    from modelport.ops.host import NumpyFramework

    frameworks = [NumpyFramework(), TorchFramework("cpu"), JaxFramework(), TensorFlowFramework()]
    for fw in frameworks:
        assert all(callable(fn) for fn in fw.overrides.values()), fw.name
        for kernel in ("pad", "conv", "pool", "scatter_nd", "cast", "unique"):
            assert callable(getattr(fw.k, kernel)), (fw.name, kernel)
