"""The registry is consistent with the ONNX schemas of the installed onnx package."""

from __future__ import annotations

import inspect
from typing import Any

import onnx.defs
import onnx.helper
import pytest

from modelport.ops import REGISTRY
from modelport.ops.registry import CONTRIB_DOMAINS, ORT_IN_ONNX_DOMAIN

# onnxruntime's contrib operators, and its own version 1 of a few in the ONNX domain, have no
# onnx schema: tests/test_contrib.py holds them to onnxruntime's own.
ENTRIES = sorted((k, v) for k, v in REGISTRY.items() if k[0] not in CONTRIB_DOMAINS
                 and not (k[1] in ORT_IN_ONNX_DOMAIN and k[2] == 1))


def schema(domain: str, name: str, version: int) -> Any:
    return onnx.defs.get_schema(name, version, domain)


@pytest.mark.parametrize(("key", "opdef"), ENTRIES, ids=[f"{k[1]}-{k[2]}" for k, _ in ENTRIES])
def test_every_registration_is_a_version_the_spec_defines(key: tuple[str, str, int],
                                                          opdef: Any) -> None:
    domain, name, version = key
    # A version that is not a since_version is unreachable: no opset resolves a node to it.
    assert schema(domain, name, version).since_version == version


def test_declared_attribute_defaults_are_the_schemas() -> None:
    """The interpreter passes every attribute from the schema of the resolved version; a
    default written in the function is for readers and must not say otherwise (None means
    "the schema's")."""
    wrong = []
    for (domain, name, version), opdef in ENTRIES:
        attributes = schema(domain, name, version).attributes
        for p in inspect.signature(opdef.fn).parameters.values():
            attribute = attributes.get(p.name)
            if p.kind != p.KEYWORD_ONLY or p.default in (inspect.Parameter.empty, None) \
                    or attribute is None or not attribute.default_value.name:
                continue
            default = onnx.helper.get_attribute_value(attribute.default_value)
            default = default.decode() if isinstance(default, bytes) else default
            if default != p.default and not (isinstance(default, float)
                                             and default == pytest.approx(p.default)):
                wrong.append(f"{name}-{version} {p.name}: {p.default!r}, schema {default!r}")
    assert wrong == []


def test_grid_sample_16_by_its_default_mode_agrees_with_onnxruntime() -> None:
    """GridSample-16 says bilinear where 20 says linear: a hand-typed default once sent it to
    the cubic branch."""
    import numpy as np
    from onnx import TensorProto, helper

    import modelport

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    grid = (rng.random((1, 3, 3, 2)) * 2 - 1).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GridSample", ["x", "grid"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 5]),
         helper.make_tensor_value_info("grid", TensorProto.FLOAT, [1, 3, 3, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    model.ir_version = 8
    report = modelport.compare(model, ["onnxruntime", "numpy", "torch"],
                               inputs={"x": x, "grid": grid})
    assert report.passed, [(r.backend, r.error) for r in report.results]
