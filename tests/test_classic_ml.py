"""Classical-ML models as skl2onnx writes them (ai.onnx.ml tree ensembles) on every translating
backend: the same labels and scores as onnxruntime, and as scikit-learn itself."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest

import modelport

sklearn = pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")

BACKENDS = ["numpy", "torch", "jax", "tensorflow"]


def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 6)).astype(np.float32)
    return {"x": x, "three": ((x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1)),
            "two": (x[:, 0] * x[:, 3] > 0).astype(int),
            "real": x[:, 0] * 2 + np.sin(x[:, 1])}


def _model(name: str) -> tuple[Any, str]:
    """A fitted estimator and its kind ("regressor" or "classifier")."""
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeClassifier

    d = _data()
    x = d["x"]
    fitted = {
        "random-forest-regressor": lambda: RandomForestRegressor(
            n_estimators=10, max_depth=6, random_state=0).fit(x, d["real"]),
        "random-forest-3-classes": lambda: RandomForestClassifier(
            n_estimators=10, max_depth=6, random_state=0).fit(x, d["three"]),
        "random-forest-binary": lambda: RandomForestClassifier(
            n_estimators=10, max_depth=5, random_state=0).fit(x, d["two"]),
        "gradient-boosting-binary": lambda: GradientBoostingClassifier(
            n_estimators=20, max_depth=3, random_state=0).fit(x, d["two"]),
        "gradient-boosting-3-classes": lambda: GradientBoostingClassifier(
            n_estimators=10, max_depth=3, random_state=0).fit(x, d["three"]),
        "gradient-boosting-regressor": lambda: GradientBoostingRegressor(
            n_estimators=20, max_depth=3, random_state=0).fit(x, d["real"]),
        "decision-tree-string-labels": lambda: DecisionTreeClassifier(
            max_depth=5, random_state=0).fit(x, np.array(["ant", "bee", "cat"])[d["three"]]),
    }[name]()
    return fitted, "regressor" if name.endswith("regressor") else "classifier"


@pytest.fixture(scope="module")
def converted() -> dict[str, tuple[Any, onnx.ModelProto]]:
    from skl2onnx import to_onnx

    x = _data()["x"]
    models = {}
    for name in ("random-forest-regressor", "random-forest-3-classes", "random-forest-binary",
                 "gradient-boosting-binary", "gradient-boosting-3-classes",
                 "gradient-boosting-regressor", "decision-tree-string-labels"):
        estimator, kind = _model(name)
        options = {id(estimator): {"zipmap": False}} if kind == "classifier" else None
        models[name] = (estimator, to_onnx(estimator, x[:1], options=options,
                                           target_opset={"": 17, "ai.onnx.ml": 3}))
    return models


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["random-forest-regressor", "random-forest-3-classes",
                                  "random-forest-binary", "gradient-boosting-binary",
                                  "gradient-boosting-3-classes", "gradient-boosting-regressor",
                                  "decision-tree-string-labels"])
def test_tree_models_from_skl2onnx(converted: dict[str, tuple[Any, onnx.ModelProto]],
                                   name: str, backend: str) -> None:
    estimator, model = converted[name]
    assert {n.op_type for n in model.graph.node} & {"TreeEnsembleRegressor",
                                                     "TreeEnsembleClassifier"}
    x = np.random.default_rng(1).standard_normal((200, 6)).astype(np.float32)
    feeds = {model.graph.input[0].name: x}
    want = modelport.get_backend("onnxruntime").prepare(model).run(feeds)
    got = modelport.get_backend(backend).prepare(model).run(feeds)
    for output, expected in want.items():
        assert got[output].dtype == expected.dtype, output
        if expected.dtype == object:
            assert got[output].tolist() == expected.tolist()
        else:
            np.testing.assert_allclose(got[output], expected, rtol=1e-5, atol=1e-5)
    if "label" in got:  # and scikit-learn's own predictions (float32 thresholds agree here)
        assert got["label"].tolist() == estimator.predict(x).tolist()
        np.testing.assert_allclose(got["probabilities"], estimator.predict_proba(x),
                                   rtol=1e-5, atol=1e-5)


def _pipelines() -> dict[str, tuple[Any, np.ndarray]]:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, Normalizer, StandardScaler

    d = _data()
    x, holes = d["x"][:, :4], d["x"][:, :4].copy()
    holes[np.random.default_rng(2).random(holes.shape) < 0.1] = np.nan
    real = d["real"]
    return {
        "scaler-logistic-3-classes": (
            make_pipeline(StandardScaler(), LogisticRegression()).fit(x, d["three"]), x),
        "logistic-binary": (LogisticRegression().fit(x, d["two"]), x),
        "minmax-linear": (make_pipeline(MinMaxScaler(), LinearRegression()).fit(x, real), x),
        "normalizer-linear": (make_pipeline(Normalizer(), LinearRegression()).fit(x, real), x),
        "imputer-linear": (make_pipeline(SimpleImputer(), LinearRegression()).fit(holes, real),
                           holes),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["scaler-logistic-3-classes", "logistic-binary",
                                  "minmax-linear", "normalizer-linear", "imputer-linear"])
def test_linear_pipelines_from_skl2onnx(name: str, backend: str) -> None:
    """Scaler, Normalizer, Imputer, LinearRegressor and LinearClassifier as skl2onnx writes
    scikit-learn pipelines."""
    from skl2onnx import to_onnx

    estimator, x = _pipelines()[name]
    last = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(last): {"zipmap": False}} if hasattr(last, "predict_proba") else None
    model = to_onnx(estimator, x[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    feeds = {model.graph.input[0].name: x[:80]}
    want = modelport.get_backend("onnxruntime").prepare(model).run(feeds)
    got = modelport.get_backend(backend).prepare(model).run(feeds)
    for output, expected in want.items():
        assert got[output].dtype == expected.dtype, output
        np.testing.assert_allclose(got[output], expected, rtol=1e-5, atol=1e-5)
    if "label" in got:
        assert got["label"].tolist() == estimator.predict(x[:80]).tolist()
    else:
        np.testing.assert_allclose(got["variable"][:, 0], estimator.predict(x[:80]),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["strings", "integers"])
def test_one_hot_encoder_from_skl2onnx(backend: str, kind: str) -> None:
    """OneHotEncoder over string or integer columns, an unseen value encoded as zeros."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType
    from sklearn.preprocessing import OneHotEncoder

    if kind == "strings":
        x = np.array([["red", "a"], ["blue", "b"], ["green", "a"], ["red", "c"]], dtype=object)
        unseen, tensor_type = "violet", StringTensorType([None, 2])
    else:
        x = np.array([[3, 7], [1, 7], [2, 9], [3, 1]], dtype=np.int64)
        unseen, tensor_type = 42, Int64TensorType([None, 2])
    encoder = OneHotEncoder(handle_unknown="ignore").fit(x)
    model = to_onnx(encoder, initial_types=[("X", tensor_type)],
                    target_opset={"": 17, "ai.onnx.ml": 3})
    rows = np.concatenate([x, x[:1]])
    rows[-1, 0] = unseen
    got = modelport.get_backend(backend).prepare(model).run({"X": rows})
    (encoded,) = got.values()
    np.testing.assert_array_equal(encoded, encoder.transform(rows).toarray())
    want = modelport.get_backend("onnxruntime").prepare(model).run({"X": rows})
    np.testing.assert_array_equal(encoded, next(iter(want.values())))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["category-to-int", "int-to-category", "feature-vectorizer"])
def test_category_mapper_and_feature_vectorizer(backend: str, case: str) -> None:
    from onnx import TensorProto, helper

    cats = {"cats_strings": ["cat", "dog", "eel"], "cats_int64s": [3, 5, 9]}
    if case == "category-to-int":
        node = helper.make_node("CategoryMapper", ["x"], ["y"], domain="ai.onnx.ml",
                                default_int64=-7, **cats)
        feeds = {"x": np.array([["dog", "ant"], ["eel", "cat"]], dtype=object)}
        types, out = {"x": TensorProto.STRING}, TensorProto.INT64
    elif case == "int-to-category":
        node = helper.make_node("CategoryMapper", ["x"], ["y"], domain="ai.onnx.ml",
                                default_string="?", **cats)
        feeds = {"x": np.array([[9, 4], [3, 5]], np.int64)}
        types, out = {"x": TensorProto.INT64}, TensorProto.STRING
    else:
        node = helper.make_node("FeatureVectorizer", ["a", "b", "c"], ["y"],
                                domain="ai.onnx.ml", inputdimensions=[2, 4, 1])
        rng = np.random.default_rng(0)
        feeds = {"a": rng.standard_normal((3, 2)).astype(np.float32),
                 "b": rng.standard_normal((3, 3)).astype(np.float32),
                 "c": rng.standard_normal((3, 2)).astype(np.float32)}  # b padded, c cut
        types = dict.fromkeys(feeds, TensorProto.FLOAT)
        out = TensorProto.FLOAT
    graph = helper.make_graph([node], "ml", [helper.make_tensor_value_info(n, t, None)
                                             for n, t in types.items()],
                              [helper.make_tensor_value_info("y", out, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    want = modelport.get_backend("onnxruntime").prepare(model).run(feeds)["y"]
    got = modelport.get_backend(backend).prepare(model).run(feeds)["y"]
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["rbf", "poly", "linear", "sigmoid", "one-class"])
def test_support_vector_regressors_from_skl2onnx(backend: str, kind: str) -> None:
    """SVMRegressor with every kernel, and a one-class SVM's +1/-1 labels."""
    from skl2onnx import to_onnx
    from sklearn.svm import SVR, OneClassSVM

    x = _data()["x"][:, :4]
    target = x[:, 0] - x[:, 1] ** 2
    estimator = {"rbf": lambda: SVR(kernel="rbf", gamma=0.3).fit(x, target),
                 "poly": lambda: SVR(kernel="poly", degree=3, coef0=1).fit(x, target),
                 "linear": lambda: SVR(kernel="linear").fit(x, target),
                 "sigmoid": lambda: SVR(kernel="sigmoid", gamma=0.1).fit(x, target),
                 "one-class": lambda: OneClassSVM(gamma=0.5).fit(x)}[kind]()
    model = to_onnx(estimator, x[:1], target_opset={"": 17, "ai.onnx.ml": 3})
    assert "SVMRegressor" in {n.op_type for n in model.graph.node}
    feeds = {"X": x[:80]}
    want = modelport.get_backend("onnxruntime").prepare(model).run(feeds)
    got = modelport.get_backend(backend).prepare(model).run(feeds)
    for output, expected in want.items():
        # onnxruntime sums the support vectors one by one, modelport as one matmul
        np.testing.assert_allclose(got[output], expected, rtol=1e-5, atol=2e-5)
    prediction = (got["label"] if kind == "one-class" else got["variable"]).reshape(-1)
    np.testing.assert_allclose(prediction, estimator.predict(x[:80]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["3-classes-probabilities", "binary-probabilities",
                                  "3-classes", "binary-poly"])
def test_support_vector_classifiers_from_skl2onnx(backend: str, case: str) -> None:
    """SVMClassifier: one-vs-one votes, and SVC(probability=True)'s coupled probabilities."""
    from skl2onnx import to_onnx
    from sklearn.svm import SVC

    d = _data()
    x = d["x"][:200, :4]
    target = d["three"][:200] if case.startswith("3") else d["two"][:200]
    estimator = {"3-classes-probabilities": lambda: SVC(probability=True, random_state=0),
                 "binary-probabilities": lambda: SVC(probability=True, random_state=0),
                 "3-classes": lambda: SVC(),
                 "binary-poly": lambda: SVC(kernel="poly")}[case]().fit(x, target)
    model = to_onnx(estimator, x[:1], options={id(estimator): {"zipmap": False}},
                    target_opset={"": 17, "ai.onnx.ml": 3})
    assert "SVMClassifier" in {n.op_type for n in model.graph.node}
    feeds = {"X": x[:80]}
    want = modelport.get_backend("onnxruntime").prepare(model).run(feeds)
    got = modelport.get_backend(backend).prepare(model).run(feeds)
    assert got["label"].tolist() == want["label"].tolist() == estimator.predict(x[:80]).tolist()
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_support_vector_classifier_in_liblinear_form(backend: str) -> None:
    """SVMClassifier without support vectors: a linear score per class (one shared rho)."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(3)
    node = helper.make_node("SVMClassifier", ["x"], ["label", "scores"], domain="ai.onnx.ml",
                            classlabels_ints=[4, 5, 6], kernel_type="LINEAR", rho=[0.25],
                            kernel_params=[0.0, 0.0, 0.0],
                            coefficients=rng.standard_normal(12).round(3).tolist())
    graph = helper.make_graph(
        [node], "svm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, None),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    feeds = {"x": rng.standard_normal((20, 4)).astype(np.float32)}
    want = modelport.get_backend("onnxruntime").prepare(model).run(feeds)
    got = modelport.get_backend(backend).prepare(model).run(feeds)
    assert got["label"].tolist() == want["label"].tolist()
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-5, atol=1e-5)


def test_depth_groups_are_the_cut_that_walks_the_fewest_steps() -> None:
    """Trees are walked in groups, each for its deepest tree: the chosen cut is checked
    against every cut of the same size or smaller."""
    import itertools

    from modelport.ops.ml import _cheapest_cuts

    def steps(depths: np.ndarray, cuts: list[int]) -> int:
        return sum((b - a) * int(depths[b - 1]) for a, b in itertools.pairwise(cuts) if b > a)

    rng = np.random.default_rng(3)
    for _ in range(200):
        depths = np.sort(rng.integers(1, 8, int(rng.integers(1, 12))))
        groups = int(rng.integers(1, 4))
        cuts = _cheapest_cuts(depths, groups)
        n = len(depths)
        fewest = min(steps(depths, [0, *inner, n]) for k in range(groups)
                     for inner in itertools.combinations(range(1, n), k))
        assert steps(depths, cuts) == fewest, (depths, groups, cuts)
        assert cuts[0] == 0 and cuts[-1] == n
        assert sum(b > a for a, b in itertools.pairwise(cuts)) <= groups
