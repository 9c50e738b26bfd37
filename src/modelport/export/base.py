"""What every exporter reports: its attempts and the verification against the source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modelport.comparison import OutputComparison, compare_arrays


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
                 actual: Mapping[str, np.ndarray], expected: Sequence[np.ndarray]) -> None:
        """Compare ``actual`` (by output name, in graph order) with the source's outputs."""
        names = list(actual)
        outputs = [compare_arrays(name, actual[name], want, atol=self.atol, rtol=self.rtol)
                   for name, want in zip(names, expected, strict=False)]
        if len(names) != len(expected):
            outputs.append(OutputComparison("(outputs)", False, False, False,
                                            note=f"ONNX gives {len(names)} outputs, the source "
                                                 f"{len(expected)}"))
        self.cases.append(VerificationCase(batch, {k: list(v.shape) for k, v in feeds.items()},
                                           outputs))


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
