"""Microsoft contrib operators, as onnxruntime's own tools write them and onnxruntime runs them:
every translating backend agrees with onnxruntime."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import modelport

BACKENDS = ["numpy", "torch", "jax", "tensorflow"]


def _against_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray], backend: str,
                         tolerance: float = 1e-5) -> None:
    import onnxruntime

    names = [o.name for o in model.graph.output]
    want = onnxruntime.InferenceSession(model.SerializeToString()).run(None, feeds)
    got = modelport.get_backend(backend).prepare(model).run(feeds)
    for name, expected in zip(names, want, strict=True):
        np.testing.assert_allclose(got[name], expected, rtol=tolerance, atol=tolerance,
                                   err_msg=name)


@pytest.fixture(scope="module")
def optimized_bert(zoo: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(zoo["bert"]), model_type="bert", num_heads=0,
                               hidden_size=0, opt_level=1)
    path = tmp_path_factory.mktemp("optimized") / "bert.onnx"
    optimized.save_model_to_file(str(path))
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_bert_from_the_transformers_optimizer(optimized_bert: Path, backend: str) -> None:
    from models.zoo import feeds_for

    model = onnx.load(optimized_bert)
    fused = {n.op_type for n in model.graph.node if n.domain == "com.microsoft"}
    assert {"SkipLayerNormalization", "BiasGelu"} <= fused, fused  # what this test is about
    _against_onnxruntime(model, feeds_for(optimized_bert, 2, seed=0), backend, 1e-4)


def _single(op_type: str, inputs: dict[str, tuple[int, ...]], outputs: list[str],
            **attributes: Any) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op_type, list(inputs), outputs, domain="com.microsoft",
                          **attributes)], "contrib",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s))
         for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs if n])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.microsoft", 1)])


CASES: dict[str, tuple[str, dict[str, tuple[int, ...]], list[str], dict[str, Any]]] = {
    "Gelu": ("Gelu", {"x": (2, 8)}, ["y"], {}),
    "BiasGelu": ("BiasGelu", {"x": (2, 3, 8), "b": (8,)}, ["y"], {}),
    "FastGelu": ("FastGelu", {"x": (2, 8)}, ["y"], {}),
    "FastGelu-bias": ("FastGelu", {"x": (2, 3, 8), "b": (8,)}, ["y"], {}),
    "QuickGelu": ("QuickGelu", {"x": (2, 8)}, ["y"], {"alpha": 1.5}),
    "FusedMatMul": ("FusedMatMul", {"a": (2, 3, 4), "b": (2, 4, 5)}, ["y"], {"alpha": 0.5}),
    "FusedMatMul-trans": ("FusedMatMul", {"a": (2, 4, 3), "b": (2, 5, 4)}, ["y"],
                          {"transA": 1, "transB": 1}),
    "FusedMatMul-batch": ("FusedMatMul", {"a": (3, 2, 4), "b": (2, 4, 5)}, ["y"],
                          {"transBatchA": 1}),
    "SkipLayerNormalization": ("SkipLayerNormalization",
                               {"x": (2, 3, 8), "skip": (2, 3, 8), "gamma": (8,), "beta": (8,),
                                "bias": (8,)}, ["y", "", "", "sum"], {"epsilon": 1e-5}),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_each_contrib_operator(case: str, backend: str) -> None:
    op_type, inputs, outputs, attributes = CASES[case]
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in inputs.items()}
    _against_onnxruntime(_single(op_type, inputs, outputs, **attributes), feeds, backend)


def test_declared_defaults_are_onnxruntimes() -> None:
    from onnxruntime.capi import onnxruntime_pybind11_state as ort

    from modelport.ops.registry import REGISTRY

    schemas = {s.name: s for s in ort.get_all_operator_schema() if s.domain == "com.microsoft"}
    wrong = []
    for (domain, op_type, _), opdef in REGISTRY.items():
        if domain != "com.microsoft":
            continue
        declared = {n: p.default for n, p in inspect.signature(opdef.fn).parameters.items()
                    if p.kind == p.KEYWORD_ONLY}
        for name, attribute in schemas[op_type].attributes.items():
            proto = onnx.AttributeProto()
            proto.ParseFromString(attribute._default_value)
            default = onnx.helper.get_attribute_value(proto) if attribute._default_value else None
            if declared.get(name) != pytest.approx(default):
                wrong.append(f"{op_type}.{name}: declared {declared.get(name)}, schema {default}")
    assert not wrong
