"""modelport conformance: isolation from misbehaving backends, statuses, the CLI and docs."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

import modelport
from modelport.backends.base import Backend, Session
from modelport.conformance import run_conformance
from modelport.conformance.expectations import (
    check_against,
    load_expectations,
    render_expectations,
)
from modelport.conformance.matrix import render_matrix, replace_readme_counts

ROOT = Path(__file__).resolve().parents[1]


class Misbehaving(Backend):
    """Runs the reference evaluator, except on cases chosen to crash, exit, hang or bloat."""

    name = "misbehaving"

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Session:
        inner = modelport.get_backend("reference").prepare(model)
        op = model.graph.node[0].op_type

        class MisbehavingSession(Session):
            def _execute(self, feeds: dict[str, np.ndarray]) -> Any:
                if op == "Abs":
                    os.kill(os.getpid(), signal.SIGSEGV)
                elif op == "Acos":
                    os._exit(3)
                elif op == "Acosh":
                    time.sleep(600)
                elif op == "Asin":
                    hog = np.ones(150_000_000)  # 1.2 GB, touched
                    time.sleep(600)
                    del hog
                elif op == "Atan":
                    return [2 * v + 1 for v in inner.run(feeds).values()]  # wrong answers
                return list(inner.run(feeds).values())

        return MisbehavingSession(self, model, device)


@pytest.fixture
def misbehaving(register: Any) -> str:
    register("misbehaving", Misbehaving)
    return "misbehaving"


def test_a_backend_that_crashes_exits_hangs_or_bloats_does_not_stop_the_run(
        misbehaving: str) -> None:
    report = run_conformance(misbehaving, pattern=r"^test_(abs|acos|acosh|asin|atan|add)$",
                             jobs=2, timeout=30, memory_limit_mb=800)
    by_name = {r.name: r for r in report.results}
    assert set(by_name) == {"test_abs", "test_acos", "test_acosh", "test_asin", "test_atan",
                            "test_add"}
    assert by_name["test_abs"].status == "error"
    assert "crashed (signal 11)" in by_name["test_abs"].reason
    assert by_name["test_acos"].status == "error"
    assert "exit code 3" in by_name["test_acos"].reason
    assert by_name["test_acosh"].status == "error"
    assert "timed out after 30 s" in by_name["test_acosh"].reason
    assert by_name["test_asin"].status == "error"
    assert "over the 800 MB limit" in by_name["test_asin"].reason
    assert by_name["test_atan"].status == "fail"
    assert "Not equal to tolerance" in by_name["test_atan"].reason
    assert by_name["test_add"].status == "pass"
    assert report.counts() == {"pass": 1, "fail": 1, "error": 4, "skip": 0, "total": 6}


def test_cli_conformance_json(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out_file = tmp_path / "r.json"
    code, out, _ = cli("conformance", "-b", "onnxruntime", "-k", "^test_(relu|softmax_axis_0)$",
                       "--json", out_file, "--format", "json", "--fail-under", "100")
    data = json.loads(out)
    assert code == 0
    assert data["summary"]["node"]["total"] == 2 and data["summary"]["node"]["pass"] == 2
    assert data["by_op_type"]["Relu"]["pass"] == 1
    assert json.loads(out_file.read_text())["results"] == data["results"]


def test_fail_under_gates_the_exit_code(cli) -> None:  # type: ignore[no-untyped-def]
    # ONNX Runtime has no kernel for the preview FlexAttention operator.
    code, out, _ = cli("conformance", "-b", "onnxruntime", "-k", "^test_flexattention$",
                       "--fail-under", "50")
    assert code == 1 and out.strip().splitlines()[-1].startswith("FAILED")


RESULTS = sorted((ROOT / "docs" / "conformance").glob("*.json"))


def test_the_support_matrix_is_current() -> None:
    results = [json.loads(p.read_text()) for p in RESULTS]
    assert results, "docs/conformance/*.json is missing"
    expected = render_matrix(results)
    actual = (ROOT / "docs" / "support_matrix.md").read_text()
    assert actual == expected, "docs/support_matrix.md is stale: run scripts/update_conformance"


def test_the_readme_counts_are_current() -> None:
    results = [json.loads(p.read_text()) for p in RESULTS]
    readme = (ROOT / "README.md").read_text()
    assert replace_readme_counts(readme, results) == readme, \
        "the README's conformance counts are stale: run scripts/update_conformance"


@pytest.mark.parametrize("path", RESULTS, ids=[p.stem for p in RESULTS])
def test_checked_in_results_agree_with_the_expectations(path: Path) -> None:
    """The tests/conformance suite holds expectations to reality; this holds the docs to them."""
    import onnx as onnx_package

    results = json.loads(path.read_text())
    assert results["onnx_version"] == onnx_package.__version__, "rerun scripts/update_conformance"
    expectations = load_expectations(ROOT / "tests" / "conformance" / "expectations"
                                     / f"{path.stem}.toml")
    statuses = {name: status for name, (status, _) in results["cases"].items()}
    assert check_against(expectations, statuses) == []


def test_every_expectation_has_a_reason() -> None:
    for path in (ROOT / "tests" / "conformance" / "expectations").glob("*.toml"):
        expectations = load_expectations(path)  # raises on a group without a reason
        assert all(g.reason for g in expectations.xfail + expectations.skip)


def test_generated_reasons_carry_no_machine_paths() -> None:
    from modelport.conformance.expectations import short_reason

    reason = ('error: run: AttributeError: in user code: File "/home/me/src/modelport/a.py", '
              'line 126, in __call__ * outputs = run(x) File "/home/me/src/b.py", line 3, in '
              'run boom')
    assert short_reason(reason) == ("error: run: AttributeError: in user code: * outputs = "
                                    "run(x) boom")
    for path in (ROOT / "tests" / "conformance" / "expectations").glob("*.toml"):
        assert 'File \\"' not in path.read_text(), path.name


def test_regenerating_keeps_written_reasons_and_renews_generated_ones(tmp_path: Path) -> None:
    old = tmp_path / "old.toml"
    old.write_text('backend = "x"\n\n'
                   '[[xfail]]\nreason = "x has no kernel for Foo"\ncases = ["test_foo"]\n\n'
                   '[[xfail]]\nreason = "error: run: bytes refused"\ncases = ["test_cast"]\n')
    rendered = render_expectations("x", {"test_foo": "error: run: Foo missing",
                                         "test_cast": "fail: 0 is not 7"},
                                   keep=load_expectations(old))
    again = tmp_path / "new.toml"
    again.write_text(rendered)
    groups = {g.reason: g.cases for g in load_expectations(again).xfail}
    assert groups == {"x has no kernel for Foo": ["test_foo"], "fail: 0 is not 7": ["test_cast"]}


MODEL_KINDS = ("simple", "pytorch-converted", "pytorch-operator")


@pytest.fixture(scope="module")
def onnxruntime_model_kinds() -> set[str]:
    return {r.name for r in run_conformance("onnxruntime", kinds=MODEL_KINDS, jobs=2).results
            if r.status == "pass"}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
def test_the_model_kinds_that_onnxruntime_passes_pass_here(onnxruntime_model_kinds: set[str],
                                                          backend: str) -> None:
    """The suite's whole-model kinds (simple, pytorch-converted, pytorch-operator: 140 models,
    the old PyTorch exporter's files among them): every one that onnxruntime runs right, each
    translating backend runs right too."""
    ours = {r.name for r in run_conformance(backend, kinds=MODEL_KINDS, jobs=2).results
            if r.status == "pass"}
    assert len(onnxruntime_model_kinds) > 90
    assert sorted(onnxruntime_model_kinds - ours) == []
