"""Compare: the same inputs through several backends, each checked against one baseline.

Agreement follows ``numpy.isclose``: ``|actual - expected| <= atol + rtol * |expected|``, with
NaN matching NaN and an infinity matching the same infinity. For every output the report also
gives the tolerance that would have been needed (the smallest ``atol`` at the given ``rtol``,
and the smallest ``rtol`` at the given ``atol``), so a failing comparison says how far off it
was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modelport.errors import ModelportError
from modelport.model import ModelSource, load

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4


@dataclass
class OutputComparison:
    """One output of one backend against the baseline."""

    name: str
    passed: bool
    shape_match: bool
    dtype_match: bool
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    needed_atol: float | None = None
    needed_rtol: float | None = None
    mismatched: int = 0  # elements outside tolerance
    size: int = 0
    nan_mismatch: int = 0  # NaN on one side only
    inf_mismatch: int = 0  # an infinity on one side only, or of the other sign
    note: str = ""


@dataclass
class BackendComparison:
    backend: str
    passed: bool
    outputs: list[OutputComparison] = field(default_factory=list)
    error: str | None = None  # the backend failed to prepare or run


@dataclass
class CompareReport:
    baseline: str
    atol: float
    rtol: float
    inputs: dict[str, list[int]]
    results: list[BackendComparison]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, **asdict(self)}


def compare_arrays(name: str, actual: Any, expected: Any, *, atol: float = DEFAULT_ATOL,
                   rtol: float = DEFAULT_RTOL) -> OutputComparison:
    """Compare one output with its expected value, as described in the module docstring."""
    a, e = np.asarray(actual), np.asarray(expected)
    shape_match, dtype_match = a.shape == e.shape, a.dtype == e.dtype
    if not shape_match:
        return OutputComparison(name, False, False, dtype_match,
                                note=f"shape {list(a.shape)} != expected {list(e.shape)}")
    if not (_numeric(a) and _numeric(e)):
        equal = bool(np.array_equal(a, e))
        return OutputComparison(name, equal and dtype_match, True, dtype_match, size=e.size,
                                mismatched=int(np.sum(a != e)))
    a64, e64 = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64), \
        e.astype(np.complex128 if np.iscomplexobj(e) else np.float64)
    nan_a, nan_e = np.isnan(a64), np.isnan(e64)
    inf_a, inf_e = np.isinf(a64), np.isinf(e64)
    both_finite = ~(nan_a | nan_e | inf_a | inf_e)
    nan_mismatch = int(np.sum(nan_a != nan_e))
    inf_mismatch = int(np.sum((inf_a | inf_e) & ~(nan_a | nan_e) & (a64 != e64)))
    err = np.abs(a64[both_finite] - e64[both_finite])
    scale = np.abs(e64)[both_finite]
    close = np.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
    stats = OutputComparison(
        name, False, True, dtype_match, size=int(e.size),
        mismatched=int(e.size - np.sum(close)),
        nan_mismatch=nan_mismatch, inf_mismatch=inf_mismatch,
        max_abs_error=float(err.max()) if err.size else 0.0,
        max_rel_error=_max_ratio(err, scale),
        needed_atol=float(np.max(err - rtol * scale, initial=0.0)),
        needed_rtol=_max_ratio(np.maximum(err - atol, 0.0), scale),
    )
    stats.passed = stats.mismatched == 0 and dtype_match
    if not dtype_match:
        stats.note = f"dtype {a.dtype} != expected {e.dtype}"
    return stats


def _numeric(a: np.ndarray) -> bool:
    return a.dtype.kind in "fciub" and a.dtype != np.bool_


def _max_ratio(num: np.ndarray, den: np.ndarray) -> float:
    """max(num / den) over nonzero den; infinite where num > 0 at den == 0."""
    if num.size == 0:
        return 0.0
    zero = den == 0
    if np.any(num[zero] > 0):
        return float("inf")
    return float(np.max(num[~zero] / den[~zero], initial=0.0))


def compare_outputs(backend: str, actual: Mapping[str, Any], expected: Mapping[str, Any], *,
                    atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL) -> BackendComparison:
    """Compare every expected output; an output the backend did not produce fails."""
    outputs = []
    for name, want in expected.items():
        if name not in actual:
            outputs.append(OutputComparison(name, False, False, False, note="missing output"))
        else:
            outputs.append(compare_arrays(name, actual[name], want, atol=atol, rtol=rtol))
    return BackendComparison(backend, all(o.passed for o in outputs), outputs)


Runner = Callable[[dict[str, np.ndarray]], Mapping[str, Any]]


def compare(model: ModelSource, backends: Sequence[str], *, baseline: str | None = None,
            inputs: Mapping[str, np.ndarray] | None = None, dims: Mapping[str, int] | None = None,
            seed: int = 0, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL,
            reference_outputs: Mapping[str, np.ndarray] | None = None,
            on_progress: Callable[[str], None] | None = None, isolate: bool = False,
            timeout: float | None = None,
            memory_limit_mb: float | None = None) -> CompareReport:
    """Run the same inputs through ``backends`` and compare each with the baseline.

    Args:
        model: the ONNX model (path, bytes or ``ModelProto``).
        backends: backend names; the first is the baseline unless ``baseline`` is given.
        baseline: the backend the others are compared with.
        inputs: feeds; generated from the model's signature (with ``dims`` and ``seed``) when
            not given.
        reference_outputs: expected outputs from elsewhere (e.g. the source framework); when
            given, every backend is compared with them and the baseline is ``"reference data"``.
        atol, rtol: tolerances, as in ``numpy.isclose``.
        on_progress: called with each backend's name before it runs.
        isolate: run each backend in a worker process of its own, so that a native crash
            (an engine's SIGFPE), ``timeout`` seconds or ``memory_limit_mb`` stop that backend
            only (see :func:`modelport.workers.call_isolated`).

    A backend that fails to prepare or run is reported as failed with its error; the other
    backends still run.
    """
    from modelport.backends import backend_ref, check_backends, get_backend
    from modelport.inputs import generate_inputs
    from modelport.model import input_specs
    from modelport.workers import call_isolated

    proto = load(model)
    if not backends:
        raise ModelportError("compare needs at least one backend (-b NAME)")
    check_backends([*backends, *([baseline] if baseline else [])])
    feeds = dict(inputs) if inputs is not None else generate_inputs(
        input_specs(proto), dims=dims, seed=seed)
    model_bytes = proto.SerializeToString() if isolate else b""

    def run(name: str) -> Mapping[str, Any]:
        if on_progress:
            on_progress(name)
        if isolate:
            return call_isolated(run_backend, name, backend_ref(name), model_bytes, feeds,
                                 timeout=timeout, memory_limit_mb=memory_limit_mb,
                                 what=f"backend {name!r}")
        return get_backend(name).prepare(proto).run(feeds)

    results: list[BackendComparison] = []
    if reference_outputs is not None:
        base_name, expected, others = "reference data", dict(reference_outputs), list(backends)
    else:
        base_name = baseline or backends[0]
        if not [b for b in backends if b != base_name]:
            raise ModelportError(f"nothing to compare with baseline {base_name!r}: name another "
                                 f"backend with -b")
        expected = dict(run(base_name))  # a failing baseline is a failing comparison: raise
        others = [b for b in backends if b != base_name]
    for name in others:
        try:
            actual = run(name)
        except ModelportError as exc:
            results.append(BackendComparison(name, False, error=str(exc)))
            continue
        results.append(compare_outputs(name, actual, expected, atol=atol, rtol=rtol))
    return CompareReport(base_name, atol, rtol,
                         {k: list(np.shape(v)) for k, v in feeds.items()}, results)


def run_backend(name: str, ref: str | None, model_bytes: bytes | str,
                feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Prepare and run one backend: what an isolated worker does for ``compare`` and ``run``.

    ``ref`` rebuilds a backend that the parent registered in code (see ``backend_ref``).
    """
    from modelport.backends import backend_in_worker

    return backend_in_worker(name, ref).prepare(model_bytes).run(feeds)
