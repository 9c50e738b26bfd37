"""NaN, infinities and signed zeros: every translating backend answers as ONNX Runtime and the
reference evaluator do, wherever those two anchors agree.

Each operator runs on one vector of edge values (binary operators on every pair of them; for
reductions and pooling, rows that hold them). The expected values come from the anchors, never
from modelport: an element is checked only where ONNX Runtime and the reference evaluator agree
with each other. Where they disagree on most of a case, modelport made a choice, written in
``CHOSEN`` with its reason, and the case is held to it.
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
# every float unary operator of the default domain (the activations, math and rounding)
UNARY = ["Elu", "Selu", "Celu", "Relu", "LeakyRelu", "Softplus", "Softsign", "HardSigmoid",
         "HardSwish", "Mish", "ThresholdedRelu", "Tanh", "Sigmoid", "Shrink", "Gelu", "Abs",
         "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Erf",
         "IsNaN", "IsInf", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh",
         "Acosh", "Atanh", "Identity"]
# every float binary operator: all pairs of edge values
BINARY: dict[str, dict[str, Any]] = {
    "Add": {}, "Sub": {}, "Mul": {}, "Div": {}, "Pow": {}, "Max": {}, "Min": {}, "Mean": {},
    "Sum": {}, "Mod": {"fmod": 1}, "PRelu": {}, "Equal": {}, "Less": {}, "LessOrEqual": {},
    "Greater": {}, "GreaterOrEqual": {},
}
OUTPUT_TYPES = {"ArgMax": TensorProto.INT64, "ArgMin": TensorProto.INT64,
                "IsNaN": TensorProto.BOOL, "IsInf": TensorProto.BOOL, "Equal": TensorProto.BOOL,
                "Less": TensorProto.BOOL, "LessOrEqual": TensorProto.BOOL,
                "Greater": TensorProto.BOOL, "GreaterOrEqual": TensorProto.BOOL}
REDUCE = ["ReduceMax", "ReduceMin", "ReduceSum", "ReduceLogSumExp", "ReduceMean", "ReduceProd",
          "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceSumSquare"]
ROW_OPS: dict[str, dict[str, Any]] = {
    "ArgMax": {"axis": 1}, "ArgMin": {"axis": 1}, "Softmax": {"axis": 1},
    "LogSoftmax": {"axis": 1}, "Hardmax": {"axis": 1}, "CumSum": {},
    "LpNormalization": {"axis": 1}, **{name: {"keepdims": 0} for name in REDUCE},
}
# pooling over the rows as one 4x4 image, windows that overlap and pads
POOLS: dict[str, dict[str, Any]] = {
    "MaxPool": {"kernel_shape": [2, 2]},
    "MaxPool-strided-padded": {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    "AveragePool": {"kernel_shape": [2, 2]},
    "AveragePool-padded": {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    "LpPool": {"kernel_shape": [2, 2]},
    "GlobalMaxPool": {}, "GlobalAveragePool": {}, "GlobalLpPool": {},
}


# The sign of a zero result is left open: IEEE 754 leaves max(-0.0, +0.0) to the
# implementation, ONNX says nothing about Relu(-0.0) or Sign(-0.0), and both anchors add Sum
# and Mean from a +0.0 accumulator where Add keeps -0.0 + -0.0 = -0.0. -0.0 == 0.0 there.
ZERO_SIGN_OPEN = {"Relu", "Sign", "Max", "Min", "Sum", "Mean", "ReduceMax", "ReduceMin",
                  "MaxPool", "GlobalMaxPool"}
# Where the anchors disagree, whom modelport follows, and why.
CHOSEN: dict[str, str | np.ndarray] = {
    # Arithmetic's answer: a NaN in a window is NaN, inf + -inf is NaN. The reference
    # evaluator passes over NaN in some windows and not in others.
    "AveragePool": "onnxruntime", "AveragePool-padded": "onnxruntime",
    "LpPool": "onnxruntime",
    # Neither anchor has GlobalLpPool-22; arithmetic's answer, by hand: the image holds NaN.
    "GlobalLpPool": np.full((1, 1, 1, 1), np.nan, np.float32),
    # The largest number of each window, NaN only where a window holds nothing but NaN: the
    # rule on which both anchors agree for unpadded windows (MaxPool above). Padded, each
    # anchor answers NaN for a different window: onnxruntime where the window's first value
    # is NaN, the reference evaluator elsewhere. Windows of the rows as a 4x4 image, by hand:
    # {1, nan, inf, 1}, {nan, 3, 2, 1, 2, -inf}, {inf, 1, -inf, -inf, nan, nan},
    # {1, 2, -inf, -inf, 0, 1, nan, nan, nan}.
    "MaxPool-strided-padded": np.array([[[[np.inf, 3], [np.inf, 2]]]], np.float32),
}


def single_op(op_type: str, x: np.ndarray, **attributes: Any) -> onnx.ModelProto:
    inputs, init = ["x"], []
    if op_type in REDUCE or op_type == "CumSum":
        init.append(numpy_helper.from_array(np.array([1] if op_type in REDUCE else 1, np.int64),
                                            "axes"))
        inputs.append("axes")
    graph = helper.make_graph(
        [helper.make_node(op_type.split("-")[0], inputs, ["y"], **attributes)], "edge",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", OUTPUT_TYPES.get(op_type, TensorProto.FLOAT),
                                       None)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    model.ir_version = 10
    return model


def binary_op(op_type: str, **attributes: Any) -> onnx.ModelProto:
    """``op_type`` on two vectors that hold every pair of edge values."""
    graph = helper.make_graph(
        [helper.make_node(op_type, ["a", "b"], ["y"], **attributes)], "edge",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [len(EDGES) ** 2]) for n in "ab"],
        [helper.make_tensor_value_info("y", OUTPUT_TYPES.get(op_type, TensorProto.FLOAT),
                                       None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    model.ir_version = 10
    return model


def anchored(model: onnx.ModelProto, feeds: dict[str, np.ndarray]
             ) -> tuple[np.ndarray, np.ndarray]:
    """The reference evaluator's answer, and where ONNX Runtime agrees with it."""
    import onnxruntime
    from onnx.reference import ReferenceEvaluator

    with np.errstate(all="ignore"):
        reference = np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])
    runtime = onnxruntime.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    agree = np.isclose(reference, runtime, rtol=1e-5, atol=0, equal_nan=True)
    return reference, agree


def expected(case: str, model: onnx.ModelProto, feeds: dict[str, np.ndarray]
             ) -> tuple[np.ndarray, np.ndarray]:
    """What to hold modelport to, and where."""
    chosen = CHOSEN.get(case)
    if chosen is None:
        reference, agree = anchored(model, feeds)
        assert agree.mean() > 0.5, "the anchors disagree on most of this case: choose"
        return reference, agree
    if isinstance(chosen, str):  # onnxruntime
        import onnxruntime

        chosen = onnxruntime.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    return chosen, np.ones(chosen.shape, bool)


def check(case: str, backend: str, model: onnx.ModelProto, **feeds: np.ndarray) -> None:
    reference, agree = expected(case, model, feeds)
    y = modelport.get_backend(backend).prepare(model).run(feeds)["y"]
    ok = np.isclose(y, reference, rtol=1e-5, atol=1e-30, equal_nan=True) | ~agree
    if reference.dtype.kind == "f" and case.split("-")[0] not in ZERO_SIGN_OPEN:
        ok &= (np.signbit(y) == np.signbit(reference)) | ~agree | (reference != 0)
    inputs = np.broadcast_arrays(*feeds.values())
    bad = [(tuple(float(a.reshape(-1)[i]) for a in inputs) if inputs[0].size == y.size else i,
            y.reshape(-1)[i], reference.reshape(-1)[i]) for i in np.flatnonzero(~ok)]
    assert not bad, f"(inputs or position, {backend}, anchors): {bad}"


BACKENDS = ["numpy", "torch", "jax", "tensorflow"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op_type", UNARY)
def test_elementwise_edge_values(backend: str, op_type: str) -> None:
    check(op_type, backend, single_op(op_type, EDGES), x=EDGES)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op_type", ROW_OPS)
def test_reductions_over_rows_with_edge_values(backend: str, op_type: str) -> None:
    check(op_type, backend, single_op(op_type, ROWS, **ROW_OPS[op_type]), x=ROWS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op_type", BINARY)
def test_binary_edge_values(backend: str, op_type: str) -> None:
    check(op_type, backend, binary_op(op_type, **BINARY[op_type]),
          a=np.repeat(EDGES, len(EDGES)), b=np.tile(EDGES, len(EDGES)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op_type", POOLS)
def test_pooling_over_edge_values(backend: str, op_type: str) -> None:
    x = ROWS.reshape(1, 1, 4, 4)
    check(op_type, backend, single_op(op_type, x, **POOLS[op_type]), x=x)
