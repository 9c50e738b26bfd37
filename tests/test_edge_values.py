"""NaN, infinities and signed zeros: every translating backend answers as ONNX Runtime and the
reference evaluator do, wherever those two anchors agree.

Each operator runs on one vector of edge values (and, for reductions and pooling, rows that
hold them). The expected values come from the two anchors, never from modelport: an element is
checked only where ONNX Runtime and the reference evaluator agree with each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport

EDGES = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e30, -1e30, 2.0, -2.0, 0.5],
                 np.float32)
ROWS = np.array([[1.0, np.nan, 3.0, 2.0], [np.inf, 1.0, 2.0, -np.inf], [-np.inf, -np.inf, 0, 1],
                 [np.nan, np.nan, np.nan, np.nan]], np.float32)
UNARY = ["Elu", "Selu", "Celu", "Relu", "LeakyRelu", "Softplus", "Softsign", "HardSigmoid",
         "HardSwish", "Mish", "ThresholdedRelu", "Tanh", "Sigmoid", "Shrink", "Gelu", "Abs",
         "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Erf",
         "IsNaN", "Sin", "Cos", "Atan"]
OUTPUT_TYPES = {"ArgMax": TensorProto.INT64, "ArgMin": TensorProto.INT64,
                "IsNaN": TensorProto.BOOL}
ROW_OPS: dict[str, dict[str, Any]] = {
    "ArgMax": {"axis": 1}, "ArgMin": {"axis": 1}, "ReduceMax": {"keepdims": 0},
    "ReduceMin": {"keepdims": 0}, "ReduceSum": {"keepdims": 0}, "Softmax": {"axis": 1},
    "LogSoftmax": {"axis": 1}, "ReduceLogSumExp": {"keepdims": 0},
}


def single_op(op_type: str, x: np.ndarray, **attributes: Any) -> onnx.ModelProto:
    inputs, init = ["x"], []
    if op_type in ("ReduceMax", "ReduceMin", "ReduceSum", "ReduceLogSumExp"):
        init.append(numpy_helper.from_array(np.array([1], np.int64), "axes"))
        inputs.append("axes")
    graph = helper.make_graph(
        [helper.make_node(op_type, inputs, ["y"], **attributes)], "edge",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", OUTPUT_TYPES.get(op_type, TensorProto.FLOAT),
                                       None)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    model.ir_version = 10
    return model


def anchored(model: onnx.ModelProto, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference evaluator's answer, and where ONNX Runtime agrees with it."""
    import onnxruntime
    from onnx.reference import ReferenceEvaluator

    with np.errstate(all="ignore"):
        reference = np.asarray(ReferenceEvaluator(model).run(None, {"x": x})[0])
    runtime = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    agree = np.isclose(reference, runtime, rtol=1e-5, atol=0, equal_nan=True)
    return reference, agree


def check(backend: str, model: onnx.ModelProto, x: np.ndarray) -> None:
    reference, agree = anchored(model, x)
    y = modelport.get_backend(backend).prepare(model).run({"x": x})["y"]
    ok = np.isclose(y, reference, rtol=1e-5, atol=1e-30, equal_nan=True) | ~agree
    bad = [(x.reshape(-1)[i] if x.size == y.size else i, y.reshape(-1)[i],
            reference.reshape(-1)[i]) for i in np.flatnonzero(~ok)]
    assert not bad, f"(input or position, {backend}, anchors): {bad}"


BACKENDS = ["numpy", "torch", "jax", "tensorflow"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op_type", UNARY)
def test_elementwise_edge_values(backend: str, op_type: str) -> None:
    check(backend, single_op(op_type, EDGES), EDGES)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op_type", ROW_OPS)
def test_reductions_over_rows_with_edge_values(backend: str, op_type: str) -> None:
    check(backend, single_op(op_type, ROWS, **ROW_OPS[op_type]), ROWS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_over_edge_values(backend: str) -> None:
    x = ROWS.reshape(1, 1, 4, 4)
    model = single_op("MaxPool", x, kernel_shape=[2, 2])
    check(backend, model, x)
