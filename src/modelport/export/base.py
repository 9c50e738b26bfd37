"""What every exporter shares: the report of its attempts and of the verification against
the source, the atomic write, and the loading of ``FILE.py:FUNCTION`` specs.

An exporter built on one converter (tf2onnx, skl2onnx, onnxmltools, jax2onnx) hands
:func:`export_verified` a ``convert`` callable and the cases to verify; the file replaces the
target only when every case agrees with the source framework.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.comparison import OutputComparison, compare_arrays
from modelport.errors import ExportError, InputError, ModelportError, one_line
from modelport.io import usual_mode

if TYPE_CHECKING:
    import onnx


@dataclass
class ExportAttempt:
    exporter: str
    ok: bool
    seconds: float
    error: str | None = None


@dataclass
class VerificationCase:
    """The exported model against its source on one set of inputs."""

    batch: int | None
    inputs: dict[str, list[int]]
    outputs: list[OutputComparison]
    output_shapes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)


@dataclass
class Verification:
    backend: str
    atol: float
    rtol: float
    cases: list[VerificationCase] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def add_case(self, batch: int | None, feeds: Mapping[str, np.ndarray],
                 actual: Mapping[str, np.ndarray],
                 expected: Sequence[np.ndarray] | Mapping[str, np.ndarray], *,
                 label: int | None = None, ties: np.ndarray | None = None) -> None:
        """Compare ``actual`` (by output name, in graph order) with the source's outputs, given
        in graph order or by name.

        ``label`` is the position of a class-label output and ``ties`` marks the rows where
        the source's two best classes score within ``atol`` of each other: a label that
        differs there is the float32 arithmetic of the file breaking a tie the other way, so
        it is counted and reported, not failed. A label differing anywhere else fails.
        """
        names = list(actual)
        mismatch = ""
        if isinstance(expected, Mapping):
            if set(names) != set(expected):
                mismatch = (f"ONNX gives outputs {', '.join(names)}, the source "
                            f"{', '.join(sorted(expected))}")
            names = [n for n in names if n in expected]
            expected = [expected[n] for n in names]
        elif len(names) != len(expected):
            mismatch = f"ONNX gives {len(names)} outputs, the source {len(expected)}"
        outputs = [compare_arrays(name, actual[name], want, atol=self.atol, rtol=self.rtol)
                   for name, want in zip(names, expected, strict=False)]
        if label is not None and ties is not None and label < len(outputs):
            _count_ties(outputs[label], np.asarray(actual[names[label]]),
                        np.asarray(expected[label]), ties, self.atol)
        if mismatch:
            outputs.append(OutputComparison("(outputs)", False, False, False, note=mismatch))
        self.cases.append(VerificationCase(
            batch, {k: list(v.shape) for k, v in feeds.items()}, outputs,
            {k: list(np.shape(v)) for k, v in actual.items()}))


def _count_ties(result: OutputComparison, got: np.ndarray, want: np.ndarray, ties: np.ndarray,
                atol: float) -> None:
    if result.passed or got.shape != want.shape or got.shape[:1] != ties.shape:
        return
    differs = (got != want).reshape(len(got), -1).any(axis=1)
    unexplained = int(np.sum(differs & ~ties))
    result.passed = unexplained == 0 and result.dtype_match
    result.note = (f"{int(differs.sum())} of {len(got)} rows differ from the source's label"
                   + (f", {unexplained} of them where its best two classes are not within "
                      f"{atol:g}" if unexplained else
                      f", each where its best two classes score within {atol:g} (a tie the "
                      f"file's float32 arithmetic breaks the other way)"))


@dataclass
class ExportResult:
    path: str
    exporter: str | None
    attempts: list[ExportAttempt]
    verification: Verification | None = None
    external_data: list[str] = field(default_factory=list)
    written: bool = True  # False when verification failed: ``path`` was left as it was

    @property
    def written_line(self) -> str:
        if not self.written:
            return (f"verification failed, so nothing was written to {self.path} (a file "
                    f"already there is kept; --no-verify writes the export as it is)")
        extra = f" and {', '.join(self.external_data)}" if self.external_data else ""
        return f"wrote {self.path}{extra}"

    @property
    def passed(self) -> bool:
        return self.exporter is not None and (self.verification is None
                                              or self.verification.passed)

    def summary(self) -> str:
        """A few lines for people: the attempts, then max abs / rel error per output."""
        lines = [f"{a.exporter} exporter: " + ("ok" if a.ok else f"failed: {a.error}")
                 for a in self.attempts]
        lines.append(self.written_line)
        if self.verification is not None:
            v = self.verification
            lines.append(f"verification with {v.backend} (atol {v.atol:g}, rtol {v.rtol:g}):")
            for case in v.cases:
                for o in case.outputs:
                    verdict = "ok" if o.passed else f"DIFFERS {o.note}".rstrip()
                    lines.append(f"  inputs {case.inputs} {o.name}: max abs "
                                 f"{_g(o.max_abs_error)} max rel {_g(o.max_rel_error)} {verdict}")
        lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        if self.verification is not None:
            data["verification"]["passed"] = self.verification.passed
            for case, raw in zip(self.verification.cases, data["verification"]["cases"],
                                 strict=True):
                raw["passed"] = case.passed
        return data


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


@dataclass
class Case:
    """One set of inputs and the source framework's outputs on them, in graph output order.

    ``label`` and ``ties`` as in :meth:`Verification.add_case`.
    """

    feeds: dict[str, np.ndarray]
    expected: list[np.ndarray] | dict[str, np.ndarray]
    batch: int | None
    label: int | None = None
    ties: np.ndarray | None = None


Adapt = Callable[[dict[str, Any]], dict[str, np.ndarray]]


def export_verified(target: str | os.PathLike[str], exporter: str,
                    convert: Callable[[], onnx.ModelProto], cases: Sequence[Case], *,
                    verify: bool, backend: str, atol: float, rtol: float,
                    dynamic_batch: bool = True, adapt: Adapt | None = None) -> ExportResult:
    """Convert with one converter, verify the file on ``cases``, then write it atomically.

    ``adapt`` turns what the backend returns into arrays comparable with the source's (a
    sequence of maps from ZipMap into a matrix). With ``dynamic_batch``, the first axis of
    every input and of every output shown to follow the batch is named ``batch``.

    Raises:
        ExportError: the converter failed (its error, in one line), or the file does not run.
    """
    target = Path(target)
    start = time.perf_counter()
    try:
        with quiet():
            model = convert()
    except ModelportError:
        raise
    except Exception as exc:  # converters raise anything; the message is what we can give
        raise ExportError(f"{exporter} could not convert the model: "
                          f"{failure_summary(exc)}") from exc
    unknown = undefined_operators(model)
    if unknown:
        raise ExportError(f"{exporter} wrote {len(unknown)} node(s) of operators that ONNX does "
                          f"not define (the source operations it cannot convert): "
                          f"{', '.join(unknown)}")
    attempts = [ExportAttempt(exporter, True, time.perf_counter() - start)]
    if dynamic_batch:
        _name_batch(model.graph.input, lambda name: True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as tmp:
        scratch = Path(tmp) / target.name
        files = _save(model, scratch)
        result = ExportResult(str(target), exporter, attempts, external_data=files[1:])
        if verify:
            result.verification = verify_file(scratch, backend, cases, atol, rtol, adapt)
            if dynamic_batch and result.verification.passed:
                batches = {c.batch for c in result.verification.cases}
                if len(batches) > 1 and None not in batches:
                    verification = result.verification
                    _name_batch(model.graph.output,
                                lambda name: _follows_batch(verification, name), fixed=True)
                    files = _save(model, scratch)
        result.written = result.passed
        if result.written:
            move_into_place(scratch, files, target)
    return result


def undefined_operators(model: onnx.ModelProto) -> list[str]:
    """Nodes of the standard domains whose operator no schema defines, as ``Op (node name)``:
    tf2onnx, for one, leaves a TensorFlow operation it cannot convert in the graph as is."""
    import onnx.defs

    return [f"{n.op_type} ({n.name or 'unnamed'})" for n in model.graph.node
            if n.domain in ("", "ai.onnx", "ai.onnx.ml")
            and not onnx.defs.has(n.op_type, n.domain)]


def verify_file(path: Path, backend: str, cases: Sequence[Case], atol: float, rtol: float,
                adapt: Adapt | None = None) -> Verification:
    """Run the file with ``backend`` on every case and compare with the source's outputs."""
    from modelport.backends import get_backend

    try:
        session = get_backend(backend).prepare(path)
    except ModelportError as exc:
        raise ExportError(f"the exported model does not load in {backend}: {exc}") from exc
    verification = Verification(backend, atol, rtol)
    for case in cases:
        try:
            actual = session.run(case.feeds)
        except ModelportError as exc:
            raise ExportError(f"the exported model does not run in {backend}: {exc}") from exc
        verification.add_case(case.batch, case.feeds, adapt(actual) if adapt else actual,
                              case.expected, label=case.label, ties=case.ties)
    return verification


def _follows_batch(verification: Verification, name: str) -> bool:
    return all(c.output_shapes.get(name, [None])[:1] == [c.batch] for c in verification.cases)


def _name_batch(values: Any, chosen: Callable[[str], bool], *, fixed: bool = False) -> None:
    """Name axis 0 ``batch`` where it is dynamic (converters write ``unk__3``, ``N`` or
    nothing) and, with ``fixed``, where it is a number (outputs the verification showed to
    follow the batch, which some converters declare as 1)."""
    for value in values:
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type") or not tensor.HasField("shape") \
                or not tensor.shape.dim or not chosen(value.name):
            continue
        dim = tensor.shape.dim[0]
        if dim.HasField("dim_value") and not fixed:
            continue
        dim.Clear()
        dim.dim_param = "batch"


# Weights beyond this go to a data file beside the model: protobuf refuses messages over 2 GB.
_SINGLE_FILE_LIMIT = 1_800_000_000


def _save(model: onnx.ModelProto, scratch: Path) -> list[str]:
    """Write the model into its scratch folder; return the file names, the model first."""
    import onnx

    large = sum(t.ByteSize() for t in model.graph.initializer) > _SINGLE_FILE_LIMIT
    onnx.save_model(model, scratch, save_as_external_data=large,
                    location=f"{scratch.name}.data" if large else None)
    files = sorted(p.name for p in scratch.parent.iterdir() if p != scratch)
    return [scratch.name, *files]


def move_into_place(scratch: Path, files: Sequence[str], target: Path) -> None:
    """The data files first, so the model never points at missing data."""
    os.chmod(scratch, usual_mode(target, 0o666))
    for name in files[1:]:
        os.replace(scratch.parent / name, target.parent / name)
    os.replace(scratch, target)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Converters print progress to stdout, which carries modelport's results: send it to
    stderr. Their deprecation chatter is silenced; the report says what happened."""
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning, UserWarning):
            warnings.simplefilter("ignore", category)
        yield


def failure_summary(exc: BaseException, limit: int = 300) -> str:
    """One line: the error, and its root cause where the converter wrapped one."""
    def line(e: BaseException) -> str:
        text = re.sub(r"\x1b\[[0-9;]*m", "", one_line(e))  # exporters colour their messages
        return f"{type(e).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"

    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    return line(exc) if root is exc else f"{line(exc)} (caused by {line(root)})"


def load_spec(spec: str) -> Any:
    """What ``file.py:function`` or ``package.module:function`` names, called without
    arguments when it is a function or a class (an object is returned as it is)."""
    import importlib
    import importlib.util
    import inspect

    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise ExportError(f"{spec!r}: expected FILE.py:FUNCTION or MODULE:FUNCTION")
    if where.endswith(".py"):
        file = Path(where)
        if not file.is_file():
            raise ExportError(f"{file}: no such file")
        module_spec = importlib.util.spec_from_file_location(file.stem, file)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(file.parent.resolve()))
        try:
            module_spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(file.parent.resolve()))
    else:
        module = importlib.import_module(where)
    found = getattr(module, attr, None)
    if found is None:
        raise ExportError(f"{where} has no attribute {attr!r}")
    return found() if inspect.isfunction(found) or inspect.isclass(found) else found


def resample_rows(rows: int, batch: int, seed: int = 1) -> np.ndarray:
    """Row indices for a second batch drawn from the example's rows, so that categories and
    ranges stay those the model was shown."""
    return np.random.default_rng(seed).integers(0, rows, size=batch)


def example_arrays(inputs: Any, names: Sequence[str]) -> list[np.ndarray]:
    """The example inputs (an array, a list or tuple of them, or a dict by input name) as
    numpy arrays in the order of ``names``."""
    if isinstance(inputs, Mapping):
        if set(inputs) != set(names):
            raise InputError(f"the example inputs are named {', '.join(map(str, inputs))}; "
                             f"the model's inputs are {', '.join(names)}")
        values = [inputs[n] for n in names]
    else:
        values = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
    if len(values) != len(names):
        raise InputError(f"{len(values)} example inputs for the inputs {', '.join(names)}")
    return [np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in values]


def default_names(stem: str, count: int) -> list[str]:
    """``stem``, or ``stem_0``... zero-padded, so that sorting them (as TensorFlow does a
    dict's keys) keeps their order."""
    width = len(str(count - 1))
    return [stem] if count == 1 else [f"{stem}_{i:0{width}d}" for i in range(count)]


def batch_of(arrays: Sequence[Any]) -> int | None:
    """The size of axis 0 when every input (array or tensor) with one shares it."""
    sizes = {a.shape[0] for a in arrays if getattr(a, "ndim", 0) > 0}
    return sizes.pop() if len(sizes) == 1 else None


def source_cases(arrays: list[np.ndarray], case: Callable[[list[np.ndarray]], Case],
                 dynamic_batch: bool, second_batch: int | None) -> list[Case]:
    """``case`` of the example and, with a dynamic batch, of ``second_batch`` rows drawn from
    it (``2 * batch + 1`` by default)."""
    cases = [case(arrays)]
    batch = batch_of(arrays)
    if dynamic_batch and batch is not None:
        cases.append(case(resized_batch(arrays, second_batch or 2 * batch + 1)))
    return cases


def resized_batch(arrays: Sequence[np.ndarray], batch: int) -> list[np.ndarray]:
    """``batch`` rows drawn from the example's, floats with a little noise, so that the second
    case is neither the first nor out of the ranges the model was shown."""
    index = resample_rows(len(arrays[0]), batch)
    noise = np.random.default_rng(2)
    return [(a[index] + noise.normal(0, 0.01, (batch, *a.shape[1:])) * np.abs(a).mean()
             ).astype(a.dtype) if a.dtype.kind == "f" else a[index] for a in arrays]


def run_source(source: Callable[..., Any], names: Sequence[str],
               arrays: Sequence[np.ndarray]) -> Any:
    """The source's outputs on the example; its failure is the caller's to fix."""
    try:
        return source(*arrays)
    except Exception as exc:  # the example does not fit the model
        shapes = ", ".join(f"{n} {a.dtype}{list(a.shape)}"
                           for n, a in zip(names, arrays, strict=True))
        raise InputError(f"the model fails on the example inputs ({shapes}): "
                         f"{type(exc).__name__}: {exc}") from exc
