"""The backend registry: built-in backends, ones registered in code, and installed plugins.

Nothing here imports a framework. A backend's module is imported only when the backend is
asked for, so a missing framework makes that backend *unavailable with a reason* instead of
breaking ``import modelport``. Installed packages add backends through the
``modelport.backends`` entry-point group; each entry point names a ``Backend`` subclass or a
factory returning a ``Backend``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from modelport.backends.base import Backend, Session, describe_options
from modelport.errors import BackendUnavailableError

__all__ = ["Backend", "BackendInfo", "Session", "check_backends", "get_backend",
           "list_backends", "register_backend"]

ENTRY_POINT_GROUP = "modelport.backends"


@dataclass(frozen=True)
class BackendInfo:
    """What ``list_backends`` says about one backend."""

    name: str
    kind: str
    available: bool
    version: str | None = None
    reason: str | None = None
    install_hint: str | None = None
    source: str = "builtin"
    devices: tuple[str, ...] = ()
    options: tuple[dict[str, Any], ...] = ()  # name, type, default, help of each option

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "devices": list(self.devices), "options": list(self.options)}


@dataclass(frozen=True)
class _Entry:
    name: str
    load: Callable[[], Backend]
    requires: tuple[str, ...] = ()  # top-level modules that must be importable
    install_hint: str | None = None
    kind: str = "runtime"
    source: str = "builtin"
    ref: str | None = None  # "module:qualname" of a registered class or factory


def _builtin(name: str, module: str, cls: str, requires: tuple[str, ...], hint: str,
             kind: str = "runtime") -> _Entry:
    def load() -> Backend:
        backend: Backend = getattr(importlib.import_module(module), cls)()
        return backend

    return _Entry(name, load, requires, hint, kind)


_REGISTRY: dict[str, _Entry] = {
    entry.name: entry for entry in (
        _builtin("onnxruntime", "modelport.backends.onnxruntime", "OnnxRuntimeBackend",
                 ("onnxruntime",), "pip install onnxruntime"),
        _builtin("openvino", "modelport.backends.openvino", "OpenVinoBackend",
                 ("openvino",), "pip install 'modelport[openvino]'"),
        _builtin("reference", "modelport.backends.reference", "ReferenceBackend",
                 ("onnx",), "pip install onnx"),
        _builtin("numpy", "modelport.backends.numpy", "NumpyBackend",
                 ("numpy", "array_api_compat"), "pip install array-api-compat",
                 kind="translating"),
        _builtin("torch", "modelport.backends.torch", "TorchBackend",
                 ("torch", "array_api_compat"), "pip install 'modelport[torch]'",
                 kind="translating"),
        _builtin("jax", "modelport.backends.jax", "JaxBackend", ("jax",),
                 "pip install 'modelport[jax]'", kind="translating"),
        _builtin("tensorflow", "modelport.backends.tensorflow", "TensorFlowBackend",
                 ("tensorflow",), "pip install 'modelport[tensorflow]'", kind="translating"),
    )
}
_instances: dict[str, Backend] = {}
_plugins_loaded = False


def register_backend(name: str, backend: Backend | type[Backend] | Callable[[], Backend], *,
                     replace: bool = False, kind: str | None = None) -> None:
    """Add a backend under ``name``.

    Args:
        name: the name ``get_backend`` and ``-b`` on the command line will use.
        backend: a ``Backend`` instance, subclass, or a factory returning one.
        replace: allow replacing an existing backend of that name.
        kind: ``"runtime"`` or ``"translating"``; read from the backend class if not given.
    """
    _load_plugins()
    if name in _REGISTRY and not replace:
        raise ValueError(f"a backend named {name!r} is already registered; pass replace=True")
    if isinstance(backend, Backend):
        instance = backend

        def load() -> Backend:
            return instance
    else:
        load = backend
    resolved_kind = str(kind or getattr(backend, "kind", "runtime"))
    _REGISTRY[name] = _Entry(name, load, kind=resolved_kind, source="registered",
                             ref=_ref_of(backend))
    _instances.pop(name, None)


def _ref_of(obj: object) -> str | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:  # instances, lambdas, local classes
        return None
    return f"{module}:{qualname}"


def backend_ref(name: str) -> str | None:
    """How a worker process can rebuild a backend registered in code: "module:qualname".

    ``None`` for built-in and plugin backends, which every process finds by name.
    """
    _load_plugins()
    entry = _REGISTRY.get(name)
    return entry.ref if entry is not None else None


def resolve_ref(ref: str) -> Callable[[], Backend]:
    """The class or factory a ``backend_ref`` names."""
    module, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    factory: Callable[[], Backend] = obj
    return factory


def check_backends(names: Iterable[str]) -> None:
    """Refuse, before any work starts, backend names that are unknown or cannot load here.

    Cheap: no framework is imported (a missing one is found by its module spec). Every
    problem is reported at once.

    Raises:
        BackendUnavailableError: naming each bad backend and listing the known ones.
    """
    problems = [p for p in (_problem(name) for name in dict.fromkeys(names)) if p]
    if problems:
        raise BackendUnavailableError(f"{'; '.join(problems)} (known backends: "
                                      f"{', '.join(sorted(_REGISTRY))})")


def _problem(name: str) -> str | None:
    _load_plugins()
    entry = _REGISTRY.get(name)
    if entry is None:
        return f"unknown backend {name!r}"
    missing = [m for m in entry.requires if importlib.util.find_spec(m) is None]
    if missing:
        return (f"backend {name!r} needs {', '.join(missing)}, which is not installed: "
                f"{entry.install_hint}")
    return None


def backend_in_worker(name: str, ref: str | None) -> Backend:
    """In a worker process, the backend the parent called ``name``: a built-in or plugin by
    name, one the parent registered in code rebuilt from its ``backend_ref``."""
    if ref:
        register_backend(name, resolve_ref(ref), replace=True)
    return get_backend(name)


def get_backend(name: str) -> Backend:
    """The backend called ``name``.

    Raises:
        BackendUnavailableError: the name is unknown, or its framework is not installed (the
            message says what to install).
    """
    if name not in _instances:
        check_backends([name])
        entry = _REGISTRY[name]
        try:
            _instances[name] = entry.load()
        except ImportError as exc:
            raise BackendUnavailableError(f"backend {name!r} failed to import: {exc}"
                                          + (f"; try {entry.install_hint}"
                                             if entry.install_hint else "")) from exc
    return _instances[name]


def list_backends() -> list[BackendInfo]:
    """Every known backend with its availability, version, and what to do if it is missing.

    This imports each backend's framework to be sure it really loads.
    """
    _load_plugins()
    infos = []
    for name, entry in sorted(_REGISTRY.items()):
        try:
            backend = get_backend(name)
        except Exception as exc:  # a broken plugin must not hide the others
            infos.append(BackendInfo(name, entry.kind, False, reason=str(exc),
                                     install_hint=entry.install_hint, source=entry.source))
            continue
        infos.append(BackendInfo(name, backend.kind, True, version=backend.version(),
                                 source=entry.source, devices=tuple(backend.devices),
                                 options=tuple(describe_options(backend.Options))))
    return infos


def available_backends() -> list[str]:
    """Names of the backends that can run here."""
    return [info.name for info in list_backends() if info.available]


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            _REGISTRY[ep.name] = _Entry(ep.name, _plugin_loader(ep), source=f"plugin {ep.value}")


def _plugin_loader(ep: importlib.metadata.EntryPoint) -> Callable[[], Backend]:
    def load() -> Backend:
        obj = ep.load()
        backend = obj() if callable(obj) and not isinstance(obj, Backend) else obj
        if not isinstance(backend, Backend):
            raise BackendUnavailableError(f"plugin {ep.value} did not give a modelport Backend")
        return backend

    return load
