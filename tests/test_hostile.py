"""Hostile files: external data hidden where loaders forget to look, links and races, sizes that
lie, and names that speak to the terminal. Each case is one line of error, nothing read or
written where it should not be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from conftest import W, mlp_model
from modelport.errors import ModelLoadError, UnsafeModelError
from test_model import recording_opens, save, with_external_w

SECRET = np.arange(4, dtype=np.float32) + 1000  # what a planted file outside the folder holds


def external(tensor: TensorProto, location: str, length: int | None = None) -> TensorProto:
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    if length is not None:
        tensor.external_data.add(key="length", value=str(length))
    return tensor


def sparse_constant_model(location: str) -> onnx.ModelProto:
    """y = x + Constant(sparse_value=...), the sparse values stored at ``location``."""
    values = external(numpy_helper.from_array(np.ones(2, np.float32), "v"), location, 8)
    indices = numpy_helper.from_array(np.array([0, 3], np.int64), "i")
    sparse = helper.make_sparse_tensor(values, indices, [4])
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], sparse_value=sparse),
         helper.make_node("Add", ["x", "c"], ["y"])], "sparse",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def function_constant_model(location: str) -> onnx.ModelProto:
    """y = f(x), a local function whose body holds a Constant stored at ``location``."""
    constant = external(numpy_helper.from_array(np.ones(4, np.float32), "k"), location, 16)
    body = [helper.make_node("Constant", [], ["k"], value=constant),
            helper.make_node("Add", ["a", "k"], ["b"])]
    function = helper.make_function("local", "f", ["a"], ["b"], body,
                                    [helper.make_opsetid("", 17)])
    graph = helper.make_graph(
        [helper.make_node("f", ["x"], ["y"], domain="local")], "function",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    return helper.make_model(graph, functions=[function], opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])


def training_info_model(location: str) -> onnx.ModelProto:
    """The MLP with a training-info initialization graph whose initializer is external."""
    model = mlp_model()
    init = helper.make_graph([], "init", [], [], [external(
        numpy_helper.from_array(np.ones(4, np.float32), "t"), location, 16)])
    model.training_info.add().initialization.CopyFrom(init)
    return model


HIDING_PLACES = {"sparse_value": sparse_constant_model, "function": function_constant_model,
                 "training_info": training_info_model}


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A home folder holding a key file, and a model folder beside it."""
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    (tmp_path / "home" / ".ssh" / "id_ed25519").write_bytes(SECRET.tobytes())
    (tmp_path / "model").mkdir()
    return tmp_path


@pytest.mark.parametrize("place", HIDING_PLACES)
def test_external_data_is_checked_wherever_a_tensor_sits(planted: Path, place: str) -> None:
    path = save(HIDING_PLACES[place]("../home/.ssh/id_ed25519"), planted / "model" / "m.onnx")
    with recording_opens() as seen, pytest.raises(UnsafeModelError, match=r"'\.\.' is refused"):
        modelport.load(path)
    assert seen and not any("id_ed25519" in p for p in seen)


@pytest.mark.parametrize("place", HIDING_PLACES)
def test_a_location_is_never_resolved_against_the_current_folder(planted: Path,
                                                                  place: str) -> None:
    """Run from the home folder, a location '.ssh/id_ed25519' must mean the model's folder."""
    path = save(HIDING_PLACES[place](".ssh/id_ed25519"), planted / "model" / "m.onnx")
    out = planted / "home" / "o.npz"
    for command in (["run", path, "-b", "numpy", "--save", out], ["check", path]):
        result = subprocess.run([sys.executable, "-m", "modelport", *map(str, command)],
                                capture_output=True, text=True, timeout=120,
                                cwd=planted / "home")
        assert result.returncode == 1, result.stdout
        assert result.stderr.startswith("modelport: error: ") and "no such file" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_sparse_constant_data_inside_the_folder_is_read_from_there(tmp_path: Path) -> None:
    (tmp_path / "v.bin").write_bytes(np.array([2, 5], np.float32).tobytes())
    path = save(sparse_constant_model("v.bin"), tmp_path / "m.onnx")
    x = np.zeros(4, np.float32)
    for backend in ("numpy", "onnxruntime"):
        y = modelport.get_backend(backend).prepare(path).run({"x": x})["y"]
        np.testing.assert_array_equal(y, [2, 0, 0, 5])


def test_a_hard_link_to_a_file_outside_is_refused(planted: Path) -> None:
    (planted / "home" / "weights").write_bytes(W.tobytes())
    os.link(planted / "home" / "weights", planted / "model" / "w.bin")
    path = save(with_external_w("w.bin"), planted / "model" / "m.onnx")
    with pytest.raises(UnsafeModelError, match="2 hard links"):
        modelport.load(path)


def test_a_file_swapped_for_a_symlink_after_the_check_is_not_read(planted: Path) -> None:
    from modelport.model import _read_external, _resolve_external

    model = with_external_w("w.bin")
    (planted / "model" / "w.bin").write_bytes(W.tobytes())
    ref = _resolve_external(model.graph.initializer[0], planted / "model", "m.onnx")
    (planted / "model" / "w.bin").unlink()  # the race: swapped between check and read
    (planted / "model" / "w.bin").symlink_to(planted / "home" / ".ssh" / "id_ed25519")
    with pytest.raises(UnsafeModelError, match="cannot be opened safely"):
        _read_external(ref)
    assert model.graph.initializer[0].data_location == TensorProto.EXTERNAL


def test_a_length_that_does_not_fit_the_shape_is_refused_before_reading(tmp_path: Path) -> None:
    with open(tmp_path / "big.bin", "wb") as fh:
        fh.truncate(3 * 2**30)  # 3 GB, sparse on disk: a read of it would take 3 GB of memory
    model = with_external_w("big.bin")
    del model.graph.initializer[0].external_data[2]  # no length: "the rest of the file"
    path = save(model, tmp_path / "m.onnx")
    with pytest.raises(ModelLoadError, match=r"3221225472 bytes, but its shape \[4, 3\] needs 48"):
        modelport.load(path)


def test_terminal_escapes_in_names_are_printed_as_text(tmp_path: Path) -> None:
    model = mlp_model()
    model.graph.node[1].input[0] = "nowhere"
    model.graph.node[1].name = "\x1b[2J\x1b[1;32mPASSED\x1b[0m"
    model.producer_name = "\x1b]0;title\x07"
    onnx.save(model, tmp_path / "m.onnx")
    for command in ("check", "inspect"):
        result = subprocess.run([sys.executable, "-m", "modelport", command,
                                 str(tmp_path / "m.onnx")], capture_output=True, text=True,
                                timeout=120)
        assert "\x1b" not in result.stdout + result.stderr
    assert result.returncode == 0 and "\\x1b]0;title\\x07" in result.stdout
