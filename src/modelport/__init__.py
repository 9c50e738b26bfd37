"""modelport: run a model trained in one framework in any other, and prove the answers agree.

``import modelport`` imports no framework and no runtime; each is imported when a backend or
exporter that needs it is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it, imported on first access (PEP 562)
_LAZY = {
    "load": "modelport.model",
    "check": "modelport.model",
    "inspect": "modelport.model",
    "TensorSpec": "modelport.model",
    "get_backend": "modelport.backends",
    "list_backends": "modelport.backends",
    "register_backend": "modelport.backends",
    "Backend": "modelport.backends",
    "Session": "modelport.backends",
    "compare": "modelport.comparison",
    "bench": "modelport.benchmark",
    "bisect": "modelport.bisection",
    "generate_inputs": "modelport.inputs",
    "load_inputs": "modelport.inputs",
}
_SUBMODULES = {"errors", "export", "backends"}

__all__ = sorted([*_LAZY, *_SUBMODULES, "__version__"])

if TYPE_CHECKING:
    from modelport import backends, errors, export
    from modelport.backends import (
        Backend,
        Session,
        get_backend,
        list_backends,
        register_backend,
    )
    from modelport.benchmark import bench
    from modelport.bisection import bisect
    from modelport.comparison import compare
    from modelport.inputs import generate_inputs, load_inputs
    from modelport.model import TensorSpec, check, inspect, load


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"modelport.{name}")
    else:
        raise AttributeError(f"module 'modelport' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
