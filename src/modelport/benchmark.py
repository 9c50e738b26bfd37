"""Bench: latency, throughput, prepare time and peak memory per backend and batch size.

Each backend runs in a fresh worker process by default, so that frameworks do not share a
heap, thread pools or caches, and so the peak resident memory of that process is the memory
that backend needed. The timed region is ``Session.timed_call``: the framework's run with
its result waited for, after inputs were converted once.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modelport.errors import BackendError, InputError, ModelportError
from modelport.model import ModelSource, TensorSpec, input_specs, load
from modelport.workers import call_isolated


@dataclass
class BenchResult:
    """Timings of one backend at one batch size (milliseconds unless the name says)."""

    backend: str
    batch: int
    prepare_s: float | None = None
    first_run_s: float | None = None  # the first call: includes jit compilation, where any
    runs: int = 0
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    throughput: float | None = None  # samples per second at p50
    peak_rss_mb: float | None = None  # of the backend's worker process; None when not isolated
    error: str | None = None


@dataclass
class BenchReport:
    results: list[BenchResult]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.error is None for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "settings": self.settings,
                "results": [asdict(r) for r in self.results]}


def batch_feeds(specs: Sequence[TensorSpec], batch: int, *, dims: Mapping[str, int] | None = None,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Random feeds with the leading (batch) dimension of every input set to ``batch``."""
    from modelport.inputs import generate_inputs

    for spec in specs:
        first = spec.shape[0] if spec.shape else None
        if isinstance(first, int) and first > 0 and first != batch:
            raise InputError(f"input {spec.name!r} has a fixed batch of {first}; it cannot run at "
                             f"batch {batch}")
    return generate_inputs(specs, dims=dims, seed=seed, batch=batch)


def _time_call(call: Callable[[], object], warmup: int, runs: int,
               max_seconds: float) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        call()
    times: list[float] = []
    deadline = time.perf_counter() + max_seconds
    while len(times) < runs and (len(times) < 3 or time.perf_counter() < deadline):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return first, np.array(times) * 1e3


def bench_backend(model_bytes: bytes, backend: str, batches: Sequence[int], *, warmup: int,
                  runs: int, max_seconds: float, dims: Mapping[str, int] | None, seed: int,
                  options: Mapping[str, Any] | None = None,
                  isolated: bool = False) -> list[BenchResult]:
    """Bench one backend in this process at every batch size (the worker's entry point)."""
    from modelport.backends import get_backend

    proto = load(model_bytes)
    try:
        start = time.perf_counter()
        session = get_backend(backend).prepare(proto, **(options or {}))
        prepare_s = time.perf_counter() - start
    except ModelportError as exc:
        return [BenchResult(backend, b, error=str(exc)) for b in batches]
    results = []
    for batch in batches:
        try:
            call = session.timed_call(batch_feeds(input_specs(proto), batch, dims=dims, seed=seed))
            first, ms = _time_call(call, warmup, runs, max_seconds)
        except ModelportError as exc:
            results.append(BenchResult(backend, batch, prepare_s, error=str(exc)))
            continue
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        results.append(BenchResult(backend, batch, prepare_s, first, len(ms), float(p50),
                                   float(p90), float(p99), float(ms.mean()), batch / (p50 / 1e3)))
    if isolated:  # ru_maxrss is in KiB on Linux and only grows: meaningful in a fresh process
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for r in results:
            r.peak_rss_mb = peak
    return results


def bench(model: ModelSource, backends: Sequence[str], batches: Sequence[int] = (1,), *,
          warmup: int = 5, runs: int = 100, max_seconds: float = 10.0,
          dims: Mapping[str, int] | None = None, seed: int = 0, isolate: bool = True,
          options: Mapping[str, Mapping[str, Any]] | None = None,
          on_progress: Callable[[str], None] | None = None) -> BenchReport:
    """Time ``backends`` on ``model`` at each batch size.

    Args:
        batches: values for the leading dimension of every input.
        warmup: untimed runs before timing.
        runs: timed runs at most; timing also stops after ``max_seconds`` (3 runs at least).
        dims: sizes of other symbolic dimensions (``{"seq": 128}``).
        isolate: run each backend in its own worker process (gives peak memory).
        options: ``prepare`` options per backend name.
        on_progress: called with each backend's name before it runs.
    """
    from modelport.backends import check_backends
    from modelport.inputs import check_dims

    proto = load(model)
    check_backends(backends)
    if not backends or not batches or min(batches) < 1:
        raise InputError("bench needs at least one backend and batch sizes of 1 or more")
    check_dims(input_specs(proto), dims or {})
    model_bytes = proto.SerializeToString()
    kwargs: dict[str, Any] = {"warmup": warmup, "runs": runs, "max_seconds": max_seconds,
                              "dims": dict(dims or {}), "seed": seed}
    results: list[BenchResult] = []
    for name in backends:
        if on_progress:
            on_progress(name)
        opts = dict((options or {}).get(name, {}))
        if not isolate:
            results += bench_backend(model_bytes, name, batches, options=opts, **kwargs)
            continue
        results += _bench_isolated(model_bytes, name, batches, opts, kwargs)
    if all(r.error for r in results):
        errors = dict.fromkeys(f"{r.backend}: {r.error}" for r in results)
        raise BackendError(f"every backend failed: {'; '.join(errors)}")
    settings = {"batches": list(batches), "warmup": warmup, "runs": runs,
                "max_seconds": max_seconds, "isolate": isolate, "cpu_count": os.cpu_count()}
    return BenchReport(results, settings)


def _bench_isolated(model_bytes: bytes, name: str, batches: Sequence[int],
                    options: dict[str, Any], kwargs: dict[str, Any]) -> list[BenchResult]:
    from modelport.backends import backend_ref

    try:
        results: list[BenchResult] = call_isolated(
            _bench_in_worker, model_bytes, name, backend_ref(name), list(batches), options,
            kwargs, timeout=None, what="the worker process")
        return results
    except BackendError as exc:  # a crash, the memory limit, or an error outside the timing
        return [BenchResult(name, b, error=str(exc)) for b in batches]


def _bench_in_worker(model_bytes: bytes, name: str, ref: str | None, batches: list[int],
                     options: dict[str, Any], kwargs: dict[str, Any]) -> list[BenchResult]:
    from modelport.backends import backend_in_worker

    backend_in_worker(name, ref)  # a backend registered in the parent's code too
    return bench_backend(model_bytes, name, batches, options=options, isolated=True, **kwargs)


def plot(report: BenchReport, path: str | os.PathLike[str]) -> None:
    """Draw p50 latency (with p90 whiskers) per backend, grouped by batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from modelport.io import atomic_path

    ok = [r for r in report.results if r.p50_ms is not None]
    if not ok:
        raise ModelportError("nothing to plot: every backend failed")
    backends = list(dict.fromkeys(r.backend for r in ok))
    batches = sorted({r.batch for r in ok})
    width = 0.8 / len(backends)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(batches) * len(backends) ** 0.5), 4))
    for i, name in enumerate(backends):
        rows = {r.batch: r for r in ok if r.backend == name}
        xs = [j + i * width for j, b in enumerate(batches) if b in rows]
        p50 = [float(rows[b].p50_ms or 0) for b in batches if b in rows]
        p90 = [float(rows[b].p90_ms or 0) for b in batches if b in rows]
        err = [[0.0] * len(p50), [hi - lo for lo, hi in zip(p50, p90, strict=True)]]
        ax.bar(xs, p50, width, yerr=err, capsize=3, label=name)
    ax.set_xticks([j + width * (len(backends) - 1) / 2 for j in range(len(batches))],
                  [f"batch {b}" for b in batches])
    ax.set_ylabel("latency, ms (p50, whisker to p90)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("modelport bench")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(os.fspath(path))[1].lstrip(".") or "png")
    plt.close(fig)
