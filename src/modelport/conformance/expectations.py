"""Expectations files: which suite cases a backend is known to fail, and why.

A TOML file per backend (``tests/conformance/expectations/<backend>.toml``)::

    backend = "onnxruntime"

    [[xfail]]
    reason = "onnxruntime has no kernel for Attention-23"
    cases = ["test_attention_3d", "test_attention_4d"]

    [[skip]]                       # for cases that crash or hang the test process
    reason = "..."
    patterns = ["^test_loop13_seq"]  # regular expressions, searched in the case name

Every group must carry a reason. ``xfail`` cases must fail (a case that starts passing is
reported); ``skip`` cases are not run.
"""

from __future__ import annotations

import collections
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelport.errors import ModelportError


@dataclass
class Group:
    reason: str
    cases: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)

    def matches(self, name: str) -> bool:
        return name in self.cases or any(re.search(p, name) for p in self.patterns)


@dataclass
class Expectations:
    backend: str
    xfail: list[Group] = field(default_factory=list)
    skip: list[Group] = field(default_factory=list)

    def status_of(self, name: str) -> str | None:
        """``"skip"``, ``"xfail"``, or ``None`` when the case is expected to pass."""
        if any(g.matches(name) for g in self.skip):
            return "skip"
        if any(g.matches(name) for g in self.xfail):
            return "xfail"
        return None

    def reason_of(self, name: str) -> str | None:
        for group in (*self.skip, *self.xfail):
            if group.matches(name):
                return group.reason
        return None


def load_expectations(path: str | Path) -> Expectations:
    """Read an expectations file; every group must have a reason."""
    data = tomllib.loads(Path(path).read_text())
    expectations = Expectations(str(data.get("backend", Path(path).stem)))
    for kind in ("xfail", "skip"):
        for raw in data.get(kind, []):
            reason = str(raw.get("reason", "")).strip()
            if not reason:
                raise ModelportError(f"{path}: an [[{kind}]] group has no reason")
            getattr(expectations, kind).append(
                Group(reason, list(raw.get("cases", [])), list(raw.get("patterns", []))))
    return expectations


def short_reason(reason: str) -> str:
    """A reason without the per-element detail of numpy's assertion messages, and without the
    traceback frames some engines quote (their paths belong to one machine)."""
    reason = re.sub(r'File "[^"]*", line \d+, in \S+ ?', "", reason)
    return re.split(r" (?:First \d+ mismatches|Mismatch at ind|Max absolute)", reason)[0][:240]


def _reason_key(reason: str) -> str:
    """Reasons that differ only in numbers, shapes or quoted names fall in one group."""
    key = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", short_reason(reason))
    return re.sub(r"\d+(\.\d+)?(e-?\d+)?", "N", key)


def render_expectations(backend: str, failures: Mapping[str, str],
                        header: Iterable[str] = (), keep: Expectations | None = None) -> str:
    """An expectations file for ``failures`` (case name -> reason), grouped by reason.

    Groups of ``keep`` with hand-written reasons, and skips, are kept for the cases they still
    match; generated groups (reasons quoting the failure: ``error: ...``, ``fail: ...``) are
    regenerated, so a case whose failure changed gets its new reason.
    """
    lines = [f"# {h}" for h in header] + [f'backend = "{backend}"', ""]
    remaining = dict(failures)
    for kind in ("skip", "xfail"):
        for group in getattr(keep, kind, []) if keep else []:
            if kind == "xfail" and _GENERATED.match(group.reason):
                continue
            matched = [n for n in sorted(remaining) if group.matches(n)]
            if kind == "xfail" and not matched:
                continue  # that gap was fixed: drop the group
            lines += _group(kind, group.reason, [c for c in group.cases if c in remaining]
                            if kind == "xfail" else group.cases, group.patterns)
            for name in matched:
                remaining.pop(name, None)
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for name, reason in sorted(remaining.items()):
        groups[_reason_key(reason)].append(name)
    for names in sorted(groups.values(), key=lambda ns: (-len(ns), ns[0])):
        lines += _group("xfail", short_reason(failures[names[0]]), names, [])
    return "\n".join(lines).rstrip() + "\n"


_GENERATED = re.compile(r"(error|fail): ")


def _group(kind: str, reason: str, cases: list[str], patterns: list[str]) -> list[str]:
    lines = [f"[[{kind}]]", f"reason = {_toml_str(reason)}"]
    if cases:
        lines.append("cases = [" + ", ".join(_toml_str(c) for c in cases) + "]")
    if patterns:
        lines.append("patterns = [" + ", ".join(_toml_str(p) for p in patterns) + "]")
    return [*lines, ""]


def _toml_str(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'


def check_against(expectations: Expectations, statuses: Mapping[str, str]) -> list[str]:
    """Disagreements between expectations and results (case name -> status), as sentences."""
    problems = []
    for name, status in sorted(statuses.items()):
        expected = expectations.status_of(name)
        if status in ("fail", "error") and expected is None:
            problems.append(f"{name} does not pass ({status}) but is not expected to fail")
        elif status == "pass" and expected == "xfail":
            problems.append(f"{name} passes but is expected to fail: remove it from the "
                            f"expectations")
    return problems
