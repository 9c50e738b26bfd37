"""Tensors of the types numpy holds only through ml_dtypes, in and out of every backend.

bfloat16, float8, float4 and the packed int4/int2 types cannot pass through onnxruntime's or
OpenVINO's numpy bindings as they are; modelport hands them over as bytes in ONNX's layout.
Each model takes a tensor of the type, casts it to float32 and back, and returns both: the
float32 output checks what the engine read, the round trip checks what it wrote. Expected values
are ml_dtypes' own conversions of values the type holds exactly.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import modelport
from modelport.errors import BackendError

EXACT = {  # values each type holds exactly, so a conversion has one right answer
    TensorProto.BFLOAT16: [1.5, -2.25, 3072.0, 0.0078125, -0.0],
    TensorProto.FLOAT8E4M3FN: [0.5, -1.0, 3.5, 448.0, -0.015625],
    TensorProto.FLOAT8E4M3FNUZ: [0.5, -1.0, 3.5, 240.0, 0.0],
    TensorProto.FLOAT8E5M2: [0.5, -1.0, 3.5, 57344.0, -0.0],
    TensorProto.FLOAT8E5M2FNUZ: [0.5, -1.0, 3.5, 57344.0, 0.0],
    TensorProto.FLOAT8E8M0: [0.5, 1.0, 4.0, 2.0**-20, 2.0**30],
    TensorProto.FLOAT4E2M1: [0.5, -1.0, 1.5, 6.0, -3.0],
    TensorProto.INT4: [-8, -1, 0, 5, 7],
    TensorProto.UINT4: [0, 1, 9, 14, 15],
    TensorProto.INT2: [-2, -1, 0, 1, 1],
    TensorProto.UINT2: [0, 1, 2, 3, 3],
}
NAMES = {t: TensorProto.DataType.Name(t) for t in EXACT}

# What each engine lacks, measured on onnxruntime 1.32 and OpenVINO 2026.4: onnxruntime's CPU
# provider has no Cast for float4e2m1; OpenVINO has no int2/uint2 and no fnuz float8 types.
UNSUPPORTED = {
    "onnxruntime": {TensorProto.FLOAT4E2M1},
    "openvino": {TensorProto.INT2, TensorProto.UINT2, TensorProto.FLOAT8E4M3FNUZ,
                 TensorProto.FLOAT8E5M2FNUZ},
}


def round_trip_model(elem_type: int) -> onnx.ModelProto:
    shape = [1, len(EXACT[elem_type])]
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["as_float"], to=TensorProto.FLOAT),
         helper.make_node("Cast", ["as_float"], ["back"], to=elem_type)],
        "round_trip", [helper.make_tensor_value_info("x", elem_type, shape)],
        [helper.make_tensor_value_info("as_float", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("back", elem_type, shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])


def typed(elem_type: int) -> np.ndarray:
    dtype = helper.tensor_dtype_to_np_dtype(elem_type)
    return np.array([EXACT[elem_type]], np.float32).astype(dtype)


@pytest.mark.parametrize("elem_type", list(EXACT), ids=NAMES.get)
@pytest.mark.parametrize("name", ["onnxruntime", "openvino", "reference", "numpy", "torch",
                                  "jax", "tensorflow"])
def test_types_numpy_lacks_go_in_and_come_back(name: str, elem_type: int) -> None:
    x = typed(elem_type)
    backend = modelport.get_backend(name)
    if elem_type in UNSUPPORTED.get(name, ()):
        with pytest.raises(BackendError, match=r"(?i)cast|type"):
            backend.prepare(round_trip_model(elem_type)).run({"x": x})
        return
    outputs = backend.prepare(round_trip_model(elem_type)).run({"x": x})
    np.testing.assert_array_equal(outputs["as_float"], np.array([EXACT[elem_type]], np.float32))
    assert np.signbit(outputs["as_float"]).tolist() == np.signbit(x.astype(np.float32)).tolist()
    assert outputs["back"].dtype == x.dtype
    assert outputs["back"].tobytes() == x.tobytes()


def test_an_odd_count_of_int4_elements_is_packed_into_whole_bytes() -> None:
    x = np.array([[-8, 7, 3]], ml_dtypes.int4)  # 3 elements, 2 bytes
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT8)], "odd",
        [helper.make_tensor_value_info("x", TensorProto.INT4, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 3])]),
        opset_imports=[helper.make_opsetid("", 25)])
    for name in ("onnxruntime", "openvino"):
        y = modelport.get_backend(name).prepare(model).run({"x": x})["y"]
        assert y.tolist() == [[-8, 7, 3]], name


@pytest.fixture(scope="module")
def half_models(zoo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """GPT-2 and ViT converted to float16 by onnxconverter-common, float32 inputs and outputs
    kept (``keep_io_types``): Cast nodes at the edges, every weight and activation in half."""
    from onnxconverter_common import float16

    folder = tmp_path_factory.mktemp("half")
    converted = {}
    for name in ("gpt2", "vit"):
        model = float16.convert_float_to_float16(onnx.load(zoo[name]), keep_io_types=True)
        converted[name] = folder / f"{name}.onnx"
        onnx.save(model, converted[name])
    return converted


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
@pytest.mark.parametrize("name", ["gpt2", "vit"])
def test_a_float16_model_from_onnxconverter_common(half_models: dict[str, Any], name: str,
                                                   backend: str) -> None:
    from models.zoo import feeds_for

    path = half_models[name]
    halves = sum(t.data_type == TensorProto.FLOAT16 for t in onnx.load(path).graph.initializer)
    assert halves > 10  # what this test is about: the weights are float16
    feeds = feeds_for(path, 2, seed=3)
    want = modelport.get_backend("onnxruntime").prepare(path).run(feeds)
    got = modelport.get_backend(backend).prepare(path).run(feeds)
    for output, expected in want.items():
        assert got[output].dtype == expected.dtype == np.float32
        # float16 keeps 11 significant bits: two computations of one graph differ in the
        # last bits of each of many sums
        np.testing.assert_allclose(got[output], expected, rtol=1e-2, atol=1e-2 * float(
            np.abs(expected).max()))
