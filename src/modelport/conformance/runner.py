"""Running suite cases isolated: worker processes that may crash, hang or bloat.

Each worker is a spawned process that prepares and runs one case at a time. The parent waits
with a deadline and watches the worker's resident memory; a worker that dies (segfault,
``os._exit``), passes the deadline, or grows past the memory limit is killed and replaced, and
its case is recorded as an error. The run goes on.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing.connection
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelport.conformance.suite import Case, UnsupportedTestData, load_data_sets
from modelport.errors import one_line
from modelport.workers import death, rss_mb, spawn

PASS, FAIL, ERROR, SKIP = "pass", "fail", "error", "skip"


@dataclass
class CaseResult:
    name: str
    kind: str
    op_type: str
    status: str
    reason: str = ""
    seconds: float = 0.0


def compare_like_onnx(expected: Sequence[Any], actual: Sequence[Any], rtol: float,
                      atol: float) -> None:
    """onnx's own runner comparison: same count, exact shape and dtype, ``assert_allclose``.

    Sequences and optionals are compared element by element.
    """
    from onnx.backend.test.runner import Runner

    Runner.assert_similar_outputs(list(expected), list(actual), rtol=rtol, atol=atol)


def run_case(backend: Any, case: Case) -> CaseResult:
    """Prepare and run one case with ``backend`` in this process."""
    import onnx

    start = time.perf_counter()

    def result(status: str, reason: str = "") -> CaseResult:
        return CaseResult(case.name, case.kind, case.op_type, status, reason[:500],
                          time.perf_counter() - start)

    model = onnx.load(str(case.path / "model.onnx"))
    try:
        data_sets = list(load_data_sets(case, model))
    except UnsupportedTestData as exc:
        return result(SKIP, str(exc))
    try:
        session = backend.prepare(model)
    except Exception as exc:
        return result(ERROR, f"prepare: {_reason(exc)}")
    for inputs, expected in data_sets:
        try:
            outputs = session.run(inputs)
        except Exception as exc:
            return result(ERROR, f"run: {_reason(exc)}")
        try:
            compare_like_onnx(expected, [outputs[o.name] for o in session.outputs], case.rtol,
                              case.atol)
        except (AssertionError, TypeError, ValueError) as exc:
            return result(FAIL, one_line(exc))
    return result(PASS)


def _reason(exc: Exception) -> str:
    """Our errors speak for themselves; anything else also says what it was."""
    from modelport.errors import ModelportError

    return one_line(exc) if isinstance(exc, ModelportError) else \
        f"{type(exc).__name__}: {one_line(exc)}"


def _worker_main(conn: multiprocessing.connection.Connection, backend_name: str,
                 backend_ref: str | None) -> None:
    """A worker's loop: receive a case, run it, send the result; ``None`` ends it."""
    from modelport.backends import backend_in_worker

    try:
        backend = backend_in_worker(backend_name, backend_ref)
    except Exception as exc:
        conn.send(("fatal", f"{type(exc).__name__}: {one_line(exc)}"))
        return
    conn.send(("ready", None))
    while True:
        case = conn.recv()
        if case is None:
            return
        try:
            conn.send(("result", run_case(backend, case)))
        except Exception as exc:  # a bug of ours must not pass for a backend's failure
            conn.send(("result", CaseResult(case.name, case.kind, case.op_type, ERROR,
                                            f"runner: {type(exc).__name__}: {one_line(exc)}")))


class _Worker:
    def __init__(self, backend_name: str, backend_ref: str | None) -> None:
        self.process, self.conn = spawn(_worker_main, backend_name, backend_ref)
        self.case: Case | None = None
        self.started = 0.0
        self.ready = False

    def send(self, case: Case) -> None:
        self.case, self.started = case, time.monotonic()
        self.conn.send(case)

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()

    def death(self) -> str:
        return f"the backend {death(self.process)}"


def run_isolated(backend_name: str, cases: Sequence[Case], *, jobs: int = 1,
                 timeout: float = 120.0, memory_limit_mb: float = 6144.0,
                 backend_ref: str | None = None,
                 on_result: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
    """Run ``cases`` on ``jobs`` worker processes; see the module docstring."""
    from modelport.errors import BackendError

    pending = collections.deque(cases)
    results: dict[str, CaseResult] = {}
    workers = [_Worker(backend_name, backend_ref) for _ in range(max(1, min(jobs, len(cases))))]

    def record(result: CaseResult) -> None:
        results[result.name] = result
        if on_result:
            on_result(result)

    def replace(worker: _Worker, status: str, reason: str) -> None:
        assert worker.case is not None
        case = worker.case
        record(CaseResult(case.name, case.kind, case.op_type, status, reason,
                          time.monotonic() - worker.started))
        worker.kill()
        workers[workers.index(worker)] = _Worker(backend_name, backend_ref)

    try:
        while pending or any(w.case for w in workers):
            for worker in workers:
                if worker.ready and worker.case is None and pending:
                    worker.send(pending.popleft())
            ready = multiprocessing.connection.wait([w.conn for w in workers], timeout=0.1)
            for worker in [w for w in workers if w.conn in ready]:
                try:
                    kind, payload = worker.conn.recv()
                except (EOFError, OSError):
                    if worker.case is None:
                        raise BackendError(f"backend {backend_name!r}: a worker process died "
                                           f"while starting ({worker.death()})") from None
                    replace(worker, ERROR, worker.death())
                    continue
                if kind == "fatal":
                    raise BackendError(f"backend {backend_name!r} cannot start in a worker "
                                       f"process: {payload}")
                if kind == "ready":
                    worker.ready = True
                else:
                    worker.case = None
                    record(payload)
            now = time.monotonic()
            for worker in workers:
                if worker.case is None:
                    continue
                if now - worker.started > timeout:
                    replace(worker, ERROR, f"timed out after {timeout:g} s")
                elif (rss := worker.rss_mb()) > memory_limit_mb:
                    replace(worker, ERROR, f"used {rss:.0f} MB, over the {memory_limit_mb:g} MB "
                                           f"limit")
    finally:
        for worker in workers:
            if worker.process.is_alive():
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
                worker.process.join(2)
                if worker.process.is_alive():
                    worker.kill()
    return [results[c.name] for c in cases]
