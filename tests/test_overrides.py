"""Every native override of every framework agrees with the shared definition it stands in for.

An override (``Framework.overrides``) is a framework's own kernel for an operator: faster, but
the shared operator stays the definition. Each one runs here against the same operator with the
overrides switched off, on random values and on the edge values (NaN, +-Inf, -0.0, huge and
tiny magnitudes, an empty tensor), in float16, float32 and float64: exactly for elementwise
operators, within a stated tolerance for fused ones (their reductions sum in another order).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import helper

from modelport.ops import registry
from modelport.ops.context import Framework, OpContext

EDGES = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e30, -1e30, 1e-30, -1e-30, 3.5, -2.25, 60.0]
# operator, attributes, parameter inputs, tolerance in units of the dtype's epsilon (relative,
# absolute): 0 for the exact elementwise ones, a few for transcendental ones (the libraries'
# exp and erf differ in the last bits), more for fused reductions (another summation order)
CASES: dict[str, tuple[str, dict[str, Any], int, float, float]] = {
    "relu": ("Relu", {}, 0, 0, 0),
    "sigmoid": ("Sigmoid", {}, 0, 4, 0),
    "gelu": ("Gelu", {}, 0, 4, 8),
    "gelu_tanh": ("Gelu", {"approximate": "tanh"}, 0, 4, 8),
    "softmax": ("Softmax", {"axis": -1}, 0, 8, 8),
    "log_softmax": ("LogSoftmax", {"axis": -1}, 0, 8, 8),
    "layer_norm": ("LayerNormalization", {"axis": -1}, 2, 64, 64),
    "batch_norm": ("BatchNormalization", {}, 4, 16, 16),
}
OPSET = 22


def frameworks() -> list[Framework]:
    found: list[Framework] = []
    for name in ("torch", "jax", "tensorflow"):
        module = pytest.importorskip(f"modelport.backends.{name}")
        cls = {"torch": "TorchFramework", "jax": "JaxFramework",
               "tensorflow": "TensorFlowFramework"}[name]
        found.append(getattr(module, cls)(*(["cpu"] if name == "torch" else [])))
    return found


def declared() -> list[tuple[str, str]]:
    """(framework, override) for every override that a framework declares."""
    pairs = []
    for fw in frameworks():
        for name in fw.overrides:
            if name == "cond":  # control flow: see test_a_traced_if_agrees_with_python_if
                continue
            pairs.append((fw.name, name))
            if name == "gelu":
                pairs.append((fw.name, "gelu_tanh"))
    return pairs


def without_overrides(fw: Framework) -> Framework:
    plain = type(f"Plain{type(fw).__name__}", (type(fw),), {"overrides": {}})
    copy = object.__new__(plain)
    copy.__dict__.update(fw.__dict__)
    return copy


def inputs(case: str, dtype: type, rng: np.random.Generator, edge: bool) -> list[np.ndarray]:
    op_type, _, extras, _, _ = CASES[case]
    shape = (2, 3, 4) if op_type == "BatchNormalization" else (3, 12) if edge else (4, 16)
    x = rng.standard_normal(shape) * 3
    if edge:
        x.reshape(-1)[: len(EDGES)] = EDGES
    channels = shape[1] if op_type == "BatchNormalization" else shape[-1]
    params = [rng.standard_normal(channels) for _ in range(extras)]
    if op_type == "BatchNormalization":
        params[3] = np.abs(params[3]) + 0.5  # a variance
    return [a.astype(dtype) for a in [x, *params]]


def run(fw: Framework, case: str, args: list[np.ndarray]) -> np.ndarray:
    op_type, attributes, _, _, _ = CASES[case]
    opdef, schema = registry.lookup(op_type, "", OPSET)
    assert opdef is not None
    node = helper.make_node(op_type, [f"i{i}" for i in range(len(args))], ["y"], **attributes)
    ctx = OpContext(fw, {})
    out = opdef.fn(ctx, *[fw.asarray(a) for a in args],
                   **registry.attribute_values(node, schema))
    return np.asarray(fw.to_host(out) if fw.is_native(out) else out)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("edge", [False, True], ids=["random", "edges"])
@pytest.mark.parametrize(("framework", "case"), declared())
def test_an_override_agrees_with_the_shared_definition(framework: str, case: str, dtype: type,
                                                       edge: bool) -> None:
    fw = next(f for f in frameworks() if f.name == framework)
    args = inputs(case, dtype, np.random.default_rng(0), edge)
    fast, shared = run(fw, case, args), run(without_overrides(fw), case, args)
    _, _, _, rtol, atol = CASES[case]
    eps = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(fast.astype(np.float64), shared.astype(np.float64),
                               rtol=rtol * eps, atol=atol * eps, equal_nan=True,
                               err_msg=f"{framework} {case} override against the shared op")
    assert fast.dtype == shared.dtype and fast.shape == shared.shape


@pytest.mark.parametrize("framework", [f.name for f in frameworks()])
def test_an_override_of_an_empty_tensor_is_empty(framework: str) -> None:
    fw = next(f for f in frameworks() if f.name == framework)
    for case in [c for c in CASES if c in fw.overrides and CASES[c][2] == 0]:
        x = np.zeros((0, 5), np.float32)
        assert run(fw, case, [x]).shape == (0, 5)


def _traced(framework: str, fn: Any) -> Any:
    if framework == "jax":
        import jax

        return jax.jit(fn)
    import tensorflow as tf

    return tf.function(fn, autograph=False)


@pytest.mark.parametrize("framework", ["jax", "tensorflow"])
def test_a_traced_if_agrees_with_python_if(framework: str) -> None:
    fw = next(f for f in frameworks() if f.name == framework)
    cond = fw.overrides["cond"]

    def choose(p: Any, x: Any) -> Any:
        return cond(p, lambda: [x + 1], lambda: [x - 1])

    x = fw.asarray(np.arange(3.0))
    for pred in (True, False):
        for call in (choose, _traced(framework, choose)):  # eager: Python decides
            got = call(fw.asarray(np.array(pred)), x)[0]
            np.testing.assert_array_equal(fw.to_host(got), np.arange(3.0) + (1 if pred else -1))
