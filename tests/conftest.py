"""Shared fixtures: small ONNX models built with onnx.helper, whose answers numpy gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelport.cli.main import main

RNG = np.random.default_rng(42)
W = RNG.standard_normal((4, 3)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)


def mlp_model(*, ir_version: int = 10, opset: int = 17) -> onnx.ModelProto:
    """y = Relu(x @ W + B) with x: FLOAT[batch, 4], y: FLOAT[batch, 3]."""
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="gemm"),
         helper.make_node("Relu", ["h"], ["y"], name="relu")],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="modelport-tests")
    model.ir_version = ir_version
    return model


def mlp_expected(x: np.ndarray) -> np.ndarray:
    """The MLP's answer computed by numpy, independently of any backend."""
    return np.maximum(x @ W + B, 0)


def wide_model(k: int = 512) -> onnx.ModelProto:
    """y = x @ W with a long inner dimension, where engines' summation orders differ."""
    w = np.random.default_rng(7).standard_normal((k, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul")], "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        [numpy_helper.from_array(w, "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def wide_path(tmp_path: Path) -> Path:
    path = tmp_path / "wide.onnx"
    onnx.save(wide_model(), path)
    return path


@pytest.fixture
def mlp_path(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(), path)
    return path


@pytest.fixture
def register():  # type: ignore[no-untyped-def]
    """Register backends for one test: ``register(name, cls)``; the registry is restored after."""
    import modelport
    import modelport.backends as registry

    saved = dict(registry._REGISTRY), dict(registry._instances)
    yield modelport.register_backend
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved[0])
    registry._instances.clear()
    registry._instances.update(saved[1])


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The seed classifier and the random-weight architectures, exported once."""
    pytest.importorskip("transformers")
    import torch

    import modelport
    from modelport.demo import make_data, train
    from models.zoo import ZOO, export

    folder = tmp_path_factory.mktemp("zoo")
    x, y = make_data(500, seed=1)
    classifier, _ = train(x, y, epochs=2, seed=1)
    seed = folder / "seed.onnx"
    modelport.export.torch(classifier, torch.from_numpy(x[:4]), seed, input_names=["input"],
                           output_names=["output"], report=False)
    return {"seed": seed, **{name: export(name, folder) for name in ZOO}}
