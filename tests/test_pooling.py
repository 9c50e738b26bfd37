"""Pooling's spec logic, written once in the shared operators, against ONNX Runtime: MaxPool's
Indices (unpadded, row- or column-major by ``storage_order``, offset per image) and
AveragePool's divisor (``count_include_pad``, never ceil_mode's extra cells), over geometries
the node suite leaves out: 1-D and 3-D, pads with dilations, strides, ceil_mode, batches of
several images and channels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

import modelport

GEOMETRIES: dict[str, dict[str, Any]] = {
    "1d-padded": {"kernel_shape": [3], "pads": [1, 2], "strides": [2]},
    "2d-dilated-padded": {"kernel_shape": [3, 3], "pads": [1, 0, 2, 1], "dilations": [2, 1]},
    "2d-ceil": {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 0, 0]},
    "3d-strided": {"kernel_shape": [2, 2, 2], "strides": [2, 1, 2], "pads": [0, 1, 1, 1, 0, 1]},
}
SHAPES = {1: (2, 3, 11), 2: (2, 3, 9, 8), 3: (2, 2, 5, 6, 7)}
BACKENDS = ["numpy", "torch", "jax", "tensorflow"]


def pool_model(op_type: str, rank: int, outputs: int, **attributes: Any) -> Any:
    names = ["y", "indices"][:outputs]
    graph = helper.make_graph(
        [helper.make_node(op_type, ["x"], names, **attributes)], "pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPES[rank]))],
        [helper.make_tensor_value_info(n, t, None)
         for n, t in zip(names, [TensorProto.FLOAT, TensorProto.INT64], strict=False)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)], ir_version=10)


def against_onnxruntime(backend: str, model: Any, rank: int) -> None:
    import onnxruntime

    # distinct values: which cell is the max is then never a matter of ties
    x = np.random.default_rng(rank).permutation(np.prod(SHAPES[rank])).astype(np.float32)
    x = x.reshape(SHAPES[rank])
    want = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    got = modelport.get_backend(backend).prepare(model).run({"x": x})
    for name, expected in zip([o.name for o in model.graph.output], want, strict=True):
        assert got[name].dtype == expected.dtype
        np.testing.assert_allclose(got[name], expected, rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_max_pool_indices(backend: str, geometry: str, storage_order: int) -> None:
    attributes = GEOMETRIES[geometry]
    rank = len(attributes["kernel_shape"])
    model = pool_model("MaxPool", rank, 2, storage_order=storage_order, **attributes)
    against_onnxruntime(backend, model, rank)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_average_pool_divisor(backend: str, geometry: str, count_include_pad: int) -> None:
    attributes = {k: v for k, v in GEOMETRIES[geometry].items() if k != "dilations"}
    rank = len(attributes["kernel_shape"])
    model = pool_model("AveragePool", rank, 1, count_include_pad=count_include_pad,
                       **attributes)
    against_onnxruntime(backend, model, rank)
