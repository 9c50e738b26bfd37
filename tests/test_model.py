"""Loading untrusted models: external data stays in the model's folder, bad files fail clearly."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

import modelport
from conftest import W, mlp_expected, mlp_model
from modelport.errors import ModelLoadError, UnsafeModelError

# Every file the process opens while `opened` is being recorded (a real audit hook, so the
# tests see what the loader actually touches, not what a mock claims).
opened: list[str] | None = None


def _audit(event: str, args: tuple) -> None:  # type: ignore[type-arg]
    if opened is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def with_external_w(location: str) -> onnx.ModelProto:
    """The MLP with its W initializer stored externally at ``location``."""
    model = mlp_model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(W.nbytes))):
        w.external_data.add(key=key, value=value)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


@contextlib.contextmanager
def recording_opens() -> Iterator[list[str]]:
    """Record the paths of every file opened inside the block."""
    global opened
    opened = []
    try:
        yield opened
    finally:
        opened = None


def test_external_data_inside_the_folder_loads_and_runs(tmp_path: Path) -> None:
    (tmp_path / "m" / "weights").mkdir(parents=True)
    (tmp_path / "m" / "weights" / "w.bin").write_bytes(W.tobytes())
    path = save(with_external_w("weights/w.bin"), tmp_path / "m" / "model.onnx")
    x = np.ones((2, 4), np.float32)
    out = modelport.get_backend("onnxruntime").prepare(path).run({"x": x})["y"]
    np.testing.assert_allclose(out, mlp_expected(x), rtol=1e-6)


@pytest.mark.parametrize("location", ["../secret.bin", "weights/../../secret.bin",
                                      "..\\secret.bin"])
def test_external_data_with_dotdot_is_refused_unread(tmp_path: Path, location: str) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(W.tobytes())
    path = save(with_external_w(location), tmp_path / "m" / "model.onnx")
    with recording_opens() as seen, pytest.raises(UnsafeModelError, match=r"'\.\.' is refused"):
        modelport.load(path)
    assert seen and not any("secret" in p for p in seen)  # the model was read, not the secret


def test_external_data_at_an_absolute_path_is_refused_unread(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(W.tobytes())
    path = save(with_external_w(str(secret)), tmp_path / "m" / "model.onnx")
    with recording_opens() as seen, pytest.raises(UnsafeModelError, match="absolute paths"):
        modelport.load(path)
    assert seen and not any("secret" in p for p in seen)


def test_external_data_through_a_symlink_out_of_the_folder_is_refused_unread(
        tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(W.tobytes())
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").symlink_to(secret)
    path = save(with_external_w("w.bin"), folder / "model.onnx")
    with recording_opens() as seen, pytest.raises(UnsafeModelError, match="outside the model"):
        modelport.load(path)
    assert seen and not any(p.endswith(("secret.bin", "w.bin")) for p in seen)


def test_external_data_past_the_end_of_its_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(W.tobytes()[:8])
    path = save(with_external_w("w.bin"), tmp_path / "model.onnx")
    with pytest.raises(ModelLoadError, match="fall outside the file"):
        modelport.load(path)


def test_a_truncated_model_gives_a_clear_error(mlp_path: Path) -> None:
    data = mlp_path.read_bytes()
    mlp_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        modelport.load(mlp_path)


def test_a_text_file_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("these are my notes, not a model\n")
    with pytest.raises(ModelLoadError, match=r"not .*ONNX model"):
        modelport.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file"):
        modelport.load(tmp_path / "nope.onnx")


def test_load_from_bytes_and_proto(mlp_path: Path) -> None:
    from_bytes = modelport.load(mlp_path.read_bytes())
    from_proto = modelport.load(from_bytes)
    assert from_proto is from_bytes
    assert [n.op_type for n in from_bytes.graph.node] == ["Gemm", "Relu"]


def test_inspect_reports_signature_ops_and_weights(mlp_path: Path) -> None:
    info = modelport.inspect(mlp_path)
    assert info.ir_version == 10
    assert info.opset_imports == {"ai.onnx": 17}
    assert info.producer == "modelport-tests"
    assert [(s.name, s.dtype_name, s.shape) for s in info.inputs] == [
        ("x", "FLOAT", ("batch", 4))]
    assert [(s.name, s.shape) for s in info.outputs] == [("y", ("batch", 3))]
    assert info.op_histogram == {"Gemm": 1, "Relu": 1}
    assert info.initializer_count == 2
    assert info.initializer_bytes == (4 * 3 + 3) * 4


def test_check_passes_a_good_model_and_reports_a_broken_one(tmp_path: Path,
                                                            mlp_path: Path) -> None:
    assert modelport.check(mlp_path).ok
    broken = mlp_model()
    broken.graph.node[1].input[0] = "nowhere"  # Relu reads a value nothing produces
    report = modelport.check(save(broken, tmp_path / "broken.onnx"))
    assert not report.ok
    assert any("nowhere" in message for _, message in report.findings)


def test_inputs_of_old_ir_models_exclude_initializers() -> None:
    model = mlp_model(ir_version=3, opset=8)
    model.graph.input.extend([onnx.helper.make_tensor_value_info("W", 1, [4, 3])])
    specs = modelport.get_backend("reference").prepare(model).inputs
    assert [s.name for s in specs] == ["x"]
