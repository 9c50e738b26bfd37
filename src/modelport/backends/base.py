"""The backend protocol: a ``Backend`` prepares a model into a ``Session`` that runs it.

A session's work is split in three so that benchmarks can time only the framework:
``_to_native`` converts checked numpy feeds to the framework's values, ``_execute`` runs the
model and waits for it (synchronised), ``_to_numpy`` brings the outputs back.

Every backend is also reachable through the ``onnx.backend`` API (:func:`onnx_backend_api`), so
``modelport.backends.onnxruntime.prepare(model).run([x])`` works like the classic
``onnx_tf.backend`` and ``caffe2.python.onnx.backend`` calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelport.errors import BackendError, ModelportError, one_line
from modelport.inputs import Feeds, check_feeds
from modelport.model import (
    ModelSource,
    TensorSpec,
    has_external_data,
    input_specs,
    load,
    output_specs,
)

if TYPE_CHECKING:
    import onnx


@contextlib.contextmanager
def failures_as(what: str) -> Iterator[None]:
    """Any exception of an engine or a kernel (``KeyError`` for a graph cycle, ``RuntimeError``
    for an integer division by zero, ...) becomes a ``BackendError`` saying ``what`` failed
    and why, so that callers catch one kind of error and a traceback stays an internal bug's."""
    try:
        yield
    except ModelportError:
        raise
    except Exception as exc:
        raise BackendError(f"{what}: {type(exc).__name__}: {one_line(exc)}") from exc


class Session(ABC):
    """A model prepared by one backend, ready to run on numpy feeds."""

    def __init__(self, backend: Backend, model: onnx.ModelProto, device: str) -> None:
        self.backend = backend
        self.model = model
        self.device = device
        self.inputs: list[TensorSpec] = input_specs(model)
        self.outputs: list[TensorSpec] = output_specs(model)

    def run(self, feeds: Feeds) -> dict[str, np.ndarray]:
        """Run the model.

        Args:
            feeds: arrays by input name, or a sequence in graph-input order.

        Returns:
            every graph output by name, as numpy arrays.

        Raises:
            InputError: a feed has an unknown or missing name, or the wrong dtype or shape.
            BackendError: the backend failed on this model and these feeds.
        """
        checked = check_feeds(self.inputs, feeds)
        with failures_as(f"backend {self.backend.name!r} could not run the model"):
            return self._to_numpy(self._execute(self._to_native(checked)))

    def timed_call(self, feeds: Feeds) -> Callable[[], object]:
        """A call that runs the model on already-converted feeds and waits for the result.

        This is what :mod:`modelport.benchmark` times: input conversion happens once, here.
        """
        native = self._to_native(check_feeds(self.inputs, feeds))
        return lambda: self._execute(native)

    def native(self) -> Any:
        """The framework's own object for this model (a module, a function), where one exists."""
        raise BackendError(f"backend {self.backend.name!r} has no native object to hand back")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the framework's own artifact (.pt2, SavedModel, ...), where one exists."""
        raise BackendError(f"backend {self.backend.name!r} cannot save a native artifact")

    def _to_native(self, feeds: dict[str, np.ndarray]) -> Any:
        return feeds

    @abstractmethod
    def _execute(self, native_feeds: Any) -> Any: ...

    def _to_numpy(self, native_outputs: Any) -> dict[str, np.ndarray]:
        """Outputs by name; the default takes a sequence in graph-output order."""
        return dict(zip([o.name for o in self.outputs], native_outputs, strict=True))


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The backend takes no options."""


def option(default: Any, help: str) -> Any:
    """A field of a backend's options dataclass: its default and what it does."""
    return dataclasses.field(default=default, metadata={"help": help})


def parse_options(backend: str, options_type: type, given: Mapping[str, Any]) -> Any:
    """``given`` as the backend's typed options; an unknown name or a value of the wrong type
    is an error naming the valid options."""
    hints = typing.get_type_hints(options_type)
    known = {f.name for f in dataclasses.fields(options_type)}
    valid = ", ".join(f"{n}: {_type_name(hints[n])}" for n in sorted(known)) or "none"
    problems = [f"no option {name!r}" for name in given if name not in known]
    problems += [f"option {name!r} takes {_type_name(hints[name])}, not {value!r}"
                 for name, value in given.items() if name in known
                 and not _is_instance(value, hints[name])]
    if problems:
        raise BackendError(f"backend {backend!r}: {'; '.join(problems)} (its options: {valid})")
    return options_type(**given)


def describe_options(options_type: type) -> list[dict[str, Any]]:
    """The options a backend takes, for ``modelport backends``: name, type, default, help."""
    hints = typing.get_type_hints(options_type)
    return [{"name": f.name, "type": _type_name(hints[f.name]), "default": f.default,
             "help": f.metadata.get("help", "")} for f in dataclasses.fields(options_type)]


def _is_instance(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_instance(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is Any:
        return True
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin or annotation)


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is None and hasattr(annotation, "__name__"):
        return str(annotation.__name__)
    return str(annotation).replace("typing.", "")


class Backend(ABC):
    """Something that runs ONNX models. Subclasses set ``name`` and implement ``_prepare``.

    ``Options`` is a frozen dataclass of the options ``prepare`` takes (see :func:`option`),
    the one place their defaults live; ``_prepare`` receives every field, checked, as keywords.
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "runtime"  # "runtime" wraps an ONNX engine; "translating" converts
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    Options: ClassVar[type] = NoOptions
    # An engine that reads a model file itself: a model with external data reaches
    # ``_prepare`` unread, with ``model_path=`` the file (see ``prepare``).
    reads_files: ClassVar[bool] = False

    def prepare(self, model: ModelSource, device: str = "cpu", **options: Any) -> Session:
        """Check and prepare a model; the result runs it as often as wanted.

        Args:
            model: a path, bytes, or ``onnx.ModelProto``; paths are loaded safely.
            device: ``"cpu"``, or a device the backend lists in ``devices``.
            **options: the fields of the backend's ``Options`` (``modelport backends`` lists
                them); an unknown one is an error.
        """
        if not self.supports_device(device):
            raise BackendError(f"backend {self.name!r} does not run on {device!r}; it supports "
                               f"{', '.join(self.devices)}")
        typed = parse_options(self.name, self.Options, options)
        given = {f.name: getattr(typed, f.name) for f in dataclasses.fields(typed)}
        if self.reads_files and isinstance(model, str | os.PathLike):
            # The engine reads the weights from the model's folder itself (checked safe here,
            # not read): a model over protobuf's 2 GiB never becomes one buffer.
            proto = load(model, load_external_data=False)
            if has_external_data(proto):
                given["model_path"] = os.fspath(model)
        else:
            proto = load(model)
        with failures_as(f"backend {self.name!r} could not prepare the model"):
            return self._prepare(proto, device, **given)

    @abstractmethod
    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Session: ...

    def supports_device(self, device: str) -> bool:
        return device.split(":")[0].lower() in self.devices

    def version(self) -> str | None:
        """The version of the engine or framework behind this backend."""
        return None


# --------------------------------------------------------------------------------------------
# the onnx.backend adapter


def onnx_backend_api(make_backend: Callable[[], Backend]) -> dict[str, Any]:
    """Module-level functions that make a backend module an ``onnx.backend`` module.

    Use as ``globals().update(onnx_backend_api(MyBackend))``; it defines ``prepare``,
    ``run_model``, ``run_node``, ``supports_device`` and ``is_compatible``.
    """
    from onnx.backend.base import Backend as OnnxBackend
    from onnx.backend.base import BackendRep, namedtupledict

    class Rep(BackendRep):
        def __init__(self, session: Session) -> None:
            self.session = session

        def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
            outputs = self.session.run(inputs)
            names = [o.name for o in self.session.outputs]
            return namedtupledict("Outputs", names)(*(outputs[n] for n in names))

    class Adapter(OnnxBackend):
        @classmethod
        def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> Rep:
            return Rep(make_backend().prepare(model, device=device.lower(), **kwargs))

        @classmethod
        def run_model(cls, model: Any, inputs: Any, device: str = "CPU",
                      **kwargs: Any) -> tuple[Any, ...]:
            return cls.prepare(model, device, **kwargs).run(inputs)

        @classmethod
        def supports_device(cls, device: str) -> bool:
            return make_backend().supports_device(device)

    return {
        "prepare": Adapter.prepare,
        "run_model": Adapter.run_model,
        "run_node": Adapter.run_node,
        "supports_device": Adapter.supports_device,
        "is_compatible": Adapter.is_compatible,
        "BackendRep": Rep,
        "OnnxBackend": Adapter,
    }

