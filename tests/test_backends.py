"""Runtime backends, the registry, feed checking, and the onnx.backend drop-in API."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

import modelport
import modelport.backends as registry
from conftest import mlp_expected, mlp_model
from modelport.backends.base import Backend, Session
from modelport.errors import BackendError, BackendUnavailableError, InputError

RUNTIMES = ["onnxruntime", "openvino", "reference"]


@pytest.mark.parametrize("name", RUNTIMES)
@pytest.mark.parametrize("batch", [1, 5])
def test_runtime_backends_match_numpy(name: str, batch: int, mlp_path: Path) -> None:
    x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
    session = modelport.get_backend(name).prepare(mlp_path)
    outputs = session.run({"x": x})
    assert list(outputs) == ["y"]
    assert outputs["y"].dtype == np.float32
    np.testing.assert_allclose(outputs["y"], mlp_expected(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", RUNTIMES)
def test_each_backend_module_is_an_onnx_backend(name: str) -> None:
    backend = importlib.import_module(f"modelport.backends.{name}")
    x = np.ones((2, 4), np.float32)
    rep = backend.prepare(mlp_model())
    as_list, as_dict = rep.run([x]), rep.run({"x": x})
    np.testing.assert_allclose(as_list[0], mlp_expected(x), rtol=1e-5)
    np.testing.assert_array_equal(as_list[0], as_dict["y"])
    np.testing.assert_array_equal(backend.run_model(mlp_model(), [x])[0], as_list[0])
    assert backend.supports_device("CPU")


@pytest.mark.parametrize("name", RUNTIMES)
def test_feed_errors_say_what_was_expected(name: str, mlp_path: Path) -> None:
    session = modelport.get_backend(name).prepare(mlp_path)
    x = np.ones((2, 4), np.float32)
    with pytest.raises(InputError, match=r"unknown input\(s\) 'z'.*missing input\(s\) 'x'"):
        session.run({"z": x})
    with pytest.raises(InputError, match=r"dtype float64, expected FLOAT \(float32\)"):
        session.run({"x": x.astype(np.float64)})
    with pytest.raises(InputError, match=r"shape \[2, 5\], expected \[batch, 4\]"):
        session.run({"x": np.ones((2, 5), np.float32)})
    with pytest.raises(InputError, match="rank 1"):
        session.run({"x": np.ones(4, np.float32)})
    with pytest.raises(InputError, match="2 inputs given, the model takes 1"):
        session.run([x, x])


def test_symbolic_dimensions_must_agree_across_inputs() -> None:
    from modelport.inputs import check_feeds
    from modelport.model import TensorSpec

    specs = [TensorSpec("a", 1, ("batch", 2)), TensorSpec("b", 1, ("batch",))]
    check_feeds(specs, {"a": np.ones((3, 2), np.float32), "b": np.ones(3, np.float32)})
    with pytest.raises(InputError, match="'batch' is 3 in input 'a' but 4 in input 'b'"):
        check_feeds(specs, {"a": np.ones((3, 2), np.float32), "b": np.ones(4, np.float32)})


def test_python_lists_take_the_models_dtype(mlp_path: Path) -> None:
    session = modelport.get_backend("onnxruntime").prepare(mlp_path)
    out = session.run({"x": [[1, 2, 3, 4]]})["y"]
    np.testing.assert_allclose(out, mlp_expected(np.array([[1, 2, 3, 4]], np.float32)),
                               rtol=1e-6)


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(BackendUnavailableError, match=r"unknown backend 'nope'.*onnxruntime"):
        modelport.get_backend("nope")


def test_list_backends_reports_availability_and_versions() -> None:
    infos = {i.name: i for i in modelport.list_backends()}
    assert set(RUNTIMES) <= set(infos)
    for name in RUNTIMES:
        assert infos[name].available and infos[name].version


class Doubling(Backend):
    """A backend of our own: runs the model in onnxruntime and doubles every output."""

    name = "doubling"

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Session:
        inner = modelport.get_backend("onnxruntime").prepare(model)

        class DoublingSession(Session):
            def _execute(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
                return [2 * v for v in inner.run(feeds).values()]

        return DoublingSession(self, model, device)


@pytest.fixture
def clean_registry() -> Any:
    saved = dict(registry._REGISTRY), dict(registry._instances), registry._plugins_loaded
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved[0])
    registry._instances.clear()
    registry._instances.update(saved[1])
    registry._plugins_loaded = saved[2]


def test_register_backend_in_code(clean_registry: Any, mlp_path: Path) -> None:
    modelport.register_backend("doubling", Doubling)
    x = np.ones((1, 4), np.float32)
    out = modelport.get_backend("doubling").prepare(mlp_path).run({"x": x})["y"]
    np.testing.assert_allclose(out, 2 * mlp_expected(x), rtol=1e-6)
    with pytest.raises(ValueError, match="already registered"):
        modelport.register_backend("doubling", Doubling)
    report = modelport.compare(mlp_path, ["onnxruntime", "doubling"], dims={"batch": 2})
    assert not report.passed


def test_backends_from_installed_plugins(clean_registry: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A real distribution on sys.path with an entry point in the modelport.backends group.
    dist = tmp_path / "myplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[modelport.backends]\nplugged = myplugin_backend:Doubling\n")
    (tmp_path / "myplugin_backend.py").write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_backends import Doubling\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._plugins_loaded = False
    infos = {i.name: i for i in modelport.list_backends()}
    assert infos["plugged"].available
    assert infos["plugged"].source.startswith("plugin")
    x = np.ones((1, 4), np.float32)
    out = modelport.get_backend("plugged").prepare(mlp_model()).run([x])["y"]
    np.testing.assert_allclose(out, 2 * mlp_expected(x), rtol=1e-6)
    sys.modules.pop("myplugin_backend", None)


@pytest.mark.parametrize(("backend", "options", "message"), [
    ("torch", {"jit": True}, "backend 'torch': no option 'jit' (its options: fold: bool)"),
    ("numpy", {"bogus": 1}, "backend 'numpy': no option 'bogus' (its options: fold: bool)"),
    ("jax", {"jit": "yes"}, "backend 'jax': option 'jit' takes bool, not 'yes'"),
    ("onnxruntime", {"intra_op_num_threads": 1.5},
     "option 'intra_op_num_threads' takes int | None, not 1.5"),
])
def test_an_option_a_backend_lacks_is_an_error_naming_its_options(
        mlp_path: Path, backend: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(BackendError) as info:
        modelport.get_backend(backend).prepare(mlp_path, **options)
    assert message in str(info.value)


def test_the_backend_list_gives_devices_and_typed_options(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("backends", "--format", "json")
    by_name = {b["name"]: b for b in json.loads(out)}
    assert code == 0 and by_name["torch"]["devices"] == ["cpu", "cuda"]
    assert by_name["tensorflow"]["options"] == [
        {"name": "fold", "type": "bool", "default": True,
         "help": "run the nodes whose inputs are all constants once, at prepare"},
        {"name": "function", "type": "bool", "default": True,
         "help": "trace a tf.function per input shape (else eager)"},
        {"name": "jit_compile", "type": "bool | None", "default": None,
         "help": "compile the tf.function with XLA; by default only for models with tree "
                 "ensembles, whose walk XLA fuses (3.5-5x faster; docs/benchmarks.md)"}]
    assert by_name["reference"]["options"] == []


def _constant_subgraph_model() -> onnx.ModelProto:
    """y = Reshape(x * (one + one), Identity(shape)): three nodes that read only constants
    (a float initializer would be a trainable weight, not a constant)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["one"], value_float=1.0),
         helper.make_node("Add", ["one", "one"], ["two"]),
         helper.make_node("Identity", ["shape"], ["shape2"]),
         helper.make_node("Mul", ["x", "two"], ["x2"]),
         helper.make_node("Reshape", ["x2", "shape2"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 12])],
        [numpy_helper.from_array(np.array([0, -1], np.int64), "shape")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
def test_every_translating_backend_takes_fold(backend: str) -> None:
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for fold in (True, False):
        session = modelport.get_backend(backend).prepare(_constant_subgraph_model(), fold=fold)
        assert len(session.plan.steps) == (2 if fold else 5)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(session.run([x])["y"], 2 * x.reshape(2, 12))
