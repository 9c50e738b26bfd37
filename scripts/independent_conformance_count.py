"""An independent count of the node suite, to check `modelport conformance` against.

It uses nothing of modelport: onnx's own ``BackendTest`` (with onnx's in-memory node cases)
against ``onnxruntime.backend``, or minimal ``onnx.backend`` wrappers of onnxruntime's
``InferenceSession`` fed through ``OrtValue`` (``onnxruntime-ortvalue``: the only way its
Python API takes bfloat16, float8, float4, int4 and int2), of OpenVINO's own API (compiled in
f32, as modelport does, with ``ov.Tensor`` for those types) or of the reference evaluator, run
by unittest.

Usage: python scripts/independent_conformance_count.py BACKEND, where BACKEND is onnxruntime,
onnxruntime-ortvalue, openvino or reference

Last measured on 2026-12-02 with the versions in requirements.lock (onnx 1.23.2, onnxruntime
1.32.0, OpenVINO 2026.4.1, ml_dtypes 0.7.0): onnxruntime.backend 1,588 of 1,884,
onnxruntime-ortvalue 1,715, OpenVINO 1,476, the reference evaluator 1,869; `modelport
conformance` counts 1,715, 1,476 and 1,869. 24 int4/int2 Cast and CastLike cases fail on
onnxruntime however it is fed: it wraps an out-of-range value (-9 gives 7) where ml_dtypes 0.7,
which computes the expected outputs, gives 0. (The reference evaluator counted 1,868 until an
empty optional input, test_optional_has_element_empty_optional_input, was fed as None instead
of dropped: found by listing both runs' failures.)
"""

from __future__ import annotations

import sys
import unittest
import warnings
from typing import Any

import onnx.backend.test
from onnx.backend.base import Backend, BackendRep


def cpu_backend(rep: Any) -> Any:
    """An onnx.backend Backend on the CPU whose prepared models are ``rep(model)``."""

    class CpuBackend(Backend):
        @classmethod
        def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> Any:
            return rep(model)

        @classmethod
        def supports_device(cls, device: str) -> bool:
            return device == "CPU"

    return CpuBackend


def reference_backend() -> Any:
    from onnx.reference import ReferenceEvaluator

    class Rep(BackendRep):
        def __init__(self, model: onnx.ModelProto) -> None:
            self.evaluator = ReferenceEvaluator(model)

        def run(self, inputs: Any, **kwargs: Any) -> Any:
            feeds = dict(zip(self.evaluator.input_names, inputs, strict=False))
            return self.evaluator.run(None, feeds)

    return cpu_backend(Rep)


def openvino_backend() -> Any:
    """OpenVINO's own API, compiled in f32 as modelport does. Arrays of types numpy lacks go in
    as ``ov.Tensor``s of OpenVINO's type holding their ONNX bytes (``infer`` would convert an
    ml_dtypes array element by element into the wrong type); inputs OpenVINO dropped (CastLike's
    ``like``) are not fed; outputs of those types come back through their bytes."""
    import numpy as np
    import openvino as ov
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    core = ov.Core()
    types = {T.BFLOAT16: ov.Type.bf16, T.FLOAT8E4M3FN: ov.Type.f8e4m3,
             T.FLOAT8E5M2: ov.Type.f8e5m2, T.FLOAT8E8M0: ov.Type.f8e8m0,
             T.FLOAT4E2M1: ov.Type.f4e2m1, T.INT4: ov.Type.i4, T.UINT4: ov.Type.u4}
    onnx_types = {v: k for k, v in types.items()}

    def to_tensor(array: Any) -> Any:
        if not isinstance(array, np.ndarray) or array.dtype.type.__module__ != "ml_dtypes":
            return array
        proto = numpy_helper.from_array(array)
        tensor = ov.Tensor(types[proto.data_type], ov.Shape(array.shape))
        tensor.data.view(np.uint8).reshape(-1)[:] = np.frombuffer(proto.raw_data, np.uint8)
        return tensor

    def from_tensor(tensor: Any) -> Any:
        onnx_type = onnx_types.get(tensor.get_element_type())
        if onnx_type is None:
            return np.array(tensor.data)
        return numpy_helper.to_array(helper.make_tensor(
            "", onnx_type, list(tensor.get_shape()), tensor.data.tobytes(), raw=True))

    class Rep(BackendRep):
        def __init__(self, model: onnx.ModelProto) -> None:
            self.compiled = core.compile_model(core.read_model(model.SerializeToString(), b""),
                                               "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            self.inputs = [i.name for i in model.graph.input]
            self.outputs = [o.name for o in model.graph.output]
            self.kept = {n for port in self.compiled.inputs for n in port.get_names()}

        def run(self, inputs: Any, **kwargs: Any) -> Any:
            feeds = {n: to_tensor(x) for n, x in zip(self.inputs, inputs, strict=False)
                     if n in self.kept}
            request = self.compiled.create_infer_request()
            request.infer(feeds)
            by_name = {n: from_tensor(request.get_tensor(port)) for port in self.compiled.outputs
                       for n in port.get_names()}
            return [by_name.get(n) for n in self.outputs]

    return cpu_backend(Rep)


def ort_values_backend() -> Any:
    """onnxruntime's ``InferenceSession`` fed and read through ``OrtValue``, the only way its
    Python API takes the types numpy lacks (bfloat16, float8, float4, int4, int2): each array
    is handed over in ONNX's byte layout, packed by ``onnx.numpy_helper``."""
    import ctypes

    import numpy as np
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    LACKING = {"bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz",
               "float8e8m0", "float4e2m1", "int4", "uint4", "int2", "uint2"}

    def numpy_lacks(onnx_type: int) -> bool:
        return helper.tensor_dtype_to_np_dtype(onnx_type).type.__module__ == "ml_dtypes"

    def to_value(array: Any) -> Any:
        if array.dtype.type.__module__ != "ml_dtypes":
            return ort.OrtValue.ortvalue_from_numpy(array)
        proto = numpy_helper.from_array(array)
        value = ort.OrtValue.ortvalue_from_shape_and_type(array.shape, proto.data_type)
        ctypes.memmove(value.data_ptr(), proto.raw_data, len(proto.raw_data))
        return value

    def from_value(value: Any) -> Any:
        raw = ctypes.string_at(value.data_ptr(), value.tensor_size_in_bytes())
        return numpy_helper.to_array(helper.make_tensor("", value.element_type(), value.shape(),
                                                        raw, raw=True))

    class Rep(BackendRep):
        def __init__(self, model: onnx.ModelProto) -> None:
            self.session = ort.InferenceSession(model.SerializeToString())

        def run(self, inputs: Any, **kwargs: Any) -> Any:
            names = [i.name for i in self.session.get_inputs()]
            inputs = [np.asarray(x) if isinstance(x, np.generic) else x for x in inputs]
            if not any(isinstance(x, np.ndarray) and x.dtype.type.__module__ == "ml_dtypes"
                       for x in inputs) and not self.lacking_outputs():
                return self.session.run(None, dict(zip(names, inputs, strict=False)))
            feeds = {n: to_value(x) for n, x in zip(names, inputs, strict=False)}
            outputs = self.session.run_with_ort_values(None, feeds)
            return [from_value(v) if v.is_tensor() and numpy_lacks(v.element_type())
                    else v.numpy() for v in outputs]

        def lacking_outputs(self) -> bool:
            return any(o.type.startswith("tensor(") and o.type[7:-1] in LACKING
                       for o in self.session.get_outputs())

    return cpu_backend(Rep)


def main(name: str) -> None:
    warnings.simplefilter("ignore")
    if name == "onnxruntime":
        import onnxruntime.backend as backend
    else:
        backend = {"reference": reference_backend, "openvino": openvino_backend,
                   "onnxruntime-ortvalue": ort_values_backend}[name]()
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
