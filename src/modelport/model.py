"""Loading, checking and inspecting ONNX models, treating every file as untrusted input.

The onnx package has had several CVEs around external data (paths that escape the model's
folder), so :func:`load` validates every external-data reference before any byte of it is read,
and reads the data itself instead of delegating to ``onnx.load``.
"""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from modelport.errors import ModelLoadError, UnsafeModelError

if TYPE_CHECKING:
    import numpy as np
    import onnx

ModelSource = Union[str, os.PathLike[str], bytes, "onnx.ModelProto"]

# protobuf refuses messages of 2 GiB and more; larger models must keep their weights outside.
_PROTOBUF_LIMIT = 2**31


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: its name, ONNX element type and shape.

    ``shape`` holds an ``int`` for a fixed dimension, a ``str`` for a symbolic one
    (``dim_param``) and ``None`` for an unnamed unknown one; ``shape is None`` means the rank is
    unknown. ``elem_type`` is 0 for values that are not tensors (sequences, optionals, maps).
    """

    name: str
    elem_type: int
    shape: tuple[int | str | None, ...] | None
    kind: str = "tensor"

    @property
    def dtype_name(self) -> str:
        """The ONNX spelling of the element type, e.g. ``FLOAT`` or ``INT64``."""
        import onnx

        if self.kind != "tensor":
            return self.kind
        if self.elem_type not in onnx.TensorProto.DataType.values():
            return f"element type {self.elem_type}"
        return str(onnx.TensorProto.DataType.Name(self.elem_type))

    @property
    def dtype(self) -> np.dtype[Any] | None:
        """The numpy dtype for this element type, or ``None`` when there is none."""
        import onnx.helper

        if self.kind != "tensor" or self.elem_type == 0:
            return None
        try:
            return onnx.helper.tensor_dtype_to_np_dtype(self.elem_type)
        except (KeyError, ValueError) as exc:
            raise ModelLoadError(f"{self.name!r} has element type {self.elem_type}, which ONNX "
                                 f"does not define") from exc

    def shape_str(self) -> str:
        if self.shape is None:
            return "?"
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype_name,
                "shape": None if self.shape is None else list(self.shape)}


@dataclass
class ModelInfo:
    """What :func:`inspect` reports about a model."""

    ir_version: int
    opset_imports: dict[str, int]
    producer: str
    graph_name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    op_histogram: dict[str, int]
    node_count: int
    initializer_count: int
    initializer_bytes: int
    metadata: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ir_version": self.ir_version,
            "opset_imports": self.opset_imports,
            "producer": self.producer,
            "graph_name": self.graph_name,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
            "op_histogram": self.op_histogram,
            "node_count": self.node_count,
            "initializer_count": self.initializer_count,
            "initializer_bytes": self.initializer_bytes,
            "metadata": self.metadata,
        }


@dataclass
class CheckReport:
    """Findings of :func:`check`; ``ok`` is true when there are no errors."""

    findings: list[tuple[str, str]]  # (severity, message)

    @property
    def ok(self) -> bool:
        return not any(sev == "error" for sev, _ in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok,
                "findings": [{"severity": s, "message": m} for s, m in self.findings]}


# --------------------------------------------------------------------------------------------
# load


def load(source: ModelSource, *, base_dir: str | os.PathLike[str] | None = None,
         load_external_data: bool = True) -> onnx.ModelProto:
    """Load an ONNX model from a path, bytes, or an existing ``ModelProto``.

    Args:
        source: a path to a ``.onnx`` file, its serialized bytes, or a ``ModelProto``.
        base_dir: the folder external data is resolved against; defaults to the model file's
            folder. A model given as bytes with external data needs it.
        load_external_data: read external tensors into the model. When false they are only
            validated.

    Raises:
        ModelLoadError: the file is missing, truncated, or not an ONNX model.
        UnsafeModelError: external data points outside the model's folder (``..``, an absolute
            path, or a symlink that leads out).
    """
    import onnx

    if isinstance(source, onnx.ModelProto):
        model, where = source, "model"
    elif isinstance(source, bytes | bytearray | memoryview):
        model, where = _parse(bytes(source), "model bytes"), "model bytes"
    else:
        path = Path(os.fspath(source))
        model, where = _parse(_read_model_file(path), str(path)), str(path)
        base_dir = path.parent if base_dir is None else base_dir
    _check_structure(model, where)
    _check_raw_sizes(model, where)
    refs = list(_external_tensors(model))
    if refs:
        if base_dir is None:
            raise ModelLoadError(f"{where}: the model has external data; pass base_dir= to say "
                                 f"which folder holds it")
        resolved = [_resolve_external(t, Path(base_dir), where) for t in refs]
        if load_external_data:
            for ref in resolved:
                _read_external(ref)
    return model


def has_external_data(model: onnx.ModelProto) -> bool:
    """True when some tensor of ``model`` (a subgraph's included) keeps its bytes in a file."""
    return any(True for _ in _external_tensors(model))


def _read_model_file(path: Path) -> bytes:
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if not path.is_file():
        raise ModelLoadError(f"{path}: not a file")
    size = path.stat().st_size
    if size >= _PROTOBUF_LIMIT:
        raise ModelLoadError(f"{path}: {size} bytes is over protobuf's 2 GiB limit; a model this "
                             f"large must keep its weights in external data")
    return path.read_bytes()


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{where}: not an ONNX model, or a truncated one (protobuf says: "
                             f"{exc})") from exc
    return model


def _check_structure(model: onnx.ModelProto, where: str) -> None:
    # Arbitrary bytes (a text file, say) sometimes parse as a protobuf of unknown fields.
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise ModelLoadError(f"{where}: not an ONNX model (no ir_version, graph or opset_import; "
                             f"is it truncated or another kind of file?)")


def _check_raw_sizes(model: onnx.ModelProto, where: str) -> None:
    """Raw tensor bytes must be what the shape and type need: engines index past the end or
    fail deep inside otherwise."""
    for tensor in _all_tensors(model):
        if tensor.HasField("raw_data"):
            needed = _tensor_data_bytes(tensor)
            if needed is not None and needed != len(tensor.raw_data):
                raise ModelLoadError(f"{where}: tensor {tensor.name!r} holds "
                                     f"{len(tensor.raw_data)} bytes of data, but its shape "
                                     f"{list(tensor.dims)} needs {needed}")


def _walk_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and every subgraph (If / Loop / Scan bodies) nested in it."""
    import onnx

    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _walk_graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _walk_graphs(g)


def _all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in the model, wherever it sits: initializers and sparse ones, node
    attributes (dense and sparse), subgraphs, local functions and training information.

    Attribute fields are read whatever the attribute's declared type, since a hostile file may
    set both.
    """
    graphs = [model.graph]
    for info in model.training_info:
        graphs += [info.initialization, info.algorithm]
    for graph in graphs:
        yield from _graph_tensors(graph)
    for function in model.functions:
        yield from _node_tensors(function.node)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            sparse = [attr.sparse_tensor] if attr.HasField("sparse_tensor") else []
            for tensor in [*sparse, *attr.sparse_tensors]:
                yield from (tensor.values, tensor.indices)
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for graph in attr.graphs:
                yield from _graph_tensors(graph)


def _external_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    import onnx

    for tensor in _all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            yield tensor


@dataclass(frozen=True)
class _External:
    """A validated external-data reference: which file, where, and how many bytes."""

    tensor: onnx.TensorProto
    file: Path
    root: Path
    offset: int
    length: int
    what: str


def _resolve_external(tensor: onnx.TensorProto, base_dir: Path, where: str) -> _External:
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    what = f"{where}: tensor {tensor.name!r} has external data at {location!r}"
    if not location:
        raise UnsafeModelError(f"{what}: no location given")
    if "\0" in location or any(len(p.encode()) > 255 for p in location.split("/")):
        raise UnsafeModelError(f"{what}: not a usable file name")
    parts = location.replace("\\", "/").split("/")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in parts[0]:
        raise UnsafeModelError(f"{what}: absolute paths are refused; external data must lie "
                               f"inside the model's folder")
    if ".." in parts:
        raise UnsafeModelError(f"{what}: '..' is refused; external data must lie inside the "
                               f"model's folder")
    root = base_dir.resolve()
    file = (root / location).resolve()  # follows symlinks, so a link out of the folder shows
    if not file.is_relative_to(root):
        raise UnsafeModelError(f"{what}: it resolves to {file}, outside the model's folder "
                               f"{root} (a symlink?)")
    if not file.is_file():
        raise ModelLoadError(f"{what}: no such file in {root}")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError as exc:
        raise ModelLoadError(f"{what}: offset and length must be integers") from exc
    expected = _tensor_data_bytes(tensor)
    if expected is None:
        raise ModelLoadError(f"{what}: a tensor with a negative dimension or of this type "
                             f"(data_type {tensor.data_type}) cannot have external data")
    size = file.stat().st_size
    if length is None:
        length = size - offset
    if offset < 0 or length < 0 or offset + length > size:
        raise ModelLoadError(f"{what}: offset {offset} and length {length} fall outside the "
                             f"file's {size} bytes")
    if length != expected:
        raise ModelLoadError(f"{what}: {length} bytes, but its shape {list(tensor.dims)} needs "
                             f"{expected}")
    return _External(tensor, file, root, offset, length, what)


def _read_external(ref: _External) -> None:
    """Read the bytes of one reference through a descriptor that is checked once it is open.

    The path was checked before; between that check and the read, a file could be swapped for
    a symlink, or be a hard link to a file elsewhere. So the final component is opened without
    following links, and the open file itself must be a regular file with one link, inside the
    model's folder (where the platform can say), and as large as it was.
    """
    import onnx

    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(ref.file, flags)
    except OSError as exc:
        raise UnsafeModelError(f"{ref.what}: cannot be opened safely ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as fh:
        _check_opened(fh.fileno(), ref)
        fh.seek(ref.offset)
        data = fh.read(ref.length)
    if len(data) != ref.length:
        raise ModelLoadError(f"{ref.what}: the file shrank while it was read")
    ref.tensor.raw_data = data
    del ref.tensor.external_data[:]
    ref.tensor.data_location = onnx.TensorProto.DEFAULT


def _check_opened(fd: int, ref: _External) -> None:
    import stat

    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeModelError(f"{ref.what}: not a regular file")
    if info.st_nlink > 1:
        raise UnsafeModelError(f"{ref.what}: the file has {info.st_nlink} hard links, so it may "
                               f"be a file from outside the model's folder; copy it instead")
    real = Path(f"/proc/self/fd/{fd}")
    if real.is_symlink() and not Path(os.readlink(real)).is_relative_to(ref.root):
        raise UnsafeModelError(f"{ref.what}: the file opened is {os.readlink(real)}, outside "
                               f"the model's folder {ref.root}")
    if info.st_size < ref.offset + ref.length:
        raise ModelLoadError(f"{ref.what}: the file shrank while it was opened")


# --------------------------------------------------------------------------------------------
# signatures


def _value_spec(value: onnx.ValueInfoProto) -> TensorSpec:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorSpec(value.name, 0, None, kind=(kind or "unknown").removesuffix("_type"))
    ttype = value.type.tensor_type
    if not ttype.HasField("shape"):
        return TensorSpec(value.name, ttype.elem_type, None)
    dims: list[int | str | None] = []
    for dim in ttype.shape.dim:
        which = dim.WhichOneof("value")
        dims.append(dim.dim_value if which == "dim_value" else
                    dim.dim_param if which == "dim_param" else None)
    return TensorSpec(value.name, ttype.elem_type, tuple(dims))


def input_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    """The inputs a caller must feed: graph inputs that are not also initializers.

    Before IR version 4 initializers had to be listed as graph inputs too; those act as
    overridable defaults, not as required feeds.
    """
    initialized = {t.name for t in model.graph.initializer}
    return [_value_spec(v) for v in model.graph.input if v.name not in initialized]


def output_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    """The graph's outputs, in order."""
    return [_value_spec(v) for v in model.graph.output]


# --------------------------------------------------------------------------------------------
# check and inspect


def check(source: ModelSource) -> CheckReport:
    """Run the onnx checker and strict shape inference; return every finding.

    Strict shape inference catches type and rank conflicts that the checker alone accepts.
    """
    import onnx

    model = load(source)
    findings: list[tuple[str, str]] = []
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        findings.append(("error", f"checker: {_first_line(exc)}"))
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                          data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError) as exc:
        findings.append(("error", f"shape inference: {_first_line(exc)}"))
    for spec in input_specs(model) + output_specs(model):
        if spec.shape is None and spec.kind == "tensor":
            findings.append(("warning", f"{spec.name!r} has no shape; backends must guess"))
    return CheckReport(findings)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _tensor_data_bytes(tensor: onnx.TensorProto) -> int | None:
    """The bytes a tensor's shape and type need as raw data (None for strings and unknown
    types). Sub-byte types are packed; Python integers cannot overflow."""
    import numpy as np
    import onnx.helper

    if any(d < 0 for d in tensor.dims):
        return None
    count = math.prod(int(d) for d in tensor.dims)
    bits = _ELEMENT_BITS.get(tensor.data_type)
    if bits is None:
        try:
            bits = 8 * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            return None
        if tensor.data_type == onnx.TensorProto.STRING:
            return None
    return (count * bits + 7) // 8


# the packed sub-byte types: INT4, UINT4, FLOAT4E2M1, INT2, UINT2
_ELEMENT_BITS = {21: 4, 22: 4, 23: 4, 25: 2, 26: 2}


def _tensor_nbytes(tensor: onnx.TensorProto) -> int:
    import onnx

    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        info = {e.key: e.value for e in tensor.external_data}
        if "length" in info and info["length"].isdigit():
            return int(info["length"])
    if tensor.data_type in (0, onnx.TensorProto.STRING):
        return sum(len(s) for s in tensor.string_data)
    return max(_tensor_data_bytes(tensor) or 0, 0)


def inspect(source: ModelSource) -> ModelInfo:
    """Describe a model: versions, producer, signature, operator histogram, weights."""
    model = load(source, load_external_data=False)
    ops: collections.Counter[str] = collections.Counter()
    nodes = 0
    for graph in _walk_graphs(model.graph):
        for node in graph.node:
            nodes += 1
            ops[f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx")
                else node.op_type] += 1
    initializers = [t for g in _walk_graphs(model.graph) for t in g.initializer]
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    return ModelInfo(
        ir_version=model.ir_version,
        opset_imports={(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        producer=producer,
        graph_name=model.graph.name,
        inputs=input_specs(model),
        outputs=output_specs(model),
        op_histogram=dict(ops.most_common()),
        node_count=nodes,
        initializer_count=len(initializers),
        initializer_bytes=sum(_tensor_nbytes(t) for t in initializers),
        metadata={p.key: p.value for p in model.metadata_props},
    )
