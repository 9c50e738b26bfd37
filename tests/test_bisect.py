"""bisect: the first node where two backends part ways, and the reproducer it writes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
import modelport.backends as registry
from modelport.backends.numpy import NumpyBackend
from modelport.bisection import bisect
from modelport.interpreter import Plan


def chain_model() -> onnx.ModelProto:
    """Gemm -> Relu -> MatMul -> Softmax, every node named."""
    rng = np.random.default_rng(3)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="gemm"),
         helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("MatMul", ["r", "W2"], ["m"], name="matmul"),
         helper.make_node("Softmax", ["m"], ["y"], name="softmax", axis=-1)],
        "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "W"),
         numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "B"),
         numpy_helper.from_array(rng.standard_normal((16, 4)).astype(np.float32), "W2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


class Perturbing(NumpyBackend):
    """numpy, except that the node producing ``r`` adds 0.5 to it."""

    name = "perturbing"
    target = "r"

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Any:
        session = super()._prepare(model, device, **options)
        self._perturb(session.plan)  # type: ignore[attr-defined]
        return session

    def _perturb(self, plan: Any) -> None:
        for step in plan.steps:
            for value in step.attributes.values():  # subgraphs (If / Loop / Scan bodies)
                if isinstance(value, Plan):
                    self._perturb(value)
            if self.target in step.outputs:
                def perturbed(ctx: Any, *args: Any, _fn: Any = step.opdef.fn, **kw: Any) -> Any:
                    return _fn(ctx, *args, **kw) + np.float32(0.5)

                step.opdef = dataclasses.replace(step.opdef, fn=perturbed)


class Drifting(NumpyBackend):
    """numpy, with every float result 2e-6 too large: an error that grows node by node."""

    name = "drifting"

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Any:
        session = super()._prepare(model, device, **options)
        for step in session.plan.steps:  # type: ignore[attr-defined]
            def drifted(ctx: Any, *args: Any, _fn: Any = step.opdef.fn, **kw: Any) -> Any:
                return _fn(ctx, *args, **kw) * np.float32(1 + 2e-6)

            step.opdef = dataclasses.replace(step.opdef, fn=drifted)
        return session


@pytest.fixture
def extra_backends() -> Any:
    saved = dict(registry._REGISTRY), dict(registry._instances)
    modelport.register_backend("perturbing", Perturbing)
    modelport.register_backend("drifting", Drifting)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved[0])
    registry._instances.clear()
    registry._instances.update(saved[1])


def test_bisect_names_the_perturbed_node_and_its_repro_disagrees(
        extra_backends: Any, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "chain.onnx"
    onnx.save(chain_model(), path)
    report = bisect(path, ["numpy", "perturbing"], dims={"batch": 3},
                    save_repro=tmp_path / "repro")
    assert report.verdict == "node" and not report.passed
    assert report.culprit is not None and report.culprit["name"] == "relu"
    assert report.culprit["op_type"] == "Relu"
    assert [i["agrees"] for i in report.culprit["inputs"]] == [True]
    assert [o["agrees"] for o in report.culprit["outputs"]] == [False]
    assert [e.name for e in report.curve] == ["gemm", "relu", "matmul", "softmax"]
    assert report.isolated_agrees is False
    # The reproducer alone still shows the disagreement, through modelport compare.
    repro = tmp_path / "repro"
    assert [n.op_type for n in onnx.load(str(repro / "model.onnx")).graph.node] == ["Relu"]
    code, out, _ = cli("compare", repro / "model.onnx", "-b", "numpy", "-b", "perturbing",
                       "--inputs", repro / "inputs.npz", "--format", "json")
    error = json.loads(out)["results"][0]["outputs"][0]["max_abs_error"]
    assert code == 1 and error == pytest.approx(0.5, abs=1e-6)
    with np.load(repro / "outputs_perturbing.npz") as a, np.load(repro / "outputs_numpy.npz") \
            as b:
        np.testing.assert_allclose(a["r"] - b["r"], 0.5, atol=1e-6)


def test_gradual_divergence_is_reported_as_such(extra_backends: Any) -> None:
    chain = [helper.make_node("Add", [f"v{i}", "one"], [f"v{i + 1}"], name=f"add{i}")
             for i in range(12)]
    graph = helper.make_graph(
        chain, "drift", [helper.make_tensor_value_info("v0", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("v12", TensorProto.FLOAT, [4])],
        [numpy_helper.from_array(np.ones(4, np.float32), "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    report = bisect(model, ["numpy", "drifting"], inputs={"v0": np.full(4, 10, np.float32)},
                    atol=0.0, rtol=1e-5)
    assert report.verdict == "gradual"
    ratios = [e.ratio for e in report.curve]
    assert ratios == sorted(ratios) and ratios[0] < 1 < ratios[-1]  # a rising curve
    assert report.culprit is not None and report.culprit["inputs_tolerance_ratio"] >= 0.5


def test_runtime_backends_expose_intermediates_and_agree(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "chain.onnx"
    onnx.save(chain_model(), path)
    code, out, _ = cli("bisect", path, "-b", "onnxruntime", "-b", "reference", "--dim",
                       "batch=5", "--format", "json", "--plot", tmp_path / "curve.png")
    data = json.loads(out)
    assert code == 0 and data["verdict"] == "agree" and data["passed"]
    assert [e["name"] for e in data["curve"]] == ["gemm", "relu", "matmul", "softmax"]
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_bisect_needs_two_backends(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    onnx.save(chain_model(), tmp_path / "chain.onnx")
    code, _, err = cli("bisect", tmp_path / "chain.onnx", "-b", "numpy")
    assert code == 1 and "exactly two backends" in err


def test_divergence_inside_a_subgraph_is_pinned_to_the_enclosing_node(
        extra_backends: Any) -> None:
    branch = helper.make_graph([helper.make_node("Relu", ["x"], ["r"], name="inner_relu")],
                               "then", [], [helper.make_tensor_value_info(
                                   "r", TensorProto.FLOAT, [3])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["n"], name="inner_neg")],
                              "else", [], [helper.make_tensor_value_info(
                                  "n", TensorProto.FLOAT, [3])])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["x2"], name="before"),
         helper.make_node("If", ["c"], ["y"], name="branch", then_branch=branch,
                          else_branch=other),
         helper.make_node("Abs", ["y"], ["z"], name="after")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    report = bisect(model, ["numpy", "perturbing"],
                    inputs={"x": np.array([1, -2, 3], np.float32), "c": np.array(True)})
    assert report.culprit is not None and report.culprit["name"] == "branch"
    assert report.culprit["op_type"] == "If"


def test_a_real_disagreement_between_shipped_backends() -> None:
    """ONNX Runtime and numpy on a float16 MLP (examples/fp16_mlp.py, the README's case)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from fp16_mlp import fp16_mlp

    report = bisect(fp16_mlp(), ["onnxruntime", "numpy"], dims={"batch": 4})
    assert not report.passed and report.culprit is not None
    assert report.culprit["op_type"] in {"MatMul", "Add", "Tanh", "Softmax"}
    assert all(i["agrees"] for i in report.culprit["inputs"])
