"""Operators the node suite checks on one or two tiny cases, held to onnxruntime on many random
ones: tree ensembles, TfIdfVectorizer, LabelEncoder, DeformConv and AffineGrid on every
translating backend. onnxruntime is the anchor: its kernels are written independently of the
reference evaluator and of ours.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import modelport

TRANSLATING = ["numpy", "torch", "jax", "tensorflow"]


def single_node(node: onnx.NodeProto, inputs: dict[str, int], output_type: int,
                opsets: dict[str, int]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node], "one_node", [helper.make_tensor_value_info(n, t, None) for n, t in inputs.items()],
        [helper.make_tensor_value_info(o, output_type, None) for o in node.output])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                   for d, v in opsets.items()])


def agree_with_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray], backend: str,
                           rtol: float = 1e-5, atol: float = 1e-5) -> None:
    expected = modelport.get_backend("onnxruntime").prepare(model).run(feeds)
    actual = modelport.get_backend(backend).prepare(model).run(feeds)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        if value.dtype == object:
            assert actual[name].tolist() == value.tolist(), name
        else:
            np.testing.assert_allclose(actual[name], value, rtol=rtol, atol=atol, err_msg=name)


# --------------------------------------------------------------------------------------------
# TreeEnsemble (ai.onnx.ml 5)


def random_forest(rng: np.random.Generator, n_trees: int, n_features: int,
                  n_targets: int) -> dict[str, Any]:
    """Random trees over small integer features: every comparison mode, set membership,
    NaN routed either way, one-leaf trees, several targets."""
    a: dict[str, list[Any]] = {k: [] for k in (
        "splits", "features", "modes", "true", "false", "true_leaf", "false_leaf", "missing",
        "leaf_targets", "leaf_weights", "roots", "members")}

    def leaf() -> int:
        a["leaf_targets"].append(int(rng.integers(n_targets)))
        a["leaf_weights"].append(round(float(rng.normal()), 3))
        return len(a["leaf_targets"]) - 1

    def grow(depth: int) -> int:
        i = len(a["splits"])
        mode = int(rng.integers(7))
        a["splits"].append(float(rng.integers(0, 4)) + (0.5 if mode < 4 else 0.0))
        a["features"].append(int(rng.integers(n_features)))
        a["modes"].append(mode)
        a["missing"].append(int(rng.integers(2)))
        if mode == 6:
            a["members"] += [*rng.choice(5, size=2, replace=False).astype(float).tolist(),
                             np.nan]
        for side in ("true", "false"):
            a[side].append(0)
            a[f"{side}_leaf"].append(0)
        for side in ("true", "false"):
            is_leaf = depth == 0 or rng.random() < 0.3
            a[side][i] = leaf() if is_leaf else grow(depth - 1)
            a[f"{side}_leaf"][i] = int(is_leaf)
        return i

    for t in range(n_trees):
        if t == 0:  # a tree that is one leaf: a root whose both branches are that leaf
            i = len(a["splits"])
            only = leaf()
            a["splits"].append(0.0)
            for key, value in (("features", 0), ("modes", 0), ("missing", 0), ("true", only),
                               ("false", only), ("true_leaf", 1), ("false_leaf", 1)):
                a[key].append(value)
            a["roots"].append(i)
        else:
            a["roots"].append(grow(3))
    return a


@pytest.mark.parametrize("backend", TRANSLATING)
@pytest.mark.parametrize("aggregate", [0, 1, 2, 3], ids=["average", "sum", "min", "max"])
def test_tree_ensemble_agrees_with_onnxruntime(backend: str, aggregate: int) -> None:
    rng = np.random.default_rng(aggregate)
    f = random_forest(rng, n_trees=6, n_features=4, n_targets=3)
    node = helper.make_node(
        "TreeEnsemble", ["x"], ["y"], domain="ai.onnx.ml",
        nodes_splits=helper.make_tensor("s", TensorProto.FLOAT, [len(f["splits"])], f["splits"]),
        nodes_featureids=f["features"],
        nodes_modes=helper.make_tensor("m", TensorProto.UINT8, [len(f["modes"])], f["modes"]),
        nodes_truenodeids=f["true"], nodes_falsenodeids=f["false"],
        nodes_trueleafs=f["true_leaf"], nodes_falseleafs=f["false_leaf"],
        nodes_missing_value_tracks_true=f["missing"],
        membership_values=helper.make_tensor("v", TensorProto.FLOAT, [len(f["members"])],
                                             f["members"]),
        leaf_targetids=f["leaf_targets"],
        leaf_weights=helper.make_tensor("w", TensorProto.FLOAT, [len(f["leaf_weights"])],
                                        f["leaf_weights"]),
        tree_roots=f["roots"], n_targets=3, aggregate_function=aggregate)
    model = single_node(node, {"x": TensorProto.FLOAT}, TensorProto.FLOAT,
                        {"": 21, "ai.onnx.ml": 5})
    x = rng.integers(0, 5, (64, 4)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    agree_with_onnxruntime(model, {"x": x}, backend)


# --------------------------------------------------------------------------------------------
# TfIdfVectorizer


def random_pool(rng: np.random.Generator, longest: int, words: list[Any]) -> tuple[list[Any],
                                                                                list[int]]:
    pool: list[Any] = []
    counts = []
    for size in range(1, longest + 1):
        counts.append(len(pool))
        grams = {tuple(rng.choice(len(words), size).tolist()) for _ in range(4)}
        pool += [words[i] for gram in sorted(grams) for i in gram]
    return pool, counts


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("seed", range(12))
def test_tfidf_vectorizer_agrees_with_onnxruntime(backend: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    strings = seed % 2 == 1
    words: list[Any] = ["a", "b", "c", "d", "e"] if strings else [3, 1, 4, 5, 9]
    longest = int(rng.integers(1, 4))
    pool, counts = random_pool(rng, longest, words)
    n_grams = sum(((counts[i + 1] if i + 1 < len(counts) else len(pool)) - counts[i]) // (i + 1)
                  for i in range(len(counts)))
    attributes: dict[str, Any] = {
        "max_gram_length": longest, "min_gram_length": int(rng.integers(1, longest + 1)),
        "max_skip_count": int(rng.integers(0, 3)), "mode": ["TF", "IDF", "TFIDF"][seed % 3],
        "ngram_counts": counts, "ngram_indexes": rng.permutation(n_grams).tolist(),
        ("pool_strings" if strings else "pool_int64s"): pool}
    if seed % 4 < 2:
        attributes["weights"] = rng.random(n_grams).round(2).tolist()
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], **attributes)
    model = single_node(node, {"x": TensorProto.STRING if strings else TensorProto.INT64},
                        TensorProto.FLOAT, {"": 11})
    x = np.array(words, dtype=object if strings else np.int64)[rng.integers(0, 5, (3, 14))]
    agree_with_onnxruntime(model, {"x": x}, backend)


# --------------------------------------------------------------------------------------------
# LabelEncoder


@pytest.mark.parametrize("backend", TRANSLATING)
@pytest.mark.parametrize("case", ["string_to_int", "int_to_string", "float_to_float"])
def test_label_encoder_agrees_with_onnxruntime(backend: str, case: str) -> None:
    rng = np.random.default_rng(7)
    if case == "string_to_int":
        attributes = {"keys_strings": ["cat", "dog", "eel"], "values_int64s": [7, -3, 12],
                      "default_int64": 99}
        x = np.array(["dog", "eel", "ant", "cat", ""], dtype=object)
        in_type, out_type = TensorProto.STRING, TensorProto.INT64
    elif case == "int_to_string":
        attributes = {"keys_int64s": [5, -2, 40], "values_strings": ["five", "minus", "forty"],
                      "default_string": "?"}
        x = np.array([[40, 5], [0, -2]], np.int64)
        in_type, out_type = TensorProto.INT64, TensorProto.STRING
    else:  # NaN is a key that matches NaN
        attributes = {"keys_floats": [0.5, np.nan, -1.0, 3.0],
                      "values_floats": [10.0, 20.0, 30.0, 40.0], "default_float": -7.0}
        x = rng.choice(np.array([0.5, np.nan, -1.0, 3.0, 2.0], np.float32), (4, 6))
        in_type, out_type = TensorProto.FLOAT, TensorProto.FLOAT
    node = helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", **attributes)
    model = single_node(node, {"x": in_type}, out_type, {"": 21, "ai.onnx.ml": 4})
    agree_with_onnxruntime(model, {"x": x}, backend)


# --------------------------------------------------------------------------------------------
# DeformConv and AffineGrid


@pytest.mark.parametrize("backend", TRANSLATING)
@pytest.mark.parametrize("config", [
    {"group": 2, "offset_group": 2},
    {"strides": [2, 1], "pads": [1, 0, 1, 2], "dilations": [1, 2]},
    {"with_mask": False, "with_bias": False},
], ids=["groups", "strides-pads-dilations", "no-mask-no-bias"])
def test_deform_conv_agrees_with_onnxruntime(backend: str, config: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    config = dict(config)
    with_mask, with_bias = config.pop("with_mask", True), config.pop("with_bias", True)
    group, offset_group = config.get("group", 1), config.get("offset_group", 1)
    strides, pads = config.get("strides", [1, 1]), config.get("pads", [0, 0, 0, 0])
    dilations = config.get("dilations", [1, 1])
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((6, 4 // group, 3, 2)).astype(np.float32)
    out = [(7 + pads[0] + pads[2] - dilations[0] * 2 - 1) // strides[0] + 1,
           (6 + pads[1] + pads[3] - dilations[1] * 1 - 1) // strides[1] + 1]
    feeds = {"x": x, "w": w,
             "offset": (rng.standard_normal((2, offset_group * 6 * 2, *out)) * 2).astype(
                 np.float32)}
    names = ["x", "w", "offset", "b" if with_bias else "", "mask" if with_mask else ""]
    if with_bias:
        feeds["b"] = rng.standard_normal(6).astype(np.float32)
    if with_mask:
        feeds["mask"] = rng.random((2, offset_group * 6, *out)).astype(np.float32)
    node = helper.make_node("DeformConv", names, ["y"], kernel_shape=[3, 2], **config)
    model = single_node(node, {n: TensorProto.FLOAT for n in feeds}, TensorProto.FLOAT,
                        {"": 19})
    agree_with_onnxruntime(model, feeds, backend, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", TRANSLATING)
@pytest.mark.parametrize("size", [[2, 3, 5, 4], [2, 1, 3, 4, 5]], ids=["2d", "3d"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_affine_grid_agrees_with_onnxruntime(backend: str, size: list[int],
                                             align_corners: int) -> None:
    nd = len(size) - 2
    theta = np.random.default_rng(5).standard_normal((2, nd, nd + 1)).astype(np.float32)
    node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"],
                            align_corners=align_corners)
    model = single_node(node, {"theta": TensorProto.FLOAT, "size": TensorProto.INT64},
                        TensorProto.FLOAT, {"": 20})
    agree_with_onnxruntime(model, {"theta": theta, "size": np.array(size, np.int64)}, backend)


@pytest.mark.parametrize("backend", TRANSLATING)
@pytest.mark.parametrize(("auto_pad", "output_shape"), [
    ("NOTSET", [9, 7]), ("NOTSET", [10, 8]), ("NOTSET", [11, 8]), ("SAME_LOWER", [10, 8])])
def test_conv_transpose_to_an_output_shape_past_the_full_result(
        backend: str, auto_pad: str, output_shape: list[int]) -> None:
    """Past the full result the pads turn negative and the output grows by rows that only the
    bias reaches: at the end, where onnxruntime and the reference evaluator agree. (With
    SAME_UPPER, and SAME_LOWER grown by 2, onnxruntime grows the end where the reference grows
    the start, as the spec's formula does; modelport follows the spec there.)"""
    rng = np.random.default_rng(11)
    feeds = {"x": rng.standard_normal((1, 2, 3, 3)).astype(np.float32),
             "w": rng.standard_normal((2, 3, 3, 3)).astype(np.float32),
             "b": rng.standard_normal(3).astype(np.float32)}
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[3, 2],
                            output_shape=output_shape, auto_pad=auto_pad)
    model = single_node(node, dict.fromkeys(feeds, TensorProto.FLOAT), TensorProto.FLOAT,
                        {"": 22})
    agree_with_onnxruntime(model, feeds, backend, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("config", [(20, 512, 16000, 50.0, 7600.0), (40, 1024, 22050, 0.0,
                                                                      11025.0)])
def test_mel_weight_matrix_agrees_with_onnxruntime(backend: str, config: tuple[Any, ...]) -> None:
    names = ["num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz"]
    types = [TensorProto.INT64] * 3 + [TensorProto.FLOAT] * 2
    node = helper.make_node("MelWeightMatrix", names, ["weights"])
    model = single_node(node, dict(zip(names, types, strict=True)), TensorProto.FLOAT, {"": 17})
    feeds = {n: np.array(v, np.int64 if t == TensorProto.INT64 else np.float32)
             for n, v, t in zip(names, config, types, strict=True)}
    agree_with_onnxruntime(model, feeds, backend)


@pytest.mark.parametrize("backend", TRANSLATING)
@pytest.mark.parametrize("lengths", [None, [4, 2]], ids=["full", "sequence_lens"])
def test_scan_8_runs_each_batch_row_to_its_length(backend: str, lengths: list[int] | None) -> None:
    """Scan-8 (a batch axis, sequence_lens, a running sum and its history) against
    onnxruntime."""
    body = helper.make_graph(
        [helper.make_node("Add", ["sum_in", "x"], ["sum_out"]),
         helper.make_node("Identity", ["sum_out"], ["history"])], "body",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in ("sum_in", "x")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in ("sum_out",
                                                                           "history")])
    node = helper.make_node("Scan", ["lens" if lengths else "", "init", "xs"],
                            ["final", "histories"], body=body, num_scan_inputs=1,
                            directions=[0])
    inputs = {"init": TensorProto.FLOAT, "xs": TensorProto.FLOAT}
    rng = np.random.default_rng(2)
    feeds = {"init": rng.standard_normal((2, 3)).astype(np.float32),
             "xs": rng.standard_normal((2, 4, 3)).astype(np.float32)}
    if lengths:
        inputs["lens"] = TensorProto.INT64
        feeds["lens"] = np.array(lengths, np.int64)
    model = single_node(node, inputs, TensorProto.FLOAT, {"": 8})
    agree_with_onnxruntime(model, feeds, backend)


# --------------------------------------------------------------------------------------------
# random generators


RANDOM = {
    "RandomUniform": ([], {"shape": [3, 4], "low": -2.0, "high": 5.0}),
    "RandomNormal": ([], {"shape": [3, 4], "mean": 1.0, "scale": 3.0}),
    "RandomUniformLike": (["x"], {"low": -1.0, "high": 1.0}),
    "RandomNormalLike": (["x"], {"dtype": TensorProto.DOUBLE}),
    "Bernoulli": (["p"], {}),
}


@pytest.mark.parametrize("backend", TRANSLATING)
@pytest.mark.parametrize("op_type", RANDOM)
def test_a_seeded_random_node_draws_what_the_reference_draws(backend: str, op_type: str) -> None:
    """numpy's RandomState(seed), as the reference evaluator draws: one seeded model gives the
    same values everywhere and on every call; without a seed two calls differ."""
    inputs, attributes = RANDOM[op_type]
    feeds = {"x": np.zeros((2, 5), np.float32),
             "p": np.random.default_rng(0).random((4, 6)).astype(np.float32)}
    feeds = {n: feeds[n] for n in inputs}

    def model(**seed: float) -> onnx.ModelProto:
        node = helper.make_node(op_type, inputs, ["y"], **attributes, **seed)
        return single_node(node, dict.fromkeys(inputs, TensorProto.FLOAT), TensorProto.UNDEFINED,
                           {"": 22})

    want = modelport.get_backend("reference").prepare(model(seed=7.0)).run(feeds)["y"]
    session = modelport.get_backend(backend).prepare(model(seed=7.0))
    for _ in range(2):
        got = session.run(feeds)["y"]
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    unseeded = modelport.get_backend(backend).prepare(model())
    assert not np.array_equal(unseeded.run(feeds)["y"], unseeded.run(feeds)["y"])
