"""Casts whose answers libraries disagree on: our rule, the same on every framework.

ml_dtypes 0.7 turned an out-of-range cast to int4 from wrapping into 0; the shared Cast no
longer depends on it. Expected values are worked out by hand from the rule in
``modelport.ops.shape._into_narrow_integer``: integers wrap in two's complement (the spec's rule
for fixed-point casts); floats are truncated, and out of range (the spec leaves it undefined)
give 0.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import modelport

FLOATS = [-9.5, -8.0, -1.7, 0.0, 7.9, 8.0, 15.0, 16.0, np.nan, np.inf]
INTS = [-9, -8, 7, 8, 15, 16, 200]
EXPECTED = {
    ("float", TensorProto.INT4): [0, -8, -1, 0, 7, 0, 0, 0, 0, 0],
    ("float", TensorProto.UINT4): [0, 0, 0, 0, 7, 8, 15, 0, 0, 0],
    ("float", TensorProto.INT2): [0, 0, -1, 0, 0, 0, 0, 0, 0, 0],
    ("int", TensorProto.INT4): [7, -8, 7, -8, -1, 0, -8],
    ("int", TensorProto.UINT4): [7, 8, 7, 8, 15, 0, 8],
    ("int", TensorProto.UINT2): [3, 0, 3, 0, 3, 0, 0],
}


def cast_model(source: int, to: int, n: int) -> object:
    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=to)], "cast",
                              [helper.make_tensor_value_info("x", source, [n])],
                              [helper.make_tensor_value_info("y", to, [n])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
@pytest.mark.parametrize(("kind", "to"), list(EXPECTED))
def test_casts_to_narrow_integers_follow_one_rule(backend: str, kind: str, to: int) -> None:
    values = np.array(FLOATS, np.float32) if kind == "float" else np.array(INTS, np.int32)
    source = TensorProto.FLOAT if kind == "float" else TensorProto.INT32
    session = modelport.get_backend(backend).prepare(cast_model(source, to, len(values)))
    y = session.run({"x": values})["y"]
    assert np.asarray(y).astype(np.int8).tolist() == EXPECTED[kind, to]
