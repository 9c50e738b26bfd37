"""Files at old opsets, as the TorchScript exporter writes them (and the ONNX Model Zoo holds):
every translating backend runs them and agrees with ONNX Runtime."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import onnx
import pytest

import modelport

torch = pytest.importorskip("torch")


class Net(torch.nn.Module):  # type: ignore[misc]
    """Conv, BatchNormalization, Upsample/Resize, MaxPool, Pad, Split, Gather, Softmax,
    LogSoftmax and ArgMax: the operators whose old versions differ in name or attributes."""

    def __init__(self, upsample: bool) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.up = torch.nn.Upsample(scale_factor=2, mode="nearest") if upsample else None
        self.deconv = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.fc = torch.nn.Linear(4, 5)
        self.table = torch.nn.Parameter(torch.randn(5, 3))

    def forward(self, x: Any) -> Any:
        y = torch.relu(self.bn(self.conv(x)))
        if self.up is not None:
            y = self.up(y)
        y = torch.nn.functional.max_pool2d(y, 2)
        y = self.deconv(y)
        logits = self.fc(y.mean(dim=(2, 3)))
        first, _ = y.split([1, 3], dim=1)
        picked = self.table[logits.argmax(dim=1)]
        return (torch.softmax(logits, dim=1), torch.log_softmax(logits, dim=1), picked,
                torch.nn.functional.pad(first, (1, 1, 0, 0)))


def exported(opset: int) -> onnx.ModelProto:
    torch.manual_seed(opset)
    net = Net(upsample=opset >= 9).eval()  # the exporter cannot write Upsample below opset 9
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.randn(2, 3, 8, 8), buffer, opset_version=opset,
                          dynamo=False, input_names=["x"])
    model = onnx.load_from_string(buffer.getvalue())
    assert model.opset_import[0].version == opset
    return model


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
@pytest.mark.parametrize("opset", [7, 9, 10, 11])
def test_the_torchscript_exporter_at_an_old_opset(opset: int, backend: str) -> None:
    import onnxruntime

    model = exported(opset)
    x = np.random.default_rng(opset).standard_normal((2, 3, 8, 8)).astype(np.float32)
    want = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    got = modelport.get_backend(backend).prepare(model).run({"x": x})
    for output, expected in zip(model.graph.output, want, strict=True):
        np.testing.assert_allclose(got[output.name], expected, rtol=1e-4, atol=1e-5,
                                   err_msg=f"{output.name} at opset {opset}")


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
@pytest.mark.parametrize("spatial", [0, 1])
def test_batch_normalization_7_spatial(backend: str, spatial: int) -> None:
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(spatial)
    stats = (3, 4, 5) if spatial == 0 else (3,)  # spatial 0: one statistic per element
    params = [rng.standard_normal(stats).astype(np.float32) for _ in range(3)]
    params.append(rng.uniform(0.5, 2, stats).astype(np.float32))
    names = ["scale", "bias", "mean", "var"]
    graph = helper.make_graph(
        [helper.make_node("BatchNormalization", ["x", *names], ["y"], spatial=spatial,
                          epsilon=1e-3)], "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4, 5])],
        [numpy_helper.from_array(p, n) for p, n in zip(params, names, strict=True)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)], ir_version=3)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    (want,) = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    got = modelport.get_backend(backend).prepare(model).run({"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_7_with_scales_as_an_attribute(backend: str, mode: str) -> None:
    import onnxruntime
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=[1.0, 1.0, 2.0, 3.0])],
        "up", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 12])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)], ir_version=3)
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4)).astype(np.float32)
    (want,) = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    got = modelport.get_backend(backend).prepare(model).run({"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


UNARY_1 = ["Abs", "Ceil", "Exp", "Floor", "Log", "Neg", "Sqrt", "Tanh", "Reciprocal", "Relu",
           "Sigmoid", "Elu", "Selu", "LeakyRelu", "HardSigmoid"]


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
def test_version_1_activations_with_consumed_inputs(backend: str) -> None:
    # Files from opsets 1-5 carry `consumed_inputs`, an in-place hint; it changes nothing.
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    nodes = [helper.make_node(name, ["x"], [name], consumed_inputs=[0]) for name in UNARY_1]
    graph = helper.make_graph(
        nodes, "v1", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [7])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [7]) for name in UNARY_1])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 5)], ir_version=3)
    x = np.array([0.25, 1.5, 3.0, 0.75, 2.0, 0.1, 5.0], np.float32)
    got = modelport.get_backend(backend).prepare(model).run({"x": x})
    # The anchor: each activation at version 6, which the v1 schema says it equals.
    for name in UNARY_1:
        node = helper.make_node(name, ["x"], ["y"])
        v6 = helper.make_model(helper.make_graph(
            [node], "v6", graph.input, [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                                      [7])]),
            opset_imports=[helper.make_opsetid("", 6)], ir_version=3)
        (want,) = ReferenceEvaluator(v6).run(None, {"x": x})
        if name == "Selu":  # version 1's defaults: alpha 1.6732, gamma 1.0507 (6 adds digits)
            want = 1.0507 * np.where(x > 0, x, 1.6732 * np.expm1(x))
        np.testing.assert_allclose(got[name], want, rtol=1e-4, err_msg=name)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div", "Pow"])
def test_legacy_broadcast_lines_b_up_with_a_at_axis(backend: str, op_type: str) -> None:
    # Opsets 1-6: B broadcasts only with broadcast=1, its axes matched to A's from `axis`.
    from onnx import TensorProto, helper

    version = 1 if op_type == "Pow" else 6
    cases = {"at1": (1, (3,)), "at0": (0, (2, 3)), "suffix": (None, (4,))}
    nodes, outputs = [], []
    for name, (axis, _) in cases.items():
        extra = {} if axis is None else {"axis": axis}
        nodes.append(helper.make_node(op_type, ["a", f"b_{name}"], [name], broadcast=1, **extra))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [2, 3, 4]))
    graph = helper.make_graph(
        nodes, "legacy", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3, 4])]
        + [helper.make_tensor_value_info(f"b_{n}", TensorProto.FLOAT, list(s))
           for n, (_, s) in cases.items()], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)],
                              ir_version=3)
    rng = np.random.default_rng(0)
    feeds = {"a": rng.uniform(1, 2, (2, 3, 4)).astype(np.float32)}
    feeds.update({f"b_{n}": rng.uniform(1, 2, s).astype(np.float32) for n, (_, s) in cases.items()})
    got = modelport.get_backend(backend).prepare(model).run(feeds)
    fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
          "Pow": np.power}[op_type]
    a = feeds["a"]
    np.testing.assert_allclose(got["at1"], fn(a, feeds["b_at1"][None, :, None]), rtol=1e-6)
    np.testing.assert_allclose(got["at0"], fn(a, feeds["b_at0"][:, :, None]), rtol=1e-6)
    np.testing.assert_allclose(got["suffix"], fn(a, feeds["b_suffix"]), rtol=1e-6)


def _opset_1_model() -> Any:
    """Version 1 of operators whose attributes became inputs or changed form later."""
    from onnx import TensorProto, helper

    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Concat", ["x", "x"], ["concat"]),  # no axis: 1
        helper.make_node("Reshape", ["x"], ["reshape"], shape=[3, 8]),
        helper.make_node("TopK", ["x"], ["top_values", "top_indices"], k=2),
        helper.make_node("Pad", ["x"], ["pad"], paddings=[0, 1, 0, 2], value=7.0),
        helper.make_node("Split", ["x", "sizes"], ["split_a", "split_b"], axis=1),
        helper.make_node("Cast", ["x"], ["cast"], to="INT32"),
        helper.make_node("Clip", ["x"], ["clip"], max=0.5),
        helper.make_node("MatMul", ["x", "w"], ["matmul"]),
        helper.make_node("Flatten", ["x"], ["flatten"]),
        helper.make_node("Sum", ["x", "x", "x"], ["sum"]),
        helper.make_node("Max", ["x", "w_t"], ["max"]),
        helper.make_node("DepthToSpace", ["image"], ["d2s"], blocksize=2),
        helper.make_node("AveragePool", ["image"], ["avg"], kernel_shape=[2, 2],
                         pads=[1, 1, 0, 0]),
        helper.make_node("Tile", ["x", "tiles", "axis"], ["tile"]),
        helper.make_node("LpPool", ["image"], ["lp"], kernel_shape=[2, 2], p=3.0),
        helper.make_node("GlobalLpPool", ["image"], ["global_lp"], p=3.0),
        helper.make_node("Upsample", ["image"], ["up"], height_scale=2.0, width_scale=3.0),
    ]
    graph = helper.make_graph(
        nodes, "v1",
        [helper.make_tensor_value_info("x", f, [4, 6]),
         helper.make_tensor_value_info("w", f, [6, 2]),
         helper.make_tensor_value_info("w_t", f, [4, 6]),
         helper.make_tensor_value_info("image", f, [1, 4, 2, 3]),
         helper.make_tensor_value_info("sizes", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("tiles", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("axis", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info(n, t, None) for n, t in [
            ("concat", f), ("reshape", f), ("top_values", f), ("top_indices", TensorProto.INT64),
            ("pad", f), ("split_a", f), ("split_b", f), ("cast", TensorProto.INT32), ("clip", f),
            ("matmul", f), ("flatten", f), ("sum", f), ("max", f), ("d2s", f), ("avg", f),
            ("tile", f), ("lp", f), ("global_lp", f), ("up", f)]])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 1)], ir_version=3)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
def test_version_1_forms_of_later_inputs_and_attributes(backend: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, (4, 6)).astype(np.float32)
    feeds = {"x": x, "w": rng.standard_normal((6, 2)).astype(np.float32),
             "w_t": rng.standard_normal((4, 6)).astype(np.float32),
             "image": rng.standard_normal((1, 4, 2, 3)).astype(np.float32),
             "sizes": np.array([2, 4], np.int64), "tiles": np.array([3], np.int64),
             "axis": np.array([1], np.int64)}
    got = modelport.get_backend(backend).prepare(_opset_1_model()).run(feeds)
    order = np.argsort(-x, axis=1, kind="stable")[:, :2]
    image = feeds["image"]
    # DepthToSpace DCR, by hand: (1, 4, 2, 3) -> (1, 1, 4, 6)
    d2s = image.reshape(1, 2, 2, 1, 2, 3).transpose(0, 3, 4, 1, 5, 2).reshape(1, 1, 4, 6)
    # AveragePool 2x2 with one row and column of padding in front, padding not counted
    padded = np.pad(image, [(0, 0), (0, 0), (1, 0), (1, 0)], constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (2, 2), axis=(2, 3))
    expected = {
        "concat": np.concatenate([x, x], axis=1), "reshape": x.reshape(3, 8),
        "top_values": np.take_along_axis(x, order, 1), "top_indices": order,
        "pad": np.pad(x, [(0, 0), (1, 2)], constant_values=7.0),
        "split_a": x[:, :2], "split_b": x[:, 2:], "cast": x.astype(np.int32),
        "clip": np.minimum(x, 0.5), "matmul": x @ feeds["w"], "flatten": x.reshape(4, 6),
        "sum": 3 * x, "max": np.maximum(x, feeds["w_t"]), "d2s": d2s,
        "avg": np.nanmean(windows, axis=(-2, -1)),
        "tile": np.tile(x, (1, 3)),
        "lp": (np.abs(np.lib.stride_tricks.sliding_window_view(image, (2, 2), axis=(2, 3)))
               ** 3).sum(axis=(-2, -1)) ** (1 / 3),
        "global_lp": (np.abs(image) ** 3).sum(axis=(2, 3), keepdims=True) ** (1 / 3),
        "up": image.repeat(2, axis=2).repeat(3, axis=3),
    }
    for name, want in expected.items():
        assert got[name].shape == want.shape, name
        np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
def test_version_6_gemm_dropout_and_batch_normalization(backend: str) -> None:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(6)
    scale, bias, mean = (rng.standard_normal(3).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2, 3).astype(np.float32)
    c = rng.standard_normal(5).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["a", "b", "c"], ["gemm"], broadcast=1, transB=1, alpha=0.5),
         helper.make_node("Dropout", ["a"], ["dropped"], is_test=1, ratio=0.3),
         helper.make_node("BatchNormalization", ["image", "scale", "bias", "mean", "var"],
                          ["bn"], is_test=1, epsilon=1e-3)], "v6",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [5, 4]),
         helper.make_tensor_value_info("image", TensorProto.FLOAT, [2, 3, 2, 2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
         for n in ("gemm", "dropped", "bn")],
        [numpy_helper.from_array(v, n) for v, n in
         [(c, "c"), (scale, "scale"), (bias, "bias"), (mean, "mean"), (var, "var")]])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)], ir_version=3)
    a = rng.standard_normal((2, 4)).astype(np.float32)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    image = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    got = modelport.get_backend(backend).prepare(model).run({"a": a, "b": b, "image": image})
    per = (slice(None), None, None)
    np.testing.assert_allclose(got["gemm"], 0.5 * a @ b.T + c, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got["dropped"], a)
    np.testing.assert_allclose(got["bn"], (image - mean[per]) / np.sqrt(var[per] + 1e-3)
                               * scale[per] + bias[per], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
@pytest.mark.parametrize(("op_type", "gates", "opset"), [
    ("RNN", 1, 1), ("GRU", 3, 1), ("GRU", 3, 3), ("LSTM", 4, 1)])
def test_version_1_and_3_recurrent_layers(backend: str, op_type: str, gates: int,
                                          opset: int) -> None:
    """The first recurrent versions carry ``output_sequence``, which version 7 dropped without
    changing what is computed: each must give what onnxruntime gives for the same node at
    version 7 (onnxruntime has no kernel for versions 1 and 3)."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(gates + opset)
    hidden, names = 5, ["x", "w", "r", "b"]
    feeds = {"x": rng.standard_normal((4, 2, 3)), "w": rng.standard_normal((2, gates * hidden, 3)),
             "r": rng.standard_normal((2, gates * hidden, hidden)),
             "b": rng.standard_normal((2, 2 * gates * hidden))}
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}

    def model(version: int, **extra: Any) -> onnx.ModelProto:
        node = helper.make_node(op_type, names, ["y", "y_h"], hidden_size=hidden,
                                direction="bidirectional", **extra)
        graph = helper.make_graph(
            [node], "recurrent", [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                                  for n in names],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "y_h")])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)])

    want = modelport.get_backend("onnxruntime").prepare(model(7)).run(feeds)
    got = modelport.get_backend(backend).prepare(model(opset, output_sequence=1)).run(feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)
