"""Function-body expansion: the fallback for operators the spec defines as other operators.

Many operators (LayerNormalization, Attention, Softplus, ReduceL2, ...) carry a body in their
schema, some of it depending on the node's attributes and input types (context-dependent). A
node without an implementation of its own is replaced by that body, with the body's values
renamed apart and its attribute references bound to the node's attributes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

_counter = itertools.count()


def function_body(node: Any, schema: Any, opset: int, input_types: list[Any] | None) -> Any:
    """The FunctionProto defining ``node`` at ``opset``, or ``None`` when the spec has none.

    ``input_types`` (TypeProtos) are needed for context-dependent bodies; ``None`` when unknown.
    """

    if schema is None:
        return None
    if schema.has_function:
        version = _best(schema.function_opset_versions, opset)
        if version is not None:
            return _parse(schema.get_function_with_opset_version(version))
    if schema.has_context_dependent_function and input_types is not None:
        version = _best(schema.context_dependent_function_opset_versions, opset)
        if version is None:
            return None
        try:
            raw = schema.get_context_dependent_function_with_opset_version(
                version, node.SerializeToString(), [t.SerializeToString() for t in input_types])
        except Exception:  # the schema's builder rejects contexts it cannot handle
            return None
        return _parse(raw)
    return None


def _parse(raw: Any) -> Any:
    import onnx

    if isinstance(raw, onnx.FunctionProto):
        return raw
    body = onnx.FunctionProto()
    body.ParseFromString(raw)
    return body


def _best(versions: list[int], opset: int) -> int | None:
    """The newest function version that does not postdate ``opset``."""
    eligible = [v for v in versions if v <= opset]
    return max(eligible) if eligible else None


def expand(node: Any, body: Any, schema: Any = None) -> tuple[list[Any], dict[str, int]]:
    """The body's nodes with values renamed apart and attribute references bound.

    Attribute references resolve to the node's attribute, else the body's declared default,
    else the schema's default. Returns the nodes and the body's own opset imports, under which
    they must be resolved.
    """
    import onnx

    prefix = f"__{node.op_type}_{next(_counter)}__"
    rename: dict[str, str] = {"": ""}
    for formal, actual in zip(body.input, node.input, strict=False):
        rename[formal] = actual
    for formal in body.input[len(node.input):]:
        rename[formal] = ""  # an omitted trailing optional input
    for formal, actual in zip(body.output, node.output, strict=False):
        rename[formal] = actual or prefix + formal  # an unused output stays internal
    attributes = {}
    if schema is not None:
        for name, attr in schema.attributes.items():
            if attr.default_value is not None and attr.default_value.type != 0:
                attributes[name] = attr.default_value
    attributes.update({a.name: a for a in body.attribute_proto})  # the body's own defaults
    attributes.update({a.name: a for a in node.attribute})
    nodes = []
    for inner in body.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(inner)
        copy.name = prefix + (inner.name or inner.op_type)
        _rename(copy, rename, prefix)
        _bind_attributes(copy, attributes)
        nodes.append(copy)
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version for o in body.opset_import}
    return nodes, opsets


def _rename(node: Any, rename: dict[str, str], prefix: str) -> None:
    for i, name in enumerate(node.input):
        node.input[i] = rename.get(name, prefix + name)
    for i, name in enumerate(node.output):
        node.output[i] = rename.setdefault(name, prefix + name)
    for attr in node.attribute:  # subgraphs see the body's values by their names
        for graph in [attr.g] if attr.HasField("g") else list(attr.graphs):
            _rename_graph(graph, rename, prefix)


def _rename_graph(graph: Any, rename: dict[str, str], prefix: str) -> None:
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = rename.setdefault(value.name, prefix + value.name)
    for tensor in graph.initializer:
        tensor.name = rename.setdefault(tensor.name, prefix + tensor.name)
    for inner in graph.node:
        _rename(inner, rename, prefix)


def _bind_attributes(node: Any, attributes: Mapping[str, Any]) -> None:
    """Replace ``ref_attr_name`` references by the caller's values; drop unbound ones."""
    kept = []
    for attr in node.attribute:
        if attr.ref_attr_name:
            bound = attributes.get(attr.ref_attr_name)
            if bound is None:
                continue  # the caller left it unset: the inner op's default applies
            value = type(attr)()
            value.CopyFrom(bound)
            value.name = attr.name
            kept.append(value)
        else:
            kept.append(attr)
    del node.attribute[:]
    node.attribute.extend(kept)
