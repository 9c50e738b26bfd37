"""The ONNX backend suite, through upstream ``onnx.backend.test``, for every installed backend.

Each backend with an expectations file (``expectations/<backend>.toml``) gets one unittest
class of node cases, read from the same materialised files that ``modelport conformance``
uses. Expected failures are ``xfail`` (a case that starts passing fails the run as an
unexpected success, so the file gets updated); a case that regresses fails the run.
"""

from __future__ import annotations

import collections
import unittest
from pathlib import Path
from typing import Any

from onnx.backend.test.case.test_case import TestCase as OnnxTestCase
from onnx.backend.test.runner import Runner

from modelport.backends import available_backends, get_backend
from modelport.backends.base import onnx_backend_api
from modelport.conformance.expectations import load_expectations
from modelport.conformance.suite import list_cases

EXPECTATIONS = Path(__file__).parent / "expectations"


class SuiteRunner(Runner):
    """onnx's Runner over modelport's materialised node cases, CPU only.

    Runner.__init__ would load every kind from onnx's in-memory generators (fresh random data
    each time); this sets the same fields and adds the cached cases instead.
    """

    def __init__(self, backend: Any, parent_module: str) -> None:
        self.backend = backend
        self._parent_module = parent_module
        self._include_patterns: set[Any] = set()
        self._exclude_patterns: set[Any] = set()
        self._xfail_patterns: set[Any] = set()
        self._test_kwargs: dict[str, Any] = {}
        self._test_items = collections.defaultdict(dict)
        for case in list_cases(["node"]):
            self._add_model_test(OnnxTestCase(
                name=case.name, model_name=case.name, url=None, model_dir=str(case.path),
                model=None, data_sets=None, kind="node", rtol=case.rtol, atol=case.atol), "Node")

    def _add_test(self, category: str, test_name: str, test_func: Any, report_item: Any,
                  devices: Any = ("CPU",), **kwargs: Any) -> None:
        super()._add_test(category, test_name, test_func, report_item, ("CPU",), **kwargs)


def suite_for(name: str) -> dict[str, type[unittest.TestCase]]:
    expectations = load_expectations(EXPECTATIONS / f"{name}.toml")
    backend = onnx_backend_api(lambda: get_backend(name))["OnnxBackend"]
    runner = SuiteRunner(backend, __name__)
    cases: dict[str, type[unittest.TestCase]] = {}
    for class_name, test_class in runner.test_cases.items():
        renamed = type(f"{name.title()}{class_name}", (test_class,), {})
        for attr in [a for a in vars(test_class) if a.startswith("test_")]:
            case = attr.removesuffix("_cpu")
            status = expectations.status_of(case)
            if status == "skip":
                setattr(renamed, attr, unittest.skip(expectations.reason_of(case))(
                    getattr(test_class, attr)))
            elif status == "xfail":
                setattr(renamed, attr, unittest.expectedFailure(getattr(test_class, attr)))
        cases[renamed.__name__] = renamed
    return cases


for _name in sorted(p.stem for p in EXPECTATIONS.glob("*.toml")):
    if _name in available_backends():
        globals().update(suite_for(_name))
