"""Translating backends (numpy, torch, jax) on real architectures, native artifacts, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import modelport
from conftest import mlp_expected, mlp_model
from modelport.errors import UnsupportedOperatorError

pytest.importorskip("torch")
pytest.importorskip("transformers")

from models.zoo import ZOO, feeds_for

TRANSLATING = [b for b in ("numpy", "torch", "jax", "tensorflow")
               if b in {i.name for i in modelport.list_backends() if i.available}]


@pytest.mark.parametrize("backend", TRANSLATING)
@pytest.mark.parametrize("model", ["seed", *ZOO])
def test_agrees_with_onnxruntime(zoo: dict[str, Path], backend: str, model: str) -> None:
    path = zoo[model]
    reference = modelport.get_backend("onnxruntime").prepare(path)
    session = modelport.get_backend(backend).prepare(path)
    for batch in (1, 3):
        feeds = feeds_for(path, batch, seed=batch)
        expected, actual = reference.run(feeds), session.run(feeds)
        for name, want in expected.items():
            assert actual[name].shape == want.shape and actual[name].dtype == want.dtype
            np.testing.assert_allclose(actual[name], want, rtol=0, atol=1e-4,
                                       err_msg=f"{model} {name} at batch {batch}")


@pytest.mark.parametrize("backend", TRANSLATING)
def test_each_is_an_onnx_backend_module(backend: str) -> None:
    import importlib

    module = importlib.import_module(f"modelport.backends.{backend}")
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(module.prepare(mlp_model()).run(x)[0], mlp_expected(x),
                               rtol=1e-6)


def test_unsupported_operators_are_all_named_at_once() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"], name="fine"),
         helper.make_node("Frobnicate", ["a"], ["b"], name="first_bad", domain="acme"),
         helper.make_node("Twiddle", ["b"], ["y"], name="second_bad", domain="acme")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("acme", 1)])
    with pytest.raises(UnsupportedOperatorError) as caught:
        modelport.get_backend("numpy").prepare(model)
    message = str(caught.value)
    assert "2 node(s)" in message and "first_bad" in message and "second_bad" in message
    assert "acme::Frobnicate" in message and "acme::Twiddle" in message
    assert "fine" not in message


def test_torch_native_module_fine_tunes(zoo: dict[str, Path]) -> None:
    import torch

    from modelport.demo import make_data

    module = modelport.get_backend("torch").prepare(zoo["seed"]).native()
    params = list(module.parameters())
    assert len(params) == 4 and all(p.requires_grad for p in params)
    x, y = make_data(256, seed=7)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    module.train()
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(xt), yt)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def _fresh_process(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_torch_save_reloads_without_modelport(zoo: dict[str, Path], tmp_path: Path,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    session = modelport.get_backend("torch").prepare(zoo["seed"])
    session.save(tmp_path / "seed.pt2")
    assert ".part" not in "".join(capfd.readouterr())  # no temporary name leaks into warnings
    assert (tmp_path / "seed.pt2").stat().st_mode & 0o777 == 0o666 & ~_umask()
    for batch in (1, 7):
        feeds = feeds_for(zoo["seed"], batch, seed=batch)
        np.save(tmp_path / f"x{batch}.npy", feeds["input"])
    out = _fresh_process(f"""
        import sys, numpy as np, torch
        program = torch.export.load({str(tmp_path / 'seed.pt2')!r})
        for batch in (1, 7):
            x = torch.from_numpy(np.load({str(tmp_path)!r} + f"/x{{batch}}.npy"))
            np.save({str(tmp_path)!r} + f"/y{{batch}}.npy", program.module()(x).detach().numpy())
        print("modelport" in sys.modules)
    """)
    assert out.strip() == "False"
    for batch in (1, 7):
        expected = session.run({"input": np.load(tmp_path / f"x{batch}.npy")})["output"]
        np.testing.assert_allclose(np.load(tmp_path / f"y{batch}.npy"), expected, atol=1e-6)


def test_jax_save_reloads_without_modelport(zoo: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("jax")
    session = modelport.get_backend("jax").prepare(zoo["seed"])
    session.save(tmp_path / "seed.jax")
    for batch in (1, 7):
        np.save(tmp_path / f"x{batch}.npy", feeds_for(zoo["seed"], batch, seed=batch)["input"])
    out = _fresh_process(f"""
        import sys, numpy as np, jax
        from jax import export
        program = export.deserialize(open({str(tmp_path / 'seed.jax')!r}, "rb").read())
        for batch in (1, 7):
            x = np.load({str(tmp_path)!r} + f"/x{{batch}}.npy")
            np.save({str(tmp_path)!r} + f"/y{{batch}}.npy", np.asarray(program.call(x)[0]))
        print("modelport" in sys.modules)
    """)
    assert out.strip() == "False"
    for batch in (1, 7):
        expected = session.run({"input": np.load(tmp_path / f"x{batch}.npy")})["output"]
        np.testing.assert_allclose(np.load(tmp_path / f"y{batch}.npy"), expected, atol=1e-6)


def test_tensorflow_savedmodel_reloads_without_modelport(zoo: dict[str, Path],
                                                        tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    session = modelport.get_backend("tensorflow").prepare(zoo["seed"])
    session.save(tmp_path / "saved")
    assert (tmp_path / "saved").stat().st_mode & 0o777 == 0o777 & ~_umask()
    for batch in (1, 1000):
        np.save(tmp_path / f"x{batch}.npy", feeds_for(zoo["seed"], batch, seed=batch)["input"])
    out = _fresh_process(f"""
        import sys, numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(tmp_path / 'saved')!r})
        serve = loaded.signatures["serving_default"]
        print(sorted(serve.structured_input_signature[1]), list(serve.structured_outputs))
        print(serve.structured_input_signature[1]["input"].shape.as_list())
        for batch in (1, 1000):
            x = np.load({str(tmp_path)!r} + f"/x{{batch}}.npy")
            y = serve(input=tf.constant(x))["output"].numpy()
            np.save({str(tmp_path)!r} + f"/y{{batch}}.npy", y)
        print("modelport" in sys.modules)
    """)
    names, shape, imported = out.strip().splitlines()[-3:]
    assert names == "['input'] ['output']" and shape == "[None, 20]" and imported == "False"
    for batch in (1, 1000):
        expected = session.run({"input": np.load(tmp_path / f"x{batch}.npy")})["output"]
        np.testing.assert_allclose(np.load(tmp_path / f"y{batch}.npy"), expected, atol=1e-6)


def test_jax_jits_and_keeps_float64() -> None:
    pytest.importorskip("jax")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session: Any = modelport.get_backend("jax").prepare(model)
    x = np.array([1 + 1e-12, 3.0])
    y = session.run({"x": x})["y"]
    assert y.dtype == np.float64 and y[0] == (1 + 1e-12) ** 2
    assert session.compiled
    fn, params = session.native()
    assert np.asarray(fn(params, x)[0])[1] == 9.0


def test_jax_computes_on_the_device_it_accepts(zoo: dict[str, Path], tmp_path: Path) -> None:
    # Two host devices stand in for two accelerators: XLA must be told before JAX starts.
    pytest.importorskip("jax")
    np.save(tmp_path / "x.npy", feeds_for(zoo["seed"], 3, seed=0)["input"])
    out = _fresh_process(f"""
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        import numpy as np, modelport

        feeds = {{"input": np.load({str(tmp_path / "x.npy")!r})}}
        backend = modelport.get_backend("jax")
        for jit in (True, False):
            session = backend.prepare({str(zoo["seed"])!r}, device="cpu:1", jit=jit)
            outputs = session._execute(session._to_native(feeds))
            print(jit, session.compiled, sorted({{str(d) for o in outputs for d in o.devices()}}))
        print(backend.supports_device("cpu:2"), backend.supports_device("gpu"))
    """)
    assert out.split("\n")[-4:] == ["True True ['cpu:1']", "False False ['cpu:1']",
                                    "False False", ""]


def test_constant_folding_leaves_only_the_live_graph() -> None:
    # Shape arithmetic on an initializer folds away at prepare time.
    graph = helper.make_graph(
        [helper.make_node("Shape", ["W"], ["s"]),
         helper.make_node("Reshape", ["x", "s"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [onnx.numpy_helper.from_array(np.zeros((2, 3), np.float32), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session: Any = modelport.get_backend("numpy").prepare(model)
    assert [s.node.op_type for s in session.plan.steps] == ["Reshape"]
    np.testing.assert_array_equal(session.run([np.arange(6, dtype=np.float32)])["y"],
                                  np.arange(6, dtype=np.float32).reshape(2, 3))


def test_jax_jits_an_if_on_a_computed_condition() -> None:
    pytest.importorskip("jax")
    then = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["a"])], "then", [],
                             [helper.make_tensor_value_info("a", TensorProto.FLOAT, [3])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["b"])], "else", [],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])])
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
         helper.make_node("Greater", ["s", "zero"], ["c"]),
         helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        [onnx.numpy_helper.from_array(np.array(0, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session: Any = modelport.get_backend("jax").prepare(model)
    positive, negative = np.array([1, 2, 3], np.float32), np.array([-1, -2, 0.5], np.float32)
    np.testing.assert_allclose(session.run([positive])["y"], positive * positive)
    np.testing.assert_allclose(session.run([negative])["y"], -negative)
    assert session.compiled  # lax.cond, not an eager fallback


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
