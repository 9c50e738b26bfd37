"""The graph interpreter that every translating backend shares.

A model is *planned* once: every node is resolved to an implementation of the shared operator
library (or replaced by its function body), all unsupported nodes are collected into one error,
subgraphs (If / Loop / Scan bodies) are planned recursively, and nodes whose inputs are all
known constants are folded on numpy.

At run time values are of two kinds. *Host values* are numpy arrays: initializers, constants,
and everything computed only from them, including shapes (``Shape`` of a framework tensor is a
host value, since its shape is static while tracing). *Framework values* are the target's
tensors. A node whose inputs are all host values runs on numpy, so shape arithmetic never
reaches the framework; other nodes run with the framework's namespace and kernels, and inputs
an operator declares as host (``Reshape``'s shape, ``Slice``'s starts, ...) are brought back
to numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelport import ops  # noqa: F401 - registers the operator library
from modelport.errors import BackendError, UnsupportedOperatorError
from modelport.ops import registry
from modelport.ops.context import Framework, HostFallback, OpContext
from modelport.ops.functions import expand, function_body
from modelport.ops.host import numpy_framework

# Operators whose results change from run to run, or which have effects: never folded.
_GENERATORS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
               "Bernoulli", "Multinomial"}
_NOT_FOLDABLE = _GENERATORS | {"Dropout"}


@dataclass
class Step:
    node: Any
    opdef: registry.OpDef
    attributes: dict[str, Any]
    inputs: list[str]
    outputs: list[str]
    subgraphs: bool = False


@dataclass
class Unsupported:
    op: str
    version: int | None
    node: str
    why: str

    def __str__(self) -> str:
        version = f"-{self.version}" if self.version else ""
        return f"{self.op}{version} (node {self.node!r}{': ' + self.why if self.why else ''})"


@dataclass
class Plan:
    """A planned graph: steps in order, constants, inputs and outputs by name."""

    steps: list[Step]
    constants: dict[str, Any]
    inputs: list[str]
    outputs: list[str]
    parameters: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def draws_afresh(self) -> bool:
        """True when an unseeded random generator must draw anew on every call, which a
        compiled program (one trace, its draws frozen in) cannot do."""
        return any(step.node.op_type in _GENERATORS and step.attributes.get("seed") is None
                   for step in self.steps)

    def run(self, fw: Framework, feeds: Mapping[str, Any],
            outer: Mapping[str, Any] | None = None,
            trace: Callable[[Step, tuple[Any, ...]], None] | None = None) -> list[Any]:
        """Run the graph on ``feeds``; ``outer`` holds the enclosing scope of a subgraph."""
        values: dict[str, Any] = {**(outer or {}), **self.constants, **feeds}
        host_ctx = OpContext(numpy_framework(), values)
        native = host_ctx if fw.name == "numpy" else OpContext(fw, values)
        # ONNX arithmetic is IEEE (inf and nan are answers) and integer division by zero is the
        # model's business: numpy must not print warnings about either
        with np.errstate(all="ignore"):
            for step in self.steps:
                args = [values[name] if name else None for name in step.inputs]
                outs = _call(step, args, fw, host_ctx, native)
                for name, value in zip(step.outputs, outs, strict=False):
                    if name:
                        values[name] = value
                if trace is not None:
                    trace(step, outs)
        return [values[name] for name in self.outputs]


def is_host(value: Any) -> bool:
    if isinstance(value, np.ndarray | np.generic):
        return True
    if isinstance(value, list):
        return all(is_host(v) for v in value)
    return value is None or isinstance(value, dict)  # ZipMap's maps live on the host


def _to_native(fw: Framework, value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return fw.asarray(np.asarray(value))
    if isinstance(value, list):
        return [_to_native(fw, v) for v in value]
    return value


def _to_host(fw: Framework, value: Any) -> Any:
    if fw.is_native(value):
        return fw.to_host(value)
    if isinstance(value, list):
        return [_to_host(fw, v) for v in value]
    return value


def _call(step: Step, args: Sequence[Any], fw: Framework, host_ctx: OpContext,
          native_ctx: OpContext) -> tuple[Any, ...]:
    opdef = step.opdef
    # Subgraphs read the enclosing scope, which may hold framework values: run them natively.
    on_host = fw.name == "numpy" or (not step.subgraphs and all(is_host(a) for a in args))
    if not on_host:
        try:
            args = [_to_host(fw, a) if i in opdef.host else _to_native(fw, a)
                    for i, a in enumerate(args)]
        except HostFallback:
            on_host = True
            args = [_to_host(fw, a) for a in args]
    ctx = host_ctx if on_host else native_ctx
    ctx.node, ctx.n_outputs = step.node.name, len(step.outputs)
    try:
        result = opdef.fn(ctx, *args, **step.attributes)
    except HostFallback:
        if on_host:
            raise
        return _call(step, [_to_host(fw, a) for a in args], numpy_framework(), host_ctx,
                     host_ctx)
    except Exception as exc:
        # Frameworks leave some dtypes without kernels (torch: most uint16/32/64 arithmetic);
        # numpy computes them, in eager mode. Which errors say so is the framework's to tell.
        if not on_host and fw.lacks_kernel(exc):
            return _call(step, [_to_host(fw, a) for a in args], numpy_framework(), host_ctx,
                         host_ctx)
        if isinstance(exc, BackendError | NotImplementedError):
            raise BackendError(f"node {step.node.name!r} ({step.node.op_type}): {exc}") from exc
        raise
    outs = result if isinstance(result, tuple) else (result,)
    if on_host:
        outs = tuple(np.asarray(o) if isinstance(o, np.generic) else o for o in outs)
    return outs


# --------------------------------------------------------------------------------------------
# planning


def plan_model(model: Any, *, fold: bool = True, parameters: Iterable[str] = ()) -> Plan:
    """Plan a model; raise one error naming every unsupported node.

    ``parameters`` names initializers that must stay framework values (trainable weights):
    they are not folded into constants.
    """
    _check_order(model.graph)
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version for o in model.opset_import}
    types = _value_types(model)
    unsupported: list[Unsupported] = []
    plan = _plan_graph(model.graph, opsets, types, unsupported, fold=fold,
                       parameters=set(parameters))
    if unsupported:
        listed = "; ".join(str(u) for u in unsupported[:50])
        more = f"; and {len(unsupported) - 50} more" if len(unsupported) > 50 else ""
        kinds = sorted({u.op for u in unsupported})
        raise UnsupportedOperatorError(
            f"{len(unsupported)} node(s) cannot run here: {listed}{more}. Operators missing: "
            f"{', '.join(kinds)}. Run the model on a runtime backend (-b onnxruntime) or "
            f"convert it to another opset (onnx.version_converter)")
    return plan


def _check_order(graph: Any) -> None:
    """Every value a node of the main graph reads is a graph input, an initializer or the
    output of an earlier node, as the spec requires (subgraphs may also read outer values).

    Raises:
        BackendError: naming each node that reads a value computed later (a cycle, or nodes out
            of order) or by nothing.
    """
    known = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    known |= {s.values.name for s in graph.sparse_initializer} | {""}
    produced_by = {o: n for n in graph.node for o in n.output}
    problems = []
    for node in graph.node:
        for name in node.input:
            if name not in known:
                later = produced_by.get(name)
                problems.append(f"node {node.name!r} ({node.op_type}) reads {name!r}, which "
                                + ("nothing computes" if later is None else
                                   f"node {later.name!r} computes after it (a cycle, or "
                                   f"nodes out of order)"))
        known.update(node.output)
    known_outputs = [o.name for o in graph.output if o.name not in known]
    problems += [f"graph output {name!r} is computed by nothing" for name in known_outputs]
    if problems:
        raise BackendError(f"the graph is not valid: {'; '.join(problems[:10])}"
                           + (f"; and {len(problems) - 10} more" if len(problems) > 10 else ""))


def _value_types(model: Any) -> dict[str, Any]:
    """Types of every value shape inference can tell, for context-dependent functions."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(_without_weights(model), data_prop=False)
    except Exception:  # an invalid or exotic model: fall back to the declared types
        inferred = model
    types: dict[str, Any] = {}
    graph = inferred.graph
    for value in [*graph.input, *graph.output, *graph.value_info]:
        types[value.name] = value.type
    for tensor in graph.initializer:
        types[tensor.name] = onnx.helper.make_tensor_type_proto(tensor.data_type, tensor.dims)
    return types


def _without_weights(model: Any) -> Any:
    """The model with initializers turned into typed inputs: inference needs their types, not
    their bytes, and serialising 400 MB of weights for it is most of a BERT's prepare time."""
    import onnx

    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    graph = light.graph
    graph.node.extend(model.graph.node)
    graph.output.extend(model.graph.output)
    graph.value_info.extend(model.graph.value_info)
    declared = {v.name for v in model.graph.input}
    graph.input.extend(model.graph.input)
    graph.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims)
                       for t in model.graph.initializer if t.name not in declared)
    return light


def _plan_graph(graph: Any, opsets: dict[str, int], types: dict[str, Any],
                unsupported: list[Unsupported], *, fold: bool,
                parameters: set[str]) -> Plan:
    from onnx import numpy_helper

    constants: dict[str, Any] = {}
    params: dict[str, np.ndarray] = {}
    for tensor in graph.initializer:
        array = numpy_helper.to_array(tensor)
        (params if tensor.name in parameters else constants)[tensor.name] = array
    for sparse in graph.sparse_initializer:
        constants[sparse.values.name] = registry._sparse_to_dense(sparse)
    for value in graph.input:
        types.setdefault(value.name, value.type)
    steps: list[Step] = []
    for node in graph.node:
        _plan_node(node, opsets, types, steps, unsupported, fold=fold, parameters=parameters)
    inputs = [v.name for v in graph.input if v.name not in constants and v.name not in params]
    plan = Plan(steps, constants, inputs, [v.name for v in graph.output], params)
    if fold:
        _fold(plan)
    return plan


def _plan_node(node: Any, opsets: dict[str, int], types: dict[str, Any], steps: list[Step],
               unsupported: list[Unsupported], *, fold: bool, parameters: set[str]) -> None:
    domain = node.domain if node.domain != "ai.onnx" else ""
    if domain not in opsets:
        unsupported.append(Unsupported(node.op_type, None, node.name,
                                       f"domain {domain!r} is not imported by the model"))
        return
    opset = opsets[domain]
    opdef, schema = registry.lookup(node.op_type, domain, opset)
    if opdef is None:
        input_types = [types.get(n) for n in node.input]
        body = function_body(node, schema, opset, None if None in input_types
                             else input_types)
        if body is None and schema is not None and schema.has_context_dependent_function:
            # The body depends on input types shape inference could not tell: build it when
            # the inputs arrive, as the reference evaluator does.
            steps.append(Step(node, _deferred_function(node, schema, opset, opsets),
                              {}, list(node.input), list(node.output), True))
            return
        if body is None:
            version = schema.since_version if schema is not None else None
            why = ("" if schema is not None else
                   "a contrib operator not implemented yet" if domain in registry.CONTRIB_DOMAINS
                   else "no such operator in the ONNX spec")
            unsupported.append(Unsupported(_qualified(domain, node.op_type), version,
                                           node.name, why))
            return
        inner, inner_opsets = expand(node, body, schema)
        merged = {**opsets, **inner_opsets}
        for child in inner:
            _plan_node(child, merged, types, steps, unsupported, fold=fold,
                       parameters=parameters)
        return
    attributes = registry.attribute_values(node, schema)
    for name, value in list(attributes.items()):
        if name in opdef.raw_attributes:
            continue
        if _is_graph(value):
            attributes[name] = _plan_graph(value, opsets, dict(types), unsupported, fold=fold,
                                           parameters=parameters)
        elif isinstance(value, list) and value and all(_is_graph(v) for v in value):
            attributes[name] = [_plan_graph(v, opsets, dict(types), unsupported, fold=fold,
                                            parameters=parameters) for v in value]
    subgraphs = any(isinstance(v, Plan) or (isinstance(v, list) and v and isinstance(v[0], Plan))
                    for v in attributes.values())
    steps.append(Step(node, opdef, attributes, list(node.input), list(node.output), subgraphs))


def _deferred_function(node: Any, schema: Any, opset: int,
                       opsets: dict[str, int]) -> registry.OpDef:
    """An operator that plans its context-dependent body from the first inputs it sees."""
    import onnx

    cache: dict[tuple[Any, ...], Plan] = {}

    def run(ctx: OpContext, *args: Any) -> tuple[Any, ...]:
        key = tuple((ctx.fw.elem_type(a), tuple(a.shape)) if a is not None else None
                    for a in args)
        plan = cache.get(key)
        if plan is None:
            types = [onnx.helper.make_tensor_type_proto(k[0], k[1]) if k else onnx.TypeProto()
                     for k in key]
            body = function_body(node, schema, opset, types)
            if body is None:
                raise NotImplementedError(f"no function body for {node.op_type} with these "
                                          f"input types")
            inner, inner_opsets = expand(node, body, schema)
            unsupported: list[Unsupported] = []
            steps: list[Step] = []
            for child in inner:
                _plan_node(child, {**opsets, **inner_opsets}, {}, steps, unsupported,
                           fold=False, parameters=set())
            if unsupported:
                raise NotImplementedError(", ".join(str(u) for u in unsupported))
            plan = cache[key] = Plan(steps, {}, [], [o for o in node.output if o])
        outs = iter(plan.run(ctx.fw, {}, outer=ctx.scope))
        return tuple(next(outs) if name else None for name in node.output)

    return registry.OpDef(node.domain, node.op_type, (schema.since_version,), run)


def _is_graph(value: Any) -> bool:
    return type(value).__name__ == "GraphProto"


def _qualified(domain: str, op_type: str) -> str:
    return op_type if domain == "" else f"{domain}::{op_type}"


def _fold(plan: Plan) -> None:
    """Run, on numpy, every step whose inputs are all constants; keep the rest."""
    numpy_fw = numpy_framework()
    kept = []
    ctx = OpContext(numpy_fw, plan.constants)
    for step in plan.steps:
        foldable = (step.node.op_type not in _NOT_FOLDABLE and not step.subgraphs
                    and all(not n or n in plan.constants for n in step.inputs))
        if not foldable:
            kept.append(step)
            continue
        args = [plan.constants[n] if n else None for n in step.inputs]
        try:
            with np.errstate(all="ignore"):  # as when it runs: see Plan.run
                outs = _call(step, args, numpy_fw, ctx, ctx)
        except Exception:  # leave it to run time, where the error has its context
            kept.append(step)
            continue
        for name, value in zip(step.outputs, outs, strict=False):
            if name:
                plan.constants[name] = value
    plan.steps = kept
