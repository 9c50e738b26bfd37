"""Build the float16 MLP of the README's bisect example: ``python examples/fp16_mlp.py out.onnx``.

Then ``modelport bisect out.onnx -b onnxruntime -b numpy --dim batch=4`` names the node where
the two backends part ways.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def fp16_mlp() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    half = TensorProto.FLOAT16
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"], name="fc1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
             helper.make_node("Tanh", ["hb"], ["t"], name="tanh"),
             helper.make_node("MatMul", ["t", "W2"], ["logits"], name="fc2"),
             helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=-1)]
    weights = [
        numpy_helper.from_array((rng.standard_normal((256, 256)) / 8).astype(np.float16), "W1"),
        numpy_helper.from_array(rng.standard_normal(256).astype(np.float16), "b1"),
        numpy_helper.from_array((rng.standard_normal((256, 10)) / 8).astype(np.float16), "W2")]
    graph = helper.make_graph(nodes, "fp16_mlp",
                              [helper.make_tensor_value_info("x", half, ["batch", 256])],
                              [helper.make_tensor_value_info("y", half, ["batch", 10])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


if __name__ == "__main__":
    onnx.save(fp16_mlp(), sys.argv[1] if len(sys.argv) > 1 else "mlp16.onnx")
