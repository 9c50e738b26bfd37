"""Export from Keras/TensorFlow, scikit-learn, LightGBM, XGBoost and JAX/Flax with the field's
converters, then run each file on onnxruntime and the translating backends against the source
framework's own answers on rows the export never saw."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.errors import ExportError, InputError

BACKENDS = ["onnxruntime", "numpy", "torch", "jax", "tensorflow"]
ROWS = 37  # the rows every backend runs: neither the example batch nor the second one


@dataclass
class Source:
    """A model in its framework, exported; ``expected`` are the framework's answers on
    ``feeds`` (as the file names its inputs), computed by the framework itself."""

    path: Path
    result: Any
    feeds: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    labels: set[str] = field(default_factory=set)


def _classes(n: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping classes, so that probabilities are not all 0 or 1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(0, 0.5, n) > 0.6).astype(np.int64)
    return x, y + (x[:, 2] > 1.2)


def _estimator(model: Any, export: Callable[..., Any], folder: Path, name: str) -> Source:
    x, y = _classes(600, 8)
    model.fit(x[:500], y[:500])
    path = folder / f"{name}.onnx"
    result = export(model, x[:40], path, report=False)
    test = x[500:500 + ROWS]
    return Source(path, result, {"input": test},
                  {"label": model.predict(test), "probabilities": model.predict_proba(test)},
                  {"label"})


def random_forest(folder: Path) -> Source:
    from sklearn.ensemble import RandomForestClassifier

    return _estimator(RandomForestClassifier(30, max_depth=8, random_state=0),
                      modelport.export.sklearn, folder, "random_forest")


def gradient_boosting(folder: Path) -> Source:
    from sklearn.ensemble import GradientBoostingClassifier

    return _estimator(GradientBoostingClassifier(n_estimators=40, random_state=0),
                      modelport.export.sklearn, folder, "gradient_boosting")


def svc(folder: Path) -> Source:
    import warnings

    from sklearn.svm import SVC

    with warnings.catch_warnings():  # probability=True is deprecated in 1.9, still supported
        warnings.simplefilter("ignore", FutureWarning)
        return _estimator(SVC(probability=True, random_state=0), modelport.export.sklearn,
                          folder, "svc")


def lightgbm(folder: Path) -> Source:
    lgb = pytest.importorskip("lightgbm")
    return _estimator(lgb.LGBMClassifier(n_estimators=60, verbose=-1, random_state=0),
                      modelport.export.lightgbm, folder, "lightgbm")


def xgboost(folder: Path) -> Source:
    xgb = pytest.importorskip("xgboost")
    return _estimator(xgb.XGBClassifier(n_estimators=60, max_depth=4, random_state=0),
                      modelport.export.xgboost, folder, "xgboost")


def _frame(n: int, seed: int) -> Any:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.normal(40, 12, n),  # float64: exported as float32 beside the others
        "income": rng.lognormal(3, 0.5, n).astype(np.float32),
        "city": rng.choice(["paris", "oslo", "rome", "lima"], n),
        "visits": rng.integers(0, 9, n),
    })


def _pipeline() -> tuple[Any, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train = _frame(400, 0)
    y = ((train.age > 45) ^ (train.city == "oslo")).astype(np.int64)
    pipe = Pipeline([
        ("columns", ColumnTransformer([
            ("numbers", StandardScaler(), ["age", "income", "visits"]),
            ("words", OneHotEncoder(handle_unknown="ignore"), ["city"])])),
        ("classify", LogisticRegression())]).fit(train, y)
    return pipe, _frame(ROWS, 1)


def _frame_feeds(frame: Any) -> dict[str, np.ndarray]:
    return {"age": frame.age.to_numpy(np.float32).reshape(-1, 1),
            "income": frame.income.to_numpy().reshape(-1, 1),
            "city": frame.city.to_numpy().astype(str).reshape(-1, 1),
            "visits": frame.visits.to_numpy().reshape(-1, 1)}


def sklearn_pipeline(folder: Path) -> Source:
    pipe, test = _pipeline()
    path = folder / "pipeline.onnx"
    result = modelport.export.sklearn(pipe, _frame(50, 2), path, report=False)
    return Source(path, result, _frame_feeds(test),
                  {"label": pipe.predict(test), "probabilities": pipe.predict_proba(test)},
                  {"label"})


def _tensorflow() -> Any:
    return pytest.importorskip("tensorflow")


def keras_cnn(folder: Path) -> Source:
    """Channels-last in Keras, channels-first in the file (``inputs_as_nchw``)."""
    _tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.MaxPooling2D(), keras.layers.BatchNormalization(),
        keras.layers.Conv2D(8, 3, padding="same"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(5, activation="softmax")])
    rng = np.random.default_rng(0)
    path = folder / "keras_cnn.onnx"
    result = modelport.export.keras(model, rng.random((4, 16, 16, 3), np.float32), path,
                                    inputs_as_nchw=["input"], report=False)
    test = rng.random((ROWS, 16, 16, 3), np.float32)
    return Source(path, result, {"input": test.transpose(0, 3, 1, 2).copy()},
                  {"output": model(test, training=False).numpy()})


def tf_function(folder: Path) -> Source:
    tf = _tensorflow()
    w = tf.constant(np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32))

    @tf.function
    def f(x: Any, scale: Any) -> Any:
        h = tf.nn.gelu(tf.matmul(x, w) * scale, approximate=True)
        return {"scores": tf.nn.log_softmax(h), "norm": tf.norm(x, axis=1)}

    rng = np.random.default_rng(1)
    path = folder / "tf_function.onnx"
    result = modelport.export.tensorflow(
        f, {"x": rng.normal(size=(3, 6)).astype(np.float32),
            "scale": np.ones((3, 1), np.float32)}, path, report=False)
    feeds = {"x": rng.normal(size=(ROWS, 6)).astype(np.float32),
             "scale": rng.random((ROWS, 1), np.float32) + 0.5}
    return Source(path, result, feeds, {k: v.numpy() for k, v in f(**feeds).items()})


def jax_mlp(folder: Path) -> Source:
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(2)
    params = [(rng.normal(size=(12, 32)).astype(np.float32) / 3, np.zeros(32, np.float32)),
              (rng.normal(size=(32, 4)).astype(np.float32) / 5, np.full(4, 0.1, np.float32))]

    @jax.jit
    def mlp(x: Any) -> Any:
        for w, b in params[:-1]:
            x = jax.nn.relu(x @ w + b)
        return jax.nn.softmax(x @ params[-1][0] + params[-1][1])

    path = folder / "jax_mlp.onnx"
    result = modelport.export.jax(mlp, rng.normal(size=(5, 12)).astype(np.float32), path,
                                  report=False)
    test = rng.normal(size=(ROWS, 12)).astype(np.float32)
    return Source(path, result, {"input": test}, {"output": np.asarray(mlp(test))})


def flax_cnn(folder: Path) -> Source:
    pytest.importorskip("flax")
    from flax import nnx

    class CNN(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.conv1 = nnx.Conv(1, 8, (3, 3), rngs=rngs)
            self.conv2 = nnx.Conv(8, 16, (3, 3), rngs=rngs)
            self.head = nnx.Linear(16 * 7 * 7, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            x = nnx.avg_pool(nnx.relu(self.conv1(x)), window_shape=(2, 2), strides=(2, 2))
            x = nnx.avg_pool(nnx.relu(self.conv2(x)), window_shape=(2, 2), strides=(2, 2))
            return self.head(x.reshape(x.shape[0], -1))

    cnn = CNN(nnx.Rngs(0))
    rng = np.random.default_rng(3)
    path = folder / "flax_cnn.onnx"
    result = modelport.export.jax(cnn, rng.random((3, 28, 28, 1), np.float32), path,
                                  report=False)
    test = rng.random((ROWS, 28, 28, 1), np.float32)
    return Source(path, result, {"input": test}, {"output": np.asarray(cnn(test))})


SOURCES: dict[str, Callable[[Path], Source]] = {
    f.__name__: f for f in (keras_cnn, tf_function, sklearn_pipeline, random_forest,
                            gradient_boosting, svc, lightgbm, xgboost, jax_mlp, flax_cnn)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Source]:
    folder = tmp_path_factory.mktemp("exported")
    built: dict[str, Source] = {}

    def get(name: str) -> Source:
        if name not in built:
            built[name] = SOURCES[name](folder)
        return built[name]
    return get


@pytest.mark.parametrize("name", SOURCES)
def test_export_is_verified_with_a_dynamic_batch(name: str, exported: Any) -> None:
    import onnx

    source = exported(name)
    result = source.result
    assert result.passed and result.written, result.summary()
    batches = [c.batch for c in result.verification.cases]
    assert len(batches) == 2 and batches[1] == 2 * batches[0] + 1
    model = onnx.load(source.path)
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch", value.name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SOURCES)
def test_file_agrees_with_the_source_framework(name: str, backend: str, exported: Any) -> None:
    source = exported(name)
    actual = modelport.get_backend(backend).prepare(source.path).run(source.feeds)
    assert set(actual) == set(source.expected)
    for output, want in source.expected.items():
        got = np.asarray(actual[output])
        if output in source.labels:
            np.testing.assert_array_equal(got, want, err_msg=output)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=output)


def test_zipmap_gives_a_sequence_of_maps_on_every_backend(tmp_path: Path) -> None:
    pipe, test = _pipeline()
    path = tmp_path / "zipmap.onnx"
    result = modelport.export.sklearn(pipe, test, path, zipmap=True, report=False)
    assert result.passed, result.summary()
    feeds = _frame_feeds(test)
    want = pipe.predict_proba(test)
    for backend in BACKENDS:
        maps = modelport.get_backend(backend).prepare(path).run(feeds)["output_probability"]
        assert isinstance(maps, list) and len(maps) == ROWS, backend
        assert all(sorted(m) == [0, 1] for m in maps), backend
        got = np.array([[m[0], m[1]] for m in maps])
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=backend)


def test_float64_export_keeps_doubles(tmp_path: Path) -> None:
    from sklearn.linear_model import Ridge

    x, _ = _classes(200, 5)
    x = x.astype(np.float64)
    y = x @ np.arange(1, 6) + 1e-3
    model = Ridge().fit(x, y)
    result = modelport.export.sklearn(model, x[:20], tmp_path / "ridge.onnx", dtype="float64",
                                      atol=1e-12, rtol=1e-12, report=False)
    assert result.passed, result.summary()
    got = modelport.get_backend("numpy").prepare(tmp_path / "ridge.onnx").run(
        {"input": x[100:]})["variable"]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got.ravel(), model.predict(x[100:]), rtol=1e-12)


def test_a_label_differing_at_a_tie_is_counted_and_one_elsewhere_fails() -> None:
    from modelport.export.base import Verification

    want = np.array([0, 1, 1, 0])
    got = np.array([1, 1, 1, 0])
    tied = Verification("onnxruntime", 1e-5, 1e-4)
    tied.add_case(4, {"input": np.zeros((4, 2))}, {"label": got}, [want], label=0,
                  ties=np.array([True, False, False, False]))
    assert tied.passed
    assert tied.cases[0].outputs[0].note.startswith("1 of 4 rows differ")
    assert "tie" in tied.cases[0].outputs[0].note
    untied = Verification("onnxruntime", 1e-5, 1e-4)
    untied.add_case(4, {"input": np.zeros((4, 2))}, {"label": got}, [want], label=0,
                    ties=np.array([False, True, False, False]))
    assert not untied.passed
    assert "1 of them where its best two classes are not within" in \
        untied.cases[0].outputs[0].note


def test_failed_verification_writes_nothing(tmp_path: Path) -> None:
    """A batch-size test made at trace time: the symbolic batch is never 4, the example is."""
    pytest.importorskip("jax")

    def f(x: Any) -> Any:
        return x + (1.0 if x.shape[0] == 4 else 0.0)

    path = tmp_path / "frozen.onnx"
    path.write_bytes(b"kept")
    result = modelport.export.jax(f, np.ones((4, 3), np.float32), path, report=False)
    assert not result.passed and not result.written
    assert path.read_bytes() == b"kept"
    assert list(tmp_path.iterdir()) == [path]  # no scratch left behind


def test_bad_requests_are_refused_before_any_work(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _classes(100, 4)
    model = LogisticRegression().fit(x, y)
    with pytest.raises(InputError, match="float32 or float64"):
        modelport.export.sklearn(model, x, tmp_path / "m.onnx", dtype="float16")
    with pytest.raises(InputError, match="must be a matrix"):
        modelport.export.sklearn(model, x[0], tmp_path / "m.onnx")
    with pytest.raises(InputError, match="fails on the example inputs"):
        modelport.export.sklearn(model, x[:, :3], tmp_path / "m.onnx")
    lgb = pytest.importorskip("lightgbm")
    booster = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, y)
    with pytest.raises(ExportError, match="up to opset 15"):
        modelport.export.lightgbm(booster, x, tmp_path / "m.onnx", opset=17)
    with pytest.raises(InputError, match="float32 inputs only"):
        from modelport.export.classic import export_estimator

        export_estimator(booster, x, tmp_path / "m.onnx", framework="lightgbm", opset=None,
                         zipmap=False, dtype="float64", dynamic_batch=True, verify=True,
                         verify_backend="onnxruntime", second_batch=None, atol=1e-5,
                         rtol=1e-4)
    assert not list(tmp_path.iterdir())


def test_keras_inputs_are_checked_against_the_model(tmp_path: Path) -> None:
    tf = _tensorflow()

    @tf.function
    def f(a: Any, b: Any) -> Any:
        return a + b

    two = {"a": np.ones((2, 3), np.float32), "b": np.ones((2, 3), np.float32)}
    with pytest.raises(InputError, match="inputs_as_nchw names c, not an input"):
        modelport.export.tensorflow(f, two, tmp_path / "f.onnx", inputs_as_nchw=["c"])
    with pytest.raises(InputError, match="fails on the example inputs"):
        modelport.export.tensorflow(f, {"a": two["a"], "b": np.ones((2, 4), np.float32)},
                                    tmp_path / "f.onnx")
    with pytest.raises(ExportError, match=r"tf2onnx wrote 1 node\(s\) of operators that ONNX "
                       r"does not define .*: Erfc \(.*Gelu/Erfc\)"):
        # exact GELU is Erfc in TensorFlow, which tf2onnx 1.17 does not convert
        modelport.export.tensorflow(tf.function(lambda a: tf.nn.gelu(a)), two["a"],
                                    tmp_path / "f.onnx")
    with pytest.raises(InputError, match="not a SavedModel folder"):
        modelport.export.tensorflow(str(tmp_path), two, tmp_path / "f.onnx")


# ----------------------------------------------------------------------------------------------
# The CLI: FILE.py:FUNCTION returning (model, example inputs)

SKLEARN_SPEC = """
import numpy as np
from sklearn.ensemble import GradientBoostingRegressor

def build():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    return GradientBoostingRegressor(n_estimators=20).fit(x, x[:, 0] - x[:, 1]), x[:30]

def wrong():
    return 3
"""

JAX_SPEC = """
import numpy as np
import jax
from flax import linen

class Net(linen.Module):
    @linen.compact
    def __call__(self, x):
        return linen.Dense(3)(linen.tanh(linen.Dense(8)(x)))

def build():
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    net = Net()
    return net, x, net.init(jax.random.PRNGKey(0), x)
"""


def test_cli_export_sklearn_reports_in_json(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "gbr.py").write_text(SKLEARN_SPEC)
    code, out, _ = cli("export", "sklearn", f"{tmp_path / 'gbr.py'}:build", "-o",
                       tmp_path / "gbr.onnx", "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["passed"] and report["exporter"] == "skl2onnx"
    assert [c["batch"] for c in report["verification"]["cases"]] == [30, 61]
    assert (tmp_path / "gbr.onnx").is_file()
    code, _, err = cli("export", "sklearn", f"{tmp_path / 'gbr.py'}:wrong", "-o",
                       tmp_path / "w.onnx")
    assert code == 1 and "must return (model, example_inputs), not int" in err
    assert not (tmp_path / "w.onnx").exists()


def test_cli_export_jax_takes_a_linen_module_with_its_params(cli: Any, tmp_path: Path) -> None:
    pytest.importorskip("flax")
    (tmp_path / "net.py").write_text(JAX_SPEC)
    code, out, _ = cli("export", "jax", f"{tmp_path / 'net.py'}:build", "-o",
                       tmp_path / "net.onnx")
    assert code == 0, out
    assert "exporter jax2onnx: ok" in out and out.rstrip().endswith("PASSED")


def test_cli_export_tensorflow_saved_model_folder(cli: Any, tmp_path: Path) -> None:
    tf = _tensorflow()

    class Scale(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
        def __call__(self, features: Any) -> Any:
            return {"doubled": features * 2.0}

    module = Scale()
    tf.saved_model.save(module, str(tmp_path / "saved"),
                        signatures=module.__call__.get_concrete_function())
    code, out, _ = cli("export", "tensorflow", tmp_path / "saved", "-o", tmp_path / "s.onnx",
                       "--shape", "features=3x4")
    assert code == 0, out
    info = modelport.inspect(tmp_path / "s.onnx")
    assert [(s.name, s.shape) for s in info.inputs] == [("features", ("batch", 4))]
    assert [s.name for s in info.outputs] == ["doubled"]
    code, _, err = cli("export", "tensorflow", tmp_path / "saved", "-o", tmp_path / "t.onnx")
    assert code == 1 and "give its example inputs with --shape" in err


@pytest.mark.parametrize("name", ["random_forest", "lightgbm"])
def test_torch_native_of_a_tree_model_is_a_module(name: str, exported: Any) -> None:
    """Trees are tensor programs in the module, whose tables are made on its input's device
    (this machine has only the CPU to show it on); it agrees with the source."""
    torch = pytest.importorskip("torch")
    source = exported(name)
    module = modelport.get_backend("torch").prepare(source.path).native()
    assert isinstance(module, torch.nn.Module)
    with torch.no_grad():
        label, probabilities = module(torch.from_numpy(source.feeds["input"]))
    np.testing.assert_array_equal(label.numpy(), source.expected["label"])
    np.testing.assert_allclose(probabilities.numpy(), source.expected["probabilities"],
                               atol=1e-5)


def test_lightgbm_routes_missing_values_as_it_learned_them(tmp_path: Path) -> None:
    """LightGBM learns, branch by branch, which way NaN goes (ONNX's
    nodes_missing_value_tracks_true); every backend must send each NaN that way, and leave
    infinities alone."""
    lgb = pytest.importorskip("lightgbm")
    x, y = _classes(2000, 6, seed=4)
    rng = np.random.default_rng(5)
    x[rng.random(x.shape) < 0.15] = np.nan
    y = np.where(np.isnan(x[:, 1]), 1, y)  # missing is informative: its side matters
    model = lgb.LGBMClassifier(n_estimators=40, verbose=-1, random_state=0).fit(x, y)
    path = tmp_path / "missing.onnx"
    result = modelport.export.lightgbm(model, x[:50], path, report=False)
    assert result.passed, result.summary()
    test = x[1500:1500 + ROWS].copy()
    test[:3, 0] = [np.inf, -np.inf, np.nan]
    for backend in BACKENDS:
        out = modelport.get_backend(backend).prepare(path).run({"input": test})
        np.testing.assert_array_equal(out["label"], model.predict(test), err_msg=backend)
        np.testing.assert_allclose(out["probabilities"], model.predict_proba(test), atol=1e-5,
                                   err_msg=backend)


def test_tensorflow_compiles_tree_models_with_xla_unless_told(exported: Any) -> None:
    """XLA by default for a graph with a tree ensemble, not for others; either way the
    answers are the source's."""
    pytest.importorskip("tensorflow")
    import onnx

    from modelport.backends.tensorflow import _walks_trees

    source = exported("random_forest")
    assert _walks_trees(onnx.load(source.path))
    assert not _walks_trees(onnx.load(exported("jax_mlp").path))
    for jit_compile in (None, False, True):
        out = modelport.get_backend("tensorflow").prepare(
            source.path, jit_compile=jit_compile).run(source.feeds)
        np.testing.assert_array_equal(out["label"], source.expected["label"])
        np.testing.assert_allclose(out["probabilities"], source.expected["probabilities"],
                                   atol=1e-5)
