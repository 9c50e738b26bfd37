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


def _transformers_optimized(source: Path, target: Path, model_type: str, num_heads: int,
                            hidden_size: int) -> Path:
    """``source`` through onnxruntime's transformers optimizer (level 1), saved to ``target``."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type=model_type, num_heads=num_heads,
                               hidden_size=hidden_size, opt_level=1)
    optimized.save_model_to_file(str(target))
    return target


def _fused(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node if n.domain == "com.microsoft"}


@pytest.fixture(scope="module")
def optimized_bert(zoo: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _transformers_optimized(zoo["bert"], tmp_path_factory.mktemp("optimized") / "bert.onnx",
                                   "bert", num_heads=0, hidden_size=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bert_from_the_transformers_optimizer(optimized_bert: Path, backend: str) -> None:
    from models.zoo import feeds_for

    model = onnx.load(optimized_bert)
    fused = _fused(model)
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

    from modelport.ops.registry import ORT_IN_ONNX_DOMAIN, REGISTRY

    schemas = {(s.domain, s.name): s for s in ort.get_all_operator_schema()
               if s.domain == "com.microsoft" or (s.name in ORT_IN_ONNX_DOMAIN
                                                  and s.since_version == 1)}
    wrong = []
    for (domain, op_type, version), opdef in REGISTRY.items():
        if domain != "com.microsoft" and not (op_type in ORT_IN_ONNX_DOMAIN and version == 1):
            continue
        declared = {n: p.default for n, p in inspect.signature(opdef.fn).parameters.items()
                    if p.kind == p.KEYWORD_ONLY}
        for name, attribute in schemas[domain, op_type].attributes.items():
            proto = onnx.AttributeProto()
            proto.ParseFromString(attribute._default_value)
            default = onnx.helper.get_attribute_value(proto) if attribute._default_value else None
            default = default.decode() if isinstance(default, bytes) else default  # as read
            if declared.get(name) != pytest.approx(default):
                wrong.append(f"{op_type}.{name}: declared {declared.get(name)}, schema {default}")
    assert not wrong


class _Calibration:
    """Random images for quantize_static's calibration (no datasets here)."""

    def __init__(self, name: str, shape: list[int]) -> None:
        rng = np.random.default_rng(0)
        self._feeds = iter([{name: rng.standard_normal(shape).astype(np.float32)}
                            for _ in range(4)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


@pytest.fixture(scope="module")
def quantized(zoo: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Path]:
    """BERT by quantize_dynamic; ResNet by quantize_static in the QDQ and QOperator formats;
    an MLP whose Linear layers the TorchScript exporter wrote as Gemm, by quantize_static in
    QOperator format with per-channel weights (QGemm)."""
    import torch
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    folder = tmp_path_factory.mktemp("quantized")
    paths = {"bert-dynamic": folder / "bert.onnx"}
    quantize_dynamic(str(zoo["bert"]), str(paths["bert-dynamic"]), weight_type=QuantType.QInt8)
    (spec,) = modelport.inspect(zoo["resnet"]).inputs
    shape = [d if isinstance(d, int) else 2 for d in spec.shape]
    for fmt in (QuantFormat.QDQ, QuantFormat.QOperator):
        paths[f"resnet-{fmt.name}"] = folder / f"resnet-{fmt.name}.onnx"
        reader = type("Reader", (_Calibration, CalibrationDataReader), {})(spec.name, shape)
        quantize_static(str(zoo["resnet"]), str(paths[f"resnet-{fmt.name}"]), reader,
                        quant_format=fmt)
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    torch.onnx.export(mlp.eval(), (torch.randn(2, 16),), folder / "mlp.onnx", dynamo=False,
                      input_names=["x"], opset_version=17, dynamic_axes={"x": {0: "batch"}})
    paths["mlp-QOperator"] = folder / "mlp-QOperator.onnx"
    reader = type("Reader", (_Calibration, CalibrationDataReader), {})("x", [8, 16])
    quantize_static(str(folder / "mlp.onnx"), str(paths["mlp-QOperator"]), reader,
                    quant_format=QuantFormat.QOperator, per_channel=True)
    return paths


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", ["bert-dynamic", "resnet-QDQ", "resnet-QOperator",
                                   "mlp-QOperator"])
def test_models_from_the_quantizer(quantized: dict[str, Path], model: str,
                                   backend: str) -> None:
    from models.zoo import feeds_for

    proto = onnx.load(quantized[model])
    kinds = {n.op_type for n in proto.graph.node}
    expected = {"bert-dynamic": "MatMulInteger", "resnet-QDQ": "QuantizeLinear",
                "resnet-QOperator": "QLinearAdd", "mlp-QOperator": "QGemm"}[model]
    assert expected in kinds, kinds  # the format this case is about
    _against_onnxruntime(proto, feeds_for(quantized[model], 2, seed=0), backend, 1e-4)


QUANTIZED: dict[str, tuple[str, list[tuple[str, Any]], dict[str, Any]]] = {
    "QLinearMul": ("QLinearMul", [("a", (2, 3, 4)), ("a_scale", 0.05), ("a_zero", 128),
                                  ("b", (4,)), ("b_scale", 0.02), ("b_zero", 120),
                                  ("c_scale", 0.01), ("c_zero", 100)], {}),
    "QLinearSigmoid": ("QLinearSigmoid", [("x", (4, 64)), ("x_scale", 0.05), ("x_zero", 128),
                                          ("y_scale", 1 / 255), ("y_zero", 0)], {}),
    "QLinearLeakyRelu": ("QLinearLeakyRelu", [("x", (4, 64)), ("x_scale", 0.05),
                                              ("x_zero", 128), ("y_scale", 0.04),
                                              ("y_zero", 100)], {"alpha": 0.1}),
    "QLinearGlobalAveragePool": ("QLinearGlobalAveragePool",
                                 [("x", (2, 3, 4, 4)), ("x_scale", 0.05), ("x_zero", 128),
                                  ("y_scale", 0.03), ("y_zero", 120)], {}),
    "QLinearGlobalAveragePool-nhwc": ("QLinearGlobalAveragePool",
                                      [("x", (2, 4, 4, 3)), ("x_scale", 0.05),
                                       ("x_zero", 128), ("y_scale", 0.03), ("y_zero", 120)],
                                      {"channels_last": 1}),
    "QLinearAveragePool": ("QLinearAveragePool",
                           [("x", (2, 3, 6, 6)), ("x_scale", 0.05), ("x_zero", 128),
                            ("y_scale", 0.03), ("y_zero", 120)],
                           {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "QLinearAveragePool-nhwc": ("QLinearAveragePool",
                                [("x", (2, 6, 6, 3)), ("x_scale", 0.05), ("x_zero", 128),
                                 ("y_scale", 0.03), ("y_zero", 120)],
                                {"kernel_shape": [2, 2], "channels_last": 1,
                                 "count_include_pad": 1}),
    "QLinearConcat": ("QLinearConcat", [("y_scale", 0.06), ("y_zero", 125),
                                        ("a", (2, 3, 4)), ("a_scale", 0.05), ("a_zero", 128),
                                        ("b", (2, 5, 4)), ("b_scale", 0.08), ("b_zero", 110)],
                      {"axis": 1}),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", QUANTIZED)
def test_each_quantized_contrib_operator(case: str, backend: str) -> None:
    from onnx import numpy_helper

    op_type, inputs, attributes = QUANTIZED[case]
    rng = np.random.default_rng(0)
    tensors, constants = [], []
    feeds = {}
    for name, value in inputs:
        if isinstance(value, tuple):
            feeds[name] = rng.integers(0, 256, value).astype(np.uint8)
            tensors.append(helper.make_tensor_value_info(name, TensorProto.UINT8, list(value)))
        else:
            dtype = np.float32 if isinstance(value, float) else np.uint8
            constants.append(numpy_helper.from_array(np.array(value, dtype), name))
    graph = helper.make_graph(
        [helper.make_node(op_type, [n for n, _ in inputs], ["y"], domain="com.microsoft",
                          **attributes)], "q", tensors,
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.microsoft", 1)])
    import onnxruntime

    (want,) = onnxruntime.InferenceSession(model.SerializeToString()).run(None, feeds)
    got = modelport.get_backend(backend).prepare(model).run(feeds)["y"]
    assert got.dtype == want.dtype and got.shape == want.shape
    # onnxruntime computes these through lookup tables and fixed point, modelport in float:
    # a value that lands on a rounding boundary can go either way, one step at most
    steps = np.abs(got.astype(np.int32) - want.astype(np.int32))
    assert steps.max() <= 1 and (steps == 0).mean() > 0.9, (steps.max(), (steps == 0).mean())


# --- decoder-only language models from onnxruntime-genai's model builder ----------------------


@pytest.fixture(scope="module")
def built_llama(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A LLaMA with random weights (4 query heads sharing 2 key/value heads, rotary positions)
    through onnxruntime-genai's builder in float32 and int4: GroupQueryAttention with a
    key/value cache, SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization,
    MatMulNBits."""
    import subprocess
    import sys

    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    root = tmp_path_factory.mktemp("llama")
    config = transformers.LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=128)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(root / "hf")
    words = Tokenizer(models.WordLevel({f"t{i}": i for i in range(256)}, unk_token="t0"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()  # the builder copies a tokenizer along
    transformers.PreTrainedTokenizerFast(tokenizer_object=words, unk_token="t0").save_pretrained(
        root / "hf")
    built = {}
    for precision in ("fp32", "int4"):
        subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i",
                        str(root / "hf"), "-o", str(root / precision), "-p", precision, "-e",
                        "cpu", "-c", str(root / "cache")], check=True, capture_output=True)
        built[precision] = root / precision / "model.onnx"
    # accuracy_level 4 lets onnxruntime quantize activations to int8 as well; at level 0 it
    # computes with the dequantized weights, as the operator's definition does
    exact = onnx.load(built["int4"])
    for node in exact.graph.node:
        for attribute in node.attribute:
            if attribute.name == "accuracy_level":
                attribute.i = 0
    built["int4-exact"] = root / "int4" / "exact.onnx"
    onnx.save(exact, built["int4-exact"], save_as_external_data=True, location="exact.data")
    return built


def _decoder_feeds(batch: int, new: int, past: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {"input_ids": rng.integers(0, 256, (batch, new)).astype(np.int64),
             "attention_mask": np.ones((batch, past + new), np.int64)}
    for layer in range(2):
        for kind in ("key", "value"):
            feeds[f"past_key_values.{layer}.{kind}"] = rng.standard_normal(
                (batch, 2, past, 16)).astype(np.float32)
    return feeds


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("precision", ["fp32", "int4-exact"])
@pytest.mark.parametrize(("batch", "new", "past"), [(2, 4, 0), (1, 1, 6), (1, 3, 4)],
                         ids=["prompt", "next-token", "chunk-after-cache"])
def test_decoder_from_the_genai_builder(built_llama: dict[str, Path], precision: str,
                                        backend: str, batch: int, new: int, past: int) -> None:
    model = onnx.load(built_llama[precision])
    fused = {n.op_type for n in model.graph.node}
    assert {"GroupQueryAttention", "SkipSimplifiedLayerNormalization",
            "SimplifiedLayerNormalization"} <= fused, fused
    assert ("MatMulNBits" in fused) == precision.startswith("int4")
    _against_onnxruntime(model, _decoder_feeds(batch, new, past, seed=new), backend)


@pytest.mark.slow
def test_int4_decoder_at_onnxruntimes_int8_accuracy_level(built_llama: dict[str, Path]) -> None:
    """At accuracy_level 4 onnxruntime also rounds activations to int8: within 2e-2 of the
    weights' exact dequantization, which every backend computes."""
    _against_onnxruntime(onnx.load(built_llama["int4"]), _decoder_feeds(2, 4, 0, seed=1),
                         "numpy", tolerance=2e-2)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["hidden", "heads"])
@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_embedding(backend: str, layout: str, interleaved: int) -> None:
    """RotaryEmbedding (com.microsoft) on [B, S, hidden] and [B, heads, S, head_size], rotating
    a part of each head (rotary_embedding_dim 8 of 16), at per-token positions."""
    rng = np.random.default_rng(interleaved)
    shape = (2, 3, 4 * 16) if layout == "hidden" else (2, 4, 3, 16)
    angles = rng.uniform(0, 6, (32, 4))
    node = helper.make_node("RotaryEmbedding", ["x", "positions", "cos", "sin"], ["y"],
                            domain="com.microsoft", interleaved=interleaved,
                            rotary_embedding_dim=8, num_heads=4)
    graph = helper.make_graph(
        [node], "rotary",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape)),
         helper.make_tensor_value_info("positions", TensorProto.INT64, [2, 3]),
         helper.make_tensor_value_info("cos", TensorProto.FLOAT, [32, 4]),
         helper.make_tensor_value_info("sin", TensorProto.FLOAT, [32, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    feeds = {"x": rng.standard_normal(shape).astype(np.float32),
             "positions": rng.integers(0, 32, (2, 3)).astype(np.int64),
             "cos": np.cos(angles).astype(np.float32), "sin": np.sin(angles).astype(np.float32)}
    _against_onnxruntime(model, feeds, backend)


@pytest.fixture(scope="module")
def attention_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BERT (eager attention, random weights) through the TorchScript exporter at opset 14 and
    the transformers optimizer with its head count, the path that fuses whole layers:
    EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    config._attn_implementation = "eager"  # the attention pattern the optimizer matches
    torch.manual_seed(0)
    bert = BertModel(config).eval()

    class Outputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            out = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types)
            return out.last_hidden_state, out.pooler_output

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.randint(0, 100, (2, 8))
    folder = tmp_path_factory.mktemp("attention_bert")
    torch.onnx.export(Outputs().eval(), (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                      folder / "bert.onnx", input_names=names, dynamo=False, opset_version=14,
                      output_names=["last_hidden_state", "pooler_output"],
                      dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names})
    return _transformers_optimized(folder / "bert.onnx", folder / "optimized.onnx", "bert",
                                   num_heads=4, hidden_size=32)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_bert_with_fused_attention(attention_bert: Path, backend: str) -> None:
    model = onnx.load(attention_bert)
    fused = _fused(model)
    assert {"Attention", "EmbedLayerNormalization"} <= fused, fused
    rng = np.random.default_rng(5)
    mask = np.ones((3, 7), np.int64)
    mask[1, 5:] = 0  # padded rows: the mask index masks their keys
    mask[2, 2:] = 0
    feeds = {"input_ids": rng.integers(0, 100, (3, 7)).astype(np.int64),
             "attention_mask": mask, "token_type_ids": rng.integers(0, 2, (3, 7))}
    _against_onnxruntime(model, feeds, backend, 1e-5)


@pytest.fixture(scope="module")
def quantized_attention_bert(attention_bert: Path) -> Path:
    """The fused BERT through quantize_dynamic: QAttention and QEmbedLayerNormalization.
    (Its weights feed contrib operators, whose types onnx's shape inference cannot tell the
    quantizer: ``DefaultTensorType`` says float.)"""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = attention_bert.with_name("quantized.onnx")
    quantize_dynamic(str(attention_bert), str(path), weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})
    return path


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_bert_with_quantized_fused_attention(quantized_attention_bert: Path,
                                             backend: str) -> None:
    model = onnx.load(quantized_attention_bert)
    fused = _fused(model)
    assert {"QAttention", "QEmbedLayerNormalization"} <= fused, fused
    rng = np.random.default_rng(6)
    mask = np.ones((2, 9), np.int64)
    mask[0, 4:] = 0
    feeds = {"input_ids": rng.integers(0, 100, (2, 9)).astype(np.int64),
             "attention_mask": mask, "token_type_ids": rng.integers(0, 2, (2, 9))}
    _against_onnxruntime(model, feeds, backend, 1e-5)


@pytest.fixture(scope="module")
def ort_optimized(zoo: dict[str, Path], quantized: dict[str, Path],
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Models as onnxruntime's own graph optimizer saves them (``optimized_model_filepath`` at
    the extended level): FusedConv, FusedGemm, FusedMatMul, DynamicQuantizeMatMul,
    MatMulIntegerToFloat."""
    import onnxruntime

    sources = {"resnet": zoo["resnet"], "bert": zoo["bert"], "gpt2": zoo["gpt2"],
               "bert-dynamic": quantized["bert-dynamic"],
               "mlp": quantized["mlp-QOperator"].with_name("mlp.onnx")}
    folder = tmp_path_factory.mktemp("ort_optimized")
    saved = {}
    for name, source in sources.items():
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(folder / f"{name}.onnx")
        onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        saved[name] = folder / f"{name}.onnx"
    return saved


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("model", "fusions"), [
    ("resnet", {"FusedConv"}), ("bert", {"FusedGemm", "FusedMatMul"}),
    ("gpt2", {"FastGelu", "SkipLayerNormalization"}),
    ("bert-dynamic", {"DynamicQuantizeMatMul", "MatMulIntegerToFloat"}), ("mlp", {"FusedGemm"})])
def test_models_saved_by_onnxruntimes_optimizer(ort_optimized: dict[str, Path], model: str,
                                                fusions: set[str], backend: str) -> None:
    from models.zoo import feeds_for

    proto = onnx.load(ort_optimized[model])
    assert fusions <= {n.op_type for n in proto.graph.node}  # what this case is about
    _against_onnxruntime(proto, feeds_for(ort_optimized[model], 2, seed=4), backend, 1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", ["self-past-causal-mask", "cross-heads", "lengths"])
def test_multi_head_attention(backend: str, form: str) -> None:
    """MultiHeadAttention (com.microsoft) in the forms onnxruntime's CPU provider runs:
    [B, S, D] q/k/v with a bias, a 0/1 key mask, a past key/value and a causal mask; keys and
    values already split into heads (cross-attention); a mask of row lengths."""
    rng = np.random.default_rng(len(form))
    batch, length, past, heads, size = 2, 3, 5, 4, 8
    width = heads * size

    def tensor(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    if form == "self-past-causal-mask":
        mask = np.ones((batch, past + length), np.int32)
        mask[1, -2:] = 0
        feeds = {"q": tensor(batch, length, width), "k": tensor(batch, length, width),
                 "v": tensor(batch, length, width), "bias": tensor(3 * width), "mask": mask,
                 "past_k": tensor(batch, heads, past, size),
                 "past_v": tensor(batch, heads, past, size)}
        names, attributes = ["q", "k", "v", "bias", "mask", "", "past_k", "past_v"], {
            "unidirectional": 1}
    elif form == "cross-heads":
        feeds = {"q": tensor(batch, length, width), "k": tensor(batch, heads, past, size),
                 "v": tensor(batch, heads, past, size)}
        names, attributes = ["q", "k", "v"], {}
    else:
        feeds = {"q": tensor(batch, length, width), "k": tensor(batch, past, width),
                 "v": tensor(batch, past, width), "mask": np.array([5, 2], np.int32)}
        names, attributes = ["q", "k", "v", "", "mask"], {}
    node = helper.make_node("MultiHeadAttention", names, ["y", "present_k", "present_v"],
                            domain="com.microsoft", num_heads=heads, **attributes)
    graph = helper.make_graph(
        [node], "mha",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), None)
         for n, v in feeds.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
         for n in ("y", "present_k", "present_v")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    _against_onnxruntime(model, feeds, backend)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "zero-points"])
def test_the_4_bit_matmul_quantizer(zoo: dict[str, Path], tmp_path: Path, backend: str,
                                    symmetric: bool) -> None:
    """onnxruntime's MatMulNBitsQuantizer (blocks of 32, accuracy level 0) on BERT: 4-bit
    weights, packed zero points when asymmetric."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from models.zoo import feeds_for

    quantizer = MatMulNBitsQuantizer(onnx.load(zoo["bert"]), block_size=32,
                                     is_symmetric=symmetric, accuracy_level=0)
    quantizer.process()
    path = tmp_path / "bert-4bit.onnx"
    quantizer.model.save_model_to_file(str(path), use_external_data_format=False)
    proto = onnx.load(path)
    packed = [n for n in proto.graph.node if n.op_type == "MatMulNBits"]
    assert len(packed) >= 4 and all((len(n.input) > 3) != symmetric for n in packed)
    _against_onnxruntime(proto, feeds_for(path, 2, seed=7), backend, 1e-4)


@pytest.fixture(scope="module")
def optimized_gpt2(zoo: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GPT-2 through the transformers optimizer as model_type "gpt2". onnxruntime 1.32's GPT-2
    pass indexes every Gemm's third input (onnx_model_gpt2.py, line 82) and fails with an
    IndexError on the bias-less Gemms that torch's exporter writes; an explicit zero bias, the
    workaround a user would apply, lets it run."""
    from onnx import numpy_helper

    model = onnx.load(zoo["gpt2"])
    weights = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Gemm" and len(node.input) < 3:
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            columns = weights[node.input[1]].dims[0 if trans_b else 1]
            zero = numpy_helper.from_array(np.zeros(columns, np.float32), f"{node.name}_bias")
            model.graph.initializer.append(zero)
            node.input.append(zero.name)
    folder = tmp_path_factory.mktemp("gpt2")
    onnx.save(model, folder / "gpt2.onnx")
    return _transformers_optimized(folder / "gpt2.onnx", folder / "optimized.onnx", "gpt2",
                                   num_heads=4, hidden_size=32)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_gpt2_from_the_transformers_optimizer(optimized_gpt2: Path, backend: str) -> None:
    from models.zoo import feeds_for

    model = onnx.load(optimized_gpt2)
    fused = _fused(model)
    assert {"SkipLayerNormalization", "FastGelu"} <= fused, fused
    _against_onnxruntime(model, feeds_for(optimized_gpt2, 2, seed=8), backend, 1e-4)
