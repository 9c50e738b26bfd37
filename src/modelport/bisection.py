"""Bisect: the first node where two backends part ways, and a reproducer for it.

Both backends run the model with every intermediate value exposed: runtime backends through
a copy of the model whose graph outputs include every node output; translating backends from
the interpreter's trace. Nodes are visited in topological order and each output is compared
with ``numpy.isclose`` semantics. The first node whose outputs disagree while its inputs agree
is the culprit. When its inputs were already close to the tolerance, the error grew along the
way rather than at one operator, and the report says so (``verdict == "gradual"``) with the
per-node error curve. Nodes inside subgraphs are not exposed: divergence there is pinned to the
enclosing If / Loop / Scan.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelport.comparison import OutputComparison, compare_arrays
from modelport.errors import ModelportError
from modelport.model import ModelSource, input_specs, load

# Inputs this close to the tolerance (a fraction of it) already carried the divergence.
GRADUAL = 0.5


@dataclass
class NodeErrors:
    """One node's outputs compared: ``ratio`` is the largest |a - b| / (atol + rtol * |b|)."""

    index: int
    name: str
    op_type: str
    ratio: float
    outputs: list[OutputComparison]


@dataclass
class BisectReport:
    backends: tuple[str, str]
    atol: float
    rtol: float
    verdict: str  # "agree", "node" (one culprit) or "gradual"
    culprit: dict[str, Any] | None = None
    curve: list[NodeErrors] = field(default_factory=list)
    repro: str | None = None
    # The culprit run alone on both backends with the first one's captured inputs: whether
    # it still disagrees, or only inside the graph (a fused kernel, another precision).
    isolated_agrees: bool | None = None
    uncompared: list[str] = field(default_factory=list)  # values one backend did not expose

    @property
    def passed(self) -> bool:
        return self.verdict == "agree"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data


def capture(backend: str, model: Any, feeds: Mapping[str, np.ndarray],
            ref: str | None = None) -> dict[str, Any]:
    """Every value a backend computes for ``feeds``, by name (graph inputs included).

    ``ref`` rebuilds, in a worker process, a backend the parent registered in code.
    """
    from onnx import numpy_helper

    from modelport.backends import backend_in_worker

    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    session = backend_in_worker(backend, ref).prepare(model)
    trace = getattr(session, "run_traced", None)
    if trace is not None:
        values = trace(feeds)
    else:
        values = session.backend.prepare(expose_all(model)).run(feeds)
    return {**weights, **feeds, **values}


def expose_all(model: Any) -> Any:
    """A copy of ``model`` whose graph outputs are every top-level node output with a type."""
    import onnx

    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # an invalid model: expose what is declared
        inferred = model
    typed = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
    present = {o.name for o in exposed.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in present and name in typed:
                exposed.graph.output.append(typed[name])
                present.add(name)
    return exposed


def _ratio(comparison: OutputComparison, actual: Any, expected: Any, atol: float,
           rtol: float) -> float:
    """How many tolerances apart the values are (inf for shape/dtype/NaN disagreements)."""
    if not comparison.shape_match or comparison.nan_mismatch or comparison.inf_mismatch:
        return float("inf")
    a = np.asarray(actual, dtype=np.float64) if np.asarray(actual).dtype.kind in "fiub" \
        else None
    if a is None:
        return 0.0 if comparison.passed else float("inf")
    e = np.asarray(expected, dtype=np.float64)
    finite = np.isfinite(a) & np.isfinite(e)
    if not finite.any():
        return 0.0
    limit = atol + rtol * np.abs(e[finite])
    diff = np.abs(a[finite] - e[finite])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(limit > 0, diff / limit, np.where(diff > 0, np.inf, 0.0))
    return float(ratios.max(initial=0.0))


def bisect(model: ModelSource, backends: Sequence[str], *,
           inputs: Mapping[str, np.ndarray] | None = None, dims: Mapping[str, int] | None = None,
           seed: int = 0, atol: float = 1e-5, rtol: float = 1e-4,
           save_repro: str | os.PathLike[str] | None = None, isolate: bool = False,
           timeout: float | None = None, memory_limit_mb: float | None = None) -> BisectReport:
    """Find the first node where ``backends[0]`` and ``backends[1]`` disagree.

    Args:
        model: the ONNX model.
        backends: two backend names; the first is the reference for relative errors.
        inputs: feeds; generated from the signature (``dims``, ``seed``) when not given.
        atol, rtol: the tolerance that counts as agreement.
        save_repro: a folder to write the culprit node as a standalone model with its
            captured inputs and both backends' outputs (see :func:`write_repro`).
        isolate, timeout, memory_limit_mb: capture each backend's values in a worker process
            of its own, stopped by a native crash, the time or the memory limit (see
            :func:`modelport.workers.call_isolated`).
    """
    from modelport.backends import backend_ref, check_backends
    from modelport.inputs import generate_inputs
    from modelport.workers import call_isolated

    if len(backends) != 2:
        raise ModelportError(f"bisect compares exactly two backends, got {len(backends)}")
    check_backends(backends)
    if save_repro is not None:
        check_repro_folder(save_repro, backends, [model] if isinstance(model, str | os.PathLike)
                           else [])
    proto = load(model)
    feeds = dict(inputs) if inputs is not None else generate_inputs(input_specs(proto),
                                                                      dims=dims, seed=seed)
    first, second = backends

    def values_of(name: str) -> dict[str, Any]:
        if not isolate:
            return capture(name, proto, feeds)
        return call_isolated(capture, name, proto, feeds, backend_ref(name), timeout=timeout,
                             memory_limit_mb=memory_limit_mb, what=f"backend {name!r}")

    expected, actual = values_of(first), values_of(second)
    report = BisectReport((first, second), atol, rtol, "agree")
    ratios: dict[str, float] = {}
    for index, node in enumerate(proto.graph.node):
        comparisons, worst = [], 0.0
        for name in node.output:
            if not name:
                continue
            if name not in expected or name not in actual:
                report.uncompared.append(name)
                continue
            comparison = compare_arrays(name, actual[name], expected[name], atol=atol, rtol=rtol)
            ratios[name] = _ratio(comparison, actual[name], expected[name], atol, rtol)
            worst = max(worst, ratios[name])
            comparisons.append(comparison)
        if not comparisons:
            continue
        report.curve.append(NodeErrors(index, node.name, node.op_type, worst, comparisons))
        if report.culprit is None and not all(c.passed for c in comparisons):
            inputs_ratio = max((ratios.get(n, 0.0) for n in node.input if n), default=0.0)
            report.verdict = "gradual" if inputs_ratio >= GRADUAL else "node"
            report.culprit = _describe(node, expected, actual, atol, rtol, inputs_ratio)
            report.isolated_agrees = _isolated_agrees(proto, node, expected, (first, second),
                                                      atol, rtol)
            if save_repro is not None:
                report.repro = str(write_repro(save_repro, proto, node, expected, actual,
                                               (first, second)))
    return report


def _describe(node: Any, expected: Mapping[str, Any], actual: Mapping[str, Any], atol: float,
              rtol: float, inputs_ratio: float) -> dict[str, Any]:
    from modelport.ops.registry import attribute_value

    def stats(names: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for name in names:
            if name and name in expected and name in actual:
                c = compare_arrays(name, actual[name], expected[name], atol=atol, rtol=rtol)
                out.append({"name": name, "shape": list(np.shape(expected[name])),
                            "dtype": str(np.asarray(expected[name]).dtype),
                            "max_abs_error": c.max_abs_error, "max_rel_error": c.max_rel_error,
                            "agrees": c.passed})
        return out

    attributes = {}
    for attr in node.attribute:
        value = attribute_value(attr)
        attributes[attr.name] = value.tolist() if isinstance(value, np.ndarray) else (
            "<graph>" if type(value).__name__ == "GraphProto" else value)
    return {"name": node.name, "op_type": node.op_type, "domain": node.domain or "ai.onnx",
            "attributes": attributes, "inputs": stats(list(node.input)),
            "outputs": stats(list(node.output)), "inputs_tolerance_ratio": inputs_ratio}


def node_model(model: Any, node: Any, values: Mapping[str, Any]) -> Any:
    """``node`` alone as a model: its inputs (every one, initializers too) become graph
    inputs typed from ``values``, which must also hold its outputs."""
    from onnx import helper

    def info(name: str) -> Any:
        value = np.asarray(values[name])
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype),
                                             list(value.shape))

    single = helper.make_graph([node], f"repro_{node.name or node.op_type}",
                               [info(n) for n in node.input if n],
                               [info(n) for n in node.output if n])
    repro = helper.make_model(single, opset_imports=list(model.opset_import),
                              producer_name="modelport bisect")
    repro.ir_version = model.ir_version
    return repro


def _isolated_agrees(model: Any, node: Any, expected: Mapping[str, Any],
                     backends: tuple[str, str], atol: float, rtol: float) -> bool | None:
    from modelport.comparison import compare

    if any(attr.type in (5, 10) for attr in node.attribute):  # GRAPH(S): reads outer scope
        return None
    try:
        report = compare(node_model(model, node, expected), list(backends),
                         inputs={n: np.asarray(expected[n]) for n in node.input if n},
                         atol=atol, rtol=rtol)
    except ModelportError:
        return None
    return report.passed


def repro_files(folder: str | os.PathLike[str], backends: Sequence[str]) -> list[Path]:
    """The files :func:`write_repro` writes into ``folder`` (besides onnx's test layout)."""
    out = Path(folder)
    return [out / "model.onnx", out / "inputs.npz", *(out / f"outputs_{b}.npz" for b in backends)]


def check_repro_folder(folder: str | os.PathLike[str], backends: Sequence[str],
                       inputs: Sequence[str | os.PathLike[str]]) -> None:
    """Refuse a reproducer folder whose files would replace one of the command's inputs."""
    from modelport.io import check_output_path

    for path in repro_files(folder, backends):
        check_output_path(path, inputs=tuple(inputs))


def write_repro(folder: str | os.PathLike[str], model: Any, node: Any,
                expected: Mapping[str, Any], actual: Mapping[str, Any],
                backends: tuple[str, str]) -> Path:
    """Write ``node`` alone as ``model.onnx`` with its captured inputs.

    The folder gets ``inputs.npz`` (for ``modelport compare model.onnx -b A -b B --inputs
    inputs.npz``), ``outputs_<backend>.npz`` for both backends, and onnx's own test layout
    (``test_data_set_0/input_*.pb``, ``output_*.pb`` from the first backend).
    """
    from onnx import numpy_helper

    from modelport.io import save_npz, write_bytes

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in node.input if n]
    values = {n: np.asarray(expected[n]) for n in names}
    outputs = [n for n in node.output if n]
    write_bytes(out / "model.onnx", node_model(model, node, expected).SerializeToString())
    save_npz(out / "inputs.npz", values)
    for backend, captured in zip(backends, (expected, actual), strict=True):
        save_npz(out / f"outputs_{backend}.npz", {n: np.asarray(captured[n]) for n in outputs})
    data = out / "test_data_set_0"
    data.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        write_bytes(data / f"input_{i}.pb",
                    numpy_helper.from_array(values[name], name).SerializeToString())
    for i, name in enumerate(outputs):
        write_bytes(data / f"output_{i}.pb", numpy_helper.from_array(
            np.asarray(expected[name]), name).SerializeToString())
    return out


def plot_curve(report: BisectReport, path: str | os.PathLike[str]) -> None:
    """Draw each node's error, in tolerances, along the graph."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from modelport.io import atomic_path

    xs = [e.index for e in report.curve]
    ys = [min(e.ratio, 1e12) if np.isfinite(e.ratio) else 1e12 for e in report.curve]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(xs, [max(y, 1e-12) for y in ys], marker=".", linewidth=1)
    ax.axhline(1.0, color="red", linestyle="--", linewidth=1, label="tolerance")
    if report.culprit is not None:
        hit = next(e for e in report.curve if e.name == report.culprit["name"])
        ax.annotate(f"{hit.op_type} {hit.name}", (hit.index, max(hit.ratio, 1e-12)))
    ax.set_yscale("log")
    ax.set_xlabel("node (topological order)")
    ax.set_ylabel("|a - b| / (atol + rtol |b|)")
    ax.set_title(f"{report.backends[1]} against {report.backends[0]}")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(os.fspath(path))[1].lstrip(".") or "png")
    plt.close(fig)
