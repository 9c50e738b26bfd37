"""An independent count of the node suite, to check `modelport conformance` against.

It uses nothing of modelport: onnx's own ``BackendTest`` (with onnx's in-memory node cases)
against ``onnxruntime.backend`` or a minimal ``onnx.backend`` wrapper of the reference evaluator
or OpenVINO (compiled in f32, as modelport does), run by unittest.

Usage: python scripts/independent_conformance_count.py onnxruntime|openvino|reference

Last measured on 2026-12-02 with the versions in requirements.lock (onnx 1.23.2, onnxruntime
1.32.0, OpenVINO 2026.4.1): onnxruntime 1,588 of 1,884, OpenVINO 1,365, the reference evaluator
1,869; `modelport conformance` counts the same. (It counted 1,868 for the reference evaluator
until an empty optional input, test_optional_has_element_empty_optional_input, was fed as None
instead of dropped: found by listing both runs' failures.)
"""

from __future__ import annotations

import sys
import unittest
import warnings
from typing import Any

import onnx.backend.test
from onnx.backend.base import Backend, BackendRep


def reference_backend() -> Any:
    from onnx.reference import ReferenceEvaluator

    class Rep(BackendRep):
        def __init__(self, model: onnx.ModelProto) -> None:
            self.evaluator = ReferenceEvaluator(model)

        def run(self, inputs: Any, **kwargs: Any) -> Any:
            feeds = dict(zip(self.evaluator.input_names, inputs, strict=False))
            return self.evaluator.run(None, feeds)

    class Reference(Backend):
        @classmethod
        def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> Rep:
            return Rep(model)

        @classmethod
        def supports_device(cls, device: str) -> bool:
            return device == "CPU"

    return Reference


def openvino_backend() -> Any:
    import openvino as ov

    core = ov.Core()

    class Rep(BackendRep):
        def __init__(self, model: onnx.ModelProto) -> None:
            self.compiled = core.compile_model(core.read_model(model.SerializeToString(), b""),
                                               "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            self.inputs = [i.name for i in model.graph.input]
            self.outputs = [o.name for o in model.graph.output]

        def run(self, inputs: Any, **kwargs: Any) -> Any:
            feeds = dict(zip(self.inputs, inputs, strict=False))
            results = self.compiled.create_infer_request().infer(feeds)
            by_name = {n: v for port, v in results.items() for n in port.get_names()}
            return [by_name.get(n) for n in self.outputs]

    class OpenVino(Backend):
        @classmethod
        def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> Rep:
            return Rep(model)

        @classmethod
        def supports_device(cls, device: str) -> bool:
            return device == "CPU"

    return OpenVino


def main(name: str) -> None:
    warnings.simplefilter("ignore")
    if name == "onnxruntime":
        import onnxruntime.backend as backend
    else:
        backend = {"reference": reference_backend, "openvino": openvino_backend}[name]()
    tests = onnx.backend.test.BackendTest(backend, __name__)
    tests.include(r"_cpu$")
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(
        tests.test_cases["OnnxBackendNodeModelTest"])
    with open("/dev/null", "w") as sink:
        result = unittest.TextTestRunner(stream=sink, verbosity=0).run(suite)
    ran = result.testsRun - len(result.skipped)
    passed = ran - len(result.failures) - len(result.errors)
    print(f"{name}: {passed}/{ran} node cases pass ({100 * passed / ran:.1f}%), "
          f"{len(result.failures)} failures, {len(result.errors)} errors")


if __name__ == "__main__":
    main(sys.argv[1])
