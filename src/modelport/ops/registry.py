"""The operator registry: ONNX semantics keyed by (domain, op_type, since_version).

An operator is a plain function that reads like the spec: ``ctx`` first (the array namespace
``ctx.xp`` and the framework's kernels ``ctx.k``), then the inputs positionally (``None`` for an
omitted optional input), then the attributes as keywords::

    @op("Gemm", 11, 13)
    def gemm(ctx, a, b, c=None, *, alpha, beta, transA, transB): ...

A node is resolved through the ONNX schema for the model's opset to the version that defines
it, then looked up exactly: a newer version in the spec is a visible gap, never silent reuse of
old semantics. Attribute defaults come from the schema of that resolved version.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelport.errors import ModelLoadError

OpFn = Callable[..., Any]

DEFAULT_DOMAIN = ""
_ALIASES = {"ai.onnx": ""}
CONTRIB_DOMAINS = frozenset({"com.microsoft"})
# onnxruntime's own operators that its tools write into the ONNX domain, as version 1, where
# onnx has no schema for them (LayerNormalization before opset 17)
ORT_IN_ONNX_DOMAIN = frozenset({"LayerNormalization", "SimplifiedLayerNormalization"})


@dataclass(frozen=True)
class OpDef:
    """One implementation: the versions it claims and which inputs must be host values."""

    domain: str
    op_type: str
    versions: tuple[int, ...]
    fn: OpFn
    host: tuple[int, ...] = ()  # input positions needed as numpy values (shapes, axes, ...)
    raw_attributes: tuple[str, ...] = ()  # attributes passed as protos (graphs) untouched


@dataclass
class Resolved:
    """A node bound to its implementation, with every attribute value filled in."""

    opdef: OpDef
    since_version: int
    attributes: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[tuple[str, str, int], OpDef] = {}


def op(op_type: str, *versions: int, domain: str = DEFAULT_DOMAIN, host: Sequence[int] = (),
       raw: Sequence[str] = ()) -> Callable[[OpFn], OpFn]:
    """Register ``fn`` as ``op_type`` for each ONNX ``since_version`` in ``versions``."""

    def register(fn: OpFn) -> OpFn:
        opdef = OpDef(domain, op_type, versions, fn, tuple(host), tuple(raw))
        for version in versions:
            key = (domain, op_type, version)
            if key in REGISTRY:
                raise ValueError(f"{domain or 'ai.onnx'}::{op_type}-{version} is registered twice")
            REGISTRY[key] = opdef
        return fn

    return register


def schema_for(op_type: str, opset: int, domain: str) -> Any:
    """The ONNX schema that defines ``op_type`` at ``opset``, or ``None`` if there is none."""
    import onnx.defs

    try:
        return onnx.defs.get_schema(op_type, opset, _ALIASES.get(domain, domain))
    except onnx.defs.SchemaError:
        return None


def lookup(op_type: str, domain: str, opset: int) -> tuple[OpDef | None, Any]:
    """The implementation for the version in force at ``opset``, and that version's schema."""
    domain = _ALIASES.get(domain, domain)
    if domain in CONTRIB_DOMAINS:  # onnxruntime's, not in onnx's schemas; each is version 1
        return REGISTRY.get((domain, op_type, 1)), None
    schema = schema_for(op_type, opset, domain)
    if schema is None and domain == DEFAULT_DOMAIN and op_type in ORT_IN_ONNX_DOMAIN:
        return REGISTRY.get((domain, op_type, 1)), None
    if schema is None:
        return None, None
    return REGISTRY.get((domain, op_type, schema.since_version)), schema


def attribute_values(node: Any, schema: Any) -> dict[str, Any]:
    """The node's attributes as Python values, with the schema's defaults for the rest."""
    values: dict[str, Any] = {}
    if schema is not None:
        for name, attr in schema.attributes.items():
            if attr.default_value is not None and attr.default_value.type != 0:
                values[name] = attribute_value(attr.default_value)
    for attr in node.attribute:
        if attr.name not in _WITHOUT_EFFECT:
            values[attr.name] = attribute_value(attr)
    return values


# Attributes of old versions that never changed a result: opsets 1-5 let an exporter say which
# inputs a node may overwrite in place.
_WITHOUT_EFFECT = frozenset({"consumed_inputs"})


def attribute_value(attr: Any) -> Any:
    """An AttributeProto as a Python value; tensors become numpy arrays, graphs stay protos."""
    import onnx
    from onnx import numpy_helper

    kind = attr.type
    if kind == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(attr.t)
    if kind == onnx.AttributeProto.TENSORS:
        return [numpy_helper.to_array(t) for t in attr.tensors]
    if kind == onnx.AttributeProto.SPARSE_TENSOR:
        return _sparse_to_dense(attr.sparse_tensor)
    if kind == onnx.AttributeProto.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == onnx.AttributeProto.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in attr.strings]
    if kind == onnx.AttributeProto.GRAPH:
        return attr.g
    if kind == onnx.AttributeProto.GRAPHS:
        return list(attr.graphs)
    if kind == onnx.AttributeProto.TYPE_PROTO:
        return attr.tp
    return onnx.helper.get_attribute_value(attr)


def _sparse_to_dense(sparse: Any) -> np.ndarray:
    from onnx import numpy_helper

    values = numpy_helper.to_array(sparse.values)
    indices = numpy_helper.to_array(sparse.indices).astype(np.int64)
    dims = tuple(int(d) for d in sparse.dims)
    size = math.prod(dims)
    # The spec's indices are non-negative and in range: numpy would read -1 as the last element.
    bounds = size if indices.ndim == 1 else np.array(dims, np.int64)
    if indices.size and (indices.min() < 0 or np.any(indices >= bounds)):
        raise ModelLoadError(f"sparse tensor {sparse.values.name!r}: an index lies outside "
                             f"its shape {list(dims)}")
    dense = np.zeros(size, dtype=values.dtype)
    flat = indices if indices.ndim == 1 else np.ravel_multi_index(indices.T, dims)
    dense[flat] = values
    return dense.reshape(dims)


def supported_ops(domain: str = DEFAULT_DOMAIN) -> Mapping[str, list[int]]:
    """Operator -> the since_versions implemented, for docs and error hints."""
    table: dict[str, list[int]] = {}
    for (dom, name, version) in sorted(REGISTRY):
        if dom == domain:
            table.setdefault(name, []).append(version)
    return table
