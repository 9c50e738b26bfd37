"""Conformance: the official ONNX backend test suite against any registered backend.

Cases come from the installed onnx package (:mod:`modelport.conformance.suite`), run isolated in
worker processes (:mod:`modelport.conformance.runner`) and are compared as onnx's own runner
compares them. The report gives every case's status (pass / fail / error / skip) with its
reason, a summary, and pass rates per operator.
"""

from __future__ import annotations

import collections
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from modelport.conformance.runner import ERROR, FAIL, PASS, SKIP, CaseResult, run_isolated
from modelport.conformance.suite import KINDS, Case, list_cases

__all__ = ["KINDS", "Case", "CaseResult", "ConformanceReport", "run_conformance"]
STATUSES = (PASS, FAIL, ERROR, SKIP)


@dataclass
class ConformanceReport:
    backend: str
    backend_version: str | None
    onnx_version: str
    kinds: list[str]
    results: list[CaseResult]
    machine: dict[str, Any] = field(default_factory=dict)

    def counts(self, kind: str | None = None) -> dict[str, int]:
        """Cases per status (and ``total``), for one kind or all."""
        rows = [r for r in self.results if kind is None or r.kind == kind]
        counts = collections.Counter(r.status for r in rows)
        return {**{s: counts.get(s, 0) for s in STATUSES}, "total": len(rows)}

    def pass_rate(self, kind: str | None = None) -> float:
        """Passing cases over all cases (skips count against it, as in independent counts)."""
        counts = self.counts(kind)
        return counts[PASS] / counts["total"] if counts["total"] else 0.0

    def by_op_type(self) -> dict[str, dict[str, int]]:
        """Status counts per operator (node cases; model cases group under their kind)."""
        table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for r in self.results:
            table[r.op_type][r.status] += 1
            table[r.op_type]["total"] += 1
        return {op: {s: c.get(s, 0) for s in (*STATUSES, "total")}
                for op, c in sorted(table.items())}

    @property
    def passed(self) -> bool:
        """True when no case failed or errored (use expectations files for known gaps)."""
        return all(r.status in (PASS, SKIP) for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "backend_version": self.backend_version,
            "onnx_version": self.onnx_version, "kinds": self.kinds, "machine": self.machine,
            "summary": {kind: {**self.counts(kind), "pass_rate": self.pass_rate(kind)}
                        for kind in self.kinds},
            "by_op_type": self.by_op_type(),
            "results": [asdict(r) for r in self.results],
        }


def run_conformance(backend: str, *, kinds: Sequence[str] = ("node",),
                    pattern: str | None = None, jobs: int = 1, timeout: float = 120.0,
                    memory_limit_mb: float = 6144.0,
                    on_start: Callable[[int], None] | None = None,
                    on_result: Callable[[CaseResult], None] | None = None) -> ConformanceReport:
    """Run the suite's cases of ``kinds`` (names matching ``pattern``) against ``backend``.

    Args:
        backend: a registered backend name.
        kinds: any of ``node``, ``simple``, ``pytorch-converted``, ``pytorch-operator``.
        pattern: a regular expression cases' names must match (``re.search``).
        jobs: worker processes.
        timeout: seconds a case may take before it is recorded as an error.
        memory_limit_mb: resident memory a worker may reach before its case is an error.
        on_start: called with the number of cases once they are known.
        on_result: called with each case's result as it arrives.
    """
    import onnx

    from modelport.backends import backend_ref, get_backend

    version = get_backend(backend).version()  # fails early, with the install hint
    cases: list[Case] = list_cases(kinds, pattern)
    if on_start:
        on_start(len(cases))
    results = run_isolated(backend, cases, jobs=jobs, timeout=timeout,
                           memory_limit_mb=memory_limit_mb, backend_ref=backend_ref(backend),
                           on_result=on_result) if cases else []
    machine = {"platform": platform.platform(), "python": platform.python_version()}
    return ConformanceReport(backend, version, onnx.__version__, list(kinds), results, machine)


def failure_reasons(report: ConformanceReport) -> dict[str, str]:
    """Every case that did not pass or skip, with its reason (for expectations files)."""
    return {r.name: f"{r.status}: {r.reason}" for r in report.results
            if r.status in (FAIL, ERROR)}
