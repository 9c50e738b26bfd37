"""The ONNX backend suite against every installed backend, held to its expectations file.

Every node case runs through ``modelport.conformance`` on two isolated worker processes per
backend (the way ``modelport conformance -j 2`` runs it), and each backend's statuses are held
to ``expectations/<backend>.toml``: a case that regresses fails the test, and so does an
expected failure that starts passing, until the file is updated. The failure message names
every such case at once.

Upstream's own runner (``onnx.backend.test``) drives each backend's ``onnx.backend`` API on a
sample of cases too, so the drop-in adapter stays tested with the code that users of
``onnx_tf.backend`` and ``caffe2.python.onnx.backend`` ran.
"""

from __future__ import annotations

import collections
import unittest
from pathlib import Path
from typing import Any

import pytest
from onnx.backend.test.case.test_case import TestCase as OnnxTestCase
from onnx.backend.test.runner import Runner

from modelport.backends import available_backends, get_backend
from modelport.backends.base import onnx_backend_api
from modelport.conformance import run_conformance
from modelport.conformance.expectations import check_against, load_expectations
from modelport.conformance.suite import list_cases

EXPECTATIONS = Path(__file__).parent / "expectations"
BACKENDS = [b for b in sorted(p.stem for p in EXPECTATIONS.glob("*.toml"))
            if b in available_backends()]
# Cases every backend passes, one or two per operator family: what the upstream runner drives.
SAMPLE = r"^test_(add|relu|gemm_default_matrix_bias|conv_with_strides_padding|softmax_axis_1|" \
         r"reshape_negative_dim|gather_0|reduce_sum_keepdims_example|maxpool_2d_pads|" \
         r"transpose_default)$"


@pytest.mark.parametrize("backend", BACKENDS)
def test_node_suite_matches_the_expectations(backend: str) -> None:
    report = run_conformance(backend, jobs=2)
    statuses = {r.name: r.status for r in report.results}
    reasons = {r.name: r.reason for r in report.results}
    problems = check_against(load_expectations(EXPECTATIONS / f"{backend}.toml"), statuses)
    details = [f"{p} [{reasons.get(p.split()[0], '')[:200]}]" for p in problems]
    assert not problems, (f"{len(problems)} case(s) of {backend} differ from the expectations "
                          f"(scripts/update_conformance rewrites them):\n" + "\n".join(details))


class SuiteRunner(Runner):
    """onnx's Runner over modelport's materialised node cases, CPU only.

    Runner.__init__ would load every kind from onnx's in-memory generators (fresh random data
    each time); this sets the same fields and adds the cached cases instead.
    """

    def __init__(self, backend: Any, parent_module: str, pattern: str) -> None:
        self.backend = backend
        self._parent_module = parent_module
        self._include_patterns: set[Any] = set()
        self._exclude_patterns: set[Any] = set()
        self._xfail_patterns: set[Any] = set()
        self._test_kwargs: dict[str, Any] = {}
        self._test_items = collections.defaultdict(dict)
        for case in list_cases(["node"], pattern):
            self._add_model_test(OnnxTestCase(
                name=case.name, model_name=case.name, url=None, model_dir=str(case.path),
                model=None, data_sets=None, kind="node", rtol=case.rtol, atol=case.atol), "Node")

    def _add_test(self, category: str, test_name: str, test_func: Any, report_item: Any,
                  devices: Any = ("CPU",), **kwargs: Any) -> None:
        super()._add_test(category, test_name, test_func, report_item, ("CPU",), **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_upstream_runner_drives_the_onnx_backend_api(backend: str) -> None:
    api = onnx_backend_api(lambda: get_backend(backend))["OnnxBackend"]
    suite = unittest.TestSuite()
    for test_class in SuiteRunner(api, __name__, SAMPLE).test_cases.values():
        suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(test_class))
    result = unittest.TestResult()
    suite.run(result)
    assert result.testsRun == 10
    assert not result.failures and not result.errors, [
        (str(test), trace.splitlines()[-1]) for test, trace in result.failures + result.errors]
