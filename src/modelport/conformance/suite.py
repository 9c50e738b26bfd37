"""The ONNX backend test suite of the installed onnx package, as files on disk.

onnx ships the ``simple`` and ``pytorch-*`` kinds as data files, but since 1.17 generates the
``node`` kind in memory from ``onnx.backend.test.case`` with random inputs. modelport writes
those cases once into a cache (seeded, so every machine gets the same files) in onnx's own
on-disk layout, so that every backend is measured on exactly the same models and data. The
expected outputs are computed by numpy and ml_dtypes (ml_dtypes 0.7 changed what an
out-of-range cast to int4 gives), so their versions name the folder too:

    <cache>/onnx-backend-tests/onnx-<v>-numpy-<v>-ml_dtypes-<v>/node/<case>/model.onnx
                                                      /data.json   (rtol, atol, op_type)
                                                      /test_data_set_0/input_0.pb ...
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import ModelportError

KINDS = ("node", "simple", "pytorch-converted", "pytorch-operator")
DEFAULT_RTOL, DEFAULT_ATOL = 1e-3, 1e-7  # onnx's runner defaults
_COMPLETE = ".complete"


@dataclass(frozen=True)
class Case:
    """One test of the suite: a model and its data sets in ``path``."""

    name: str
    kind: str
    path: Path
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    op_type: str = ""  # the operator a node case tests; the kind for model cases


def cache_root() -> Path:
    """``$MODELPORT_CACHE``, else ``$XDG_CACHE_HOME/modelport``, else ``~/.cache/modelport``."""
    if "MODELPORT_CACHE" in os.environ:
        return Path(os.environ["MODELPORT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modelport"


def kind_dir(kind: str) -> Path:
    """The folder holding the cases of ``kind``, materialising node cases on first use."""
    import onnx

    if kind not in KINDS:
        raise ModelportError(f"unknown test kind {kind!r}; kinds: {', '.join(KINDS)}")
    if kind != "node":
        return Path(onnx.__file__).parent / "backend" / "test" / "data" / kind
    import ml_dtypes

    versions = f"onnx-{onnx.__version__}-numpy-{np.__version__}-ml_dtypes-{ml_dtypes.__version__}"
    folder = cache_root() / "onnx-backend-tests" / versions / "node"
    if not (folder / _COMPLETE).exists():
        materialise_node_cases(folder)
    return folder


def materialise_node_cases(folder: Path) -> None:
    """Write onnx's in-memory node cases to ``folder``.

    Each process writes into a private scratch folder and renames it into place, so a crash
    leaves no half and processes that start at once never remove what another installed: the
    first rename wins, the others find a complete folder and drop their own.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".node.", dir=folder.parent))
    try:
        cases = _generate_node_cases()
        base_ops = {c.name: _op_of(c.model) for c in cases if not _is_expanded(c.name)}
        for case in cases:
            op = base_ops.get(_base_name(case.name)) or _op_of(case.model)
            _write_case(scratch / case.name, case, op)
        (scratch / _COMPLETE).write_text("")
        try:
            os.rename(scratch, folder)
        except OSError:
            if not (folder / _COMPLETE).exists():  # an incomplete leftover: set it aside
                aside = Path(tempfile.mkdtemp(prefix=".stale.", dir=folder.parent))
                os.rename(folder, aside / "node")
                shutil.rmtree(aside, ignore_errors=True)
                os.rename(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _generate_node_cases() -> list[Any]:
    """onnx's node cases, with numpy's global generator seeded so their data is reproducible."""
    import warnings

    from onnx.backend.test.loader import load_node_model_tests

    state = np.random.get_state()
    np.random.seed(0)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # the generators overflow casts on purpose
            return list(load_node_model_tests())
    finally:
        np.random.set_state(state)


_EXPANDED = re.compile(r"_expanded(_ver\d+)?$")


def _is_expanded(name: str) -> bool:
    return bool(_EXPANDED.search(name))


def _base_name(name: str) -> str:
    return _EXPANDED.sub("", name)


def _op_of(model: Any) -> str:
    nodes = [n for n in model.graph.node if n.op_type != "Constant"] or list(model.graph.node)
    if not nodes:
        return "(none)"
    node = nodes[0]
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"


def _write_case(folder: Path, case: Any, op_type: str) -> None:
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(case.model.SerializeToString())
    (folder / "data.json").write_text(json.dumps(
        {"rtol": case.rtol, "atol": case.atol, "op_type": op_type}, sort_keys=True))
    graph = case.model.graph
    for i, (inputs, outputs) in enumerate(case.data_sets):
        data = folder / f"test_data_set_{i}"
        data.mkdir()
        for j, value in enumerate(inputs):
            (data / f"input_{j}.pb").write_bytes(_to_proto(value, graph.input[j]))
        for j, value in enumerate(outputs):
            (data / f"output_{j}.pb").write_bytes(_to_proto(value, graph.output[j]))


def _to_proto(value: Any, info: Any) -> bytes:
    """Serialise a test value the way ``onnx.backend.test.cmd_tools`` does."""
    import onnx
    from onnx import numpy_helper

    which = info.type.WhichOneof("value")
    if which == "map_type":
        proto: Any = numpy_helper.from_dict(value, info.name)
    elif which == "sequence_type":
        proto = numpy_helper.from_list(value, info.name)
    elif which == "optional_type":
        proto = numpy_helper.from_optional(value, info.name)
    elif isinstance(value, onnx.TensorProto):
        proto = value
    else:
        proto = numpy_helper.from_array(value, info.name)
    return bytes(proto.SerializeToString())


def list_cases(kinds: Sequence[str] = ("node",), pattern: str | None = None) -> list[Case]:
    """The cases of ``kinds`` whose name matches the regular expression ``pattern``."""
    try:
        regex = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise ModelportError(f"-k {pattern!r} is not a regular expression: {exc}") from exc
    cases = []
    for kind in kinds:
        folder = kind_dir(kind)
        for path in sorted(p for p in folder.iterdir() if (p / "model.onnx").is_file()):
            if regex is None or regex.search(path.name):
                cases.append(_case(path, kind))
    return cases


def _case(path: Path, kind: str) -> Case:
    meta: dict[str, Any] = {}
    if (path / "data.json").is_file():
        meta = json.loads((path / "data.json").read_text())
    return Case(path.name, kind, path, float(meta.get("rtol", DEFAULT_RTOL)),
                float(meta.get("atol", DEFAULT_ATOL)), str(meta.get("op_type") or kind))


def load_data_sets(case: Case, model: Any) -> Iterable[tuple[list[Any], list[Any]]]:
    """Each data set of a case as (inputs, expected outputs), typed by the model's graph."""
    for data in sorted(case.path.glob("test_data_set_*")):
        inputs = [_from_proto(p.read_bytes(), model.graph.input[i].type)
                  for i, p in enumerate(_numbered(data, "input"))]
        outputs = [_from_proto(p.read_bytes(), model.graph.output[i].type)
                   for i, p in enumerate(_numbered(data, "output"))]
        yield inputs, outputs


def _numbered(folder: Path, stem: str) -> list[Path]:
    return sorted(folder.glob(f"{stem}_*.pb"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))


class UnsupportedTestData(ModelportError):
    """The case's data uses a type modelport cannot load (maps, sparse tensors)."""


def _from_proto(data: bytes, type_proto: Any) -> Any:
    import onnx
    from onnx import numpy_helper

    which = type_proto.WhichOneof("value")
    if which == "tensor_type":
        tensor = onnx.TensorProto()
        tensor.ParseFromString(data)
        return numpy_helper.to_array(tensor)
    if which == "sequence_type":
        sequence = onnx.SequenceProto()
        sequence.ParseFromString(data)
        return numpy_helper.to_list(sequence)
    if which == "optional_type":
        optional = onnx.OptionalProto()
        optional.ParseFromString(data)
        return numpy_helper.to_optional(optional)
    raise UnsupportedTestData(f"test data of type {which} is not supported")
