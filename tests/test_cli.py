"""The command line: every bad input is one line on stderr and exit code 1, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import W, mlp_expected, mlp_model
from test_model import with_external_w


def modelport_cli(*args: object) -> subprocess.CompletedProcess[str]:
    """The real entry point, in a fresh process, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "modelport", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("modelport: error: ")
    assert "Traceback" not in result.stderr and result.stdout == ""
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_bytes(W.tobytes())
    return path


def hostile_model(tmp_path: Path, location: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(with_external_w(location).SerializeToString())
    return path


def test_external_data_at_dotdot(tmp_path: Path, secret: Path) -> None:
    assert_one_line_error(modelport_cli("run", hostile_model(tmp_path, "../secret")),
                          "'..' is refused")


def test_external_data_at_an_absolute_path(tmp_path: Path, secret: Path) -> None:
    assert_one_line_error(modelport_cli("inspect", hostile_model(tmp_path, str(secret))),
                          "absolute paths are refused")


def test_external_data_through_a_symlink(tmp_path: Path, secret: Path) -> None:
    path = hostile_model(tmp_path, "weights.bin")
    (path.parent / "weights.bin").symlink_to(secret)
    assert_one_line_error(modelport_cli("compare", path, "-b", "onnxruntime", "-b", "reference"),
                          "outside the model's folder")


def test_a_truncated_model(tmp_path: Path) -> None:
    data = mlp_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    assert_one_line_error(modelport_cli("check", path), "truncated")


def test_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "readme.onnx"
    path.write_text("# not a model\njust some text\n")
    assert_one_line_error(modelport_cli("bench", path, "-b", "onnxruntime"), "not an ONNX model")


@pytest.mark.parametrize(("feed", "needle"), [
    ({"input": np.ones((2, 4), np.float32)}, "unknown input(s) 'input'"),
    ({"x": np.ones((2, 4), np.float64)}, "dtype float64, expected FLOAT"),
    ({"x": np.ones((2, 5), np.float32)}, "shape [2, 5], expected [batch, 4]"),
])
def test_a_bad_feed(tmp_path: Path, mlp_path: Path, feed: dict[str, np.ndarray],
                    needle: str) -> None:
    np.savez(tmp_path / "feeds.npz", **feed)
    assert_one_line_error(modelport_cli("run", mlp_path, "--inputs", tmp_path / "feeds.npz"),
                          needle)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "readme.onnx"
    path.write_text("text")
    result = modelport_cli("--debug", "inspect", path)
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_inspect_and_check_as_json(cli, mlp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("inspect", mlp_path, "--format", "json")
    info = json.loads(out)
    assert code == 0 and info["inputs"] == [{"name": "x", "dtype": "FLOAT",
                                             "shape": ["batch", 4]}]
    code, out, _ = cli("check", mlp_path, "--format", "json")
    assert code == 0 and json.loads(out) == {"ok": True, "findings": []}


def test_human_output_ends_with_a_verdict_and_shows_symbolic_shapes(cli, mlp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("inspect", mlp_path)
    assert code == 0 and "[batch, 4]" in out
    code, out, _ = cli("check", mlp_path)
    assert code == 0 and out.strip().splitlines()[-1].startswith("PASSED")


def test_check_of_a_broken_model_fails(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broken = mlp_model()
    broken.graph.node[1].input[0] = "nowhere"
    onnx.save(broken, tmp_path / "broken.onnx")
    code, out, _ = cli("check", tmp_path / "broken.onnx")
    assert code == 1 and out.strip().splitlines()[-1].startswith("FAILED")


def test_run_saves_outputs_and_feeds_that_read_back(cli, mlp_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("run", mlp_path, "-b", "reference", "--dim", "batch=3",
                       "--save", tmp_path / "out.npz", "--save-inputs", tmp_path / "in.npz",
                       "--format", "json")
    assert code == 0 and json.loads(out)["outputs"][0]["shape"] == [3, 3]
    with np.load(tmp_path / "out.npz") as saved, np.load(tmp_path / "in.npz") as feeds:
        assert saved.files == ["y"] and feeds.files == ["x"]
        assert np.allclose(saved["y"], mlp_expected(feeds["x"]), atol=1e-6)
        y = saved["y"]
    code, _, _ = cli("run", mlp_path, "-b", "numpy", "--inputs", tmp_path / "in.npz",
                     "--save", tmp_path / "again.npz")
    with np.load(tmp_path / "again.npz") as again:
        assert code == 0 and np.allclose(again["y"], y, atol=1e-6)
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "out.npz").stat().st_mode & 0o777 == 0o666 & ~mask


def test_save_keeps_outputs_whatever_their_names(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    names = ["file", "allow_pickle", "feed:x", "x"]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], [n]) for n in names if n != "x"]
        + [helper.make_node("Neg", ["x"], ["x_neg"])], "names",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2])
         for n in [*names[:3], "x_neg"]])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "names.onnx")
    code, _, err = cli("run", tmp_path / "names.onnx", "-b", "numpy", "--save",
                       tmp_path / "out.npz")
    assert code == 0, err
    with np.load(tmp_path / "out.npz") as saved:
        assert sorted(saved.files) == sorted([*names[:3], "x_neg"])
        assert np.array_equal(saved["allow_pickle"], -saved["x_neg"])


@pytest.mark.parametrize(("args", "needle"), [
    (["run", "{model}", "-b", "nope"], "unknown backend 'nope' (known backends: jax, numpy"),
    (["compare", "{model}", "-b", "onnxruntime", "-b", "nope"], "unknown backend 'nope'"),
    (["bisect", "{model}", "-b", "onnxruntime", "-b", "nope"], "unknown backend 'nope'"),
    (["bench", "{model}", "-b", "onnxruntime", "-b", "nope"], "unknown backend 'nope'"),
    (["demo", "--out", "{tmp}/demo", "-b", "nope"], "unknown backend 'nope'"),
    (["run", "{model}", "--dim", "bacth=8"],
     "the model has no dimension 'bacth' (its symbolic dimensions: 'batch')"),
    (["compare", "{model}", "-b", "onnxruntime", "-b", "numpy", "--dim", "bacth=8"],
     "no dimension 'bacth'"),
    (["run", "{model}", "--dim", "batch=0"], "a size of 1 or more"),
    (["bench", "{model}", "-b", "onnxruntime", "--plot", "{tmp}/out.txt"],
     "out.txt: the file name must end in"),
    (["bisect", "{model}", "-b", "onnxruntime", "-b", "numpy", "--plot", "{tmp}/curve.txt"],
     "curve.txt: the file name must end in"),
    (["run", "{model}", "--save", "{tmp}/out.txt"], "out.txt: the file name must end in .npz"),
    (["run", "{model}", "--save", "{tmp}"], "is a folder"),
    (["export", "torch", "x.py:f", "--shape", "input=4x20", "-o", "{tmp}/out.txt"],
     "out.txt: the file name must end in .onnx"),
    (["conformance", "-b", "numpy", "--json", "{tmp}/r.txt"], "must end in .json"),
])
def test_bad_arguments_fail_before_any_work(tmp_path: Path, mlp_path: Path, args: list[str],
                                            needle: str) -> None:
    filled = [a.format(model=mlp_path, tmp=tmp_path) for a in args]
    result = modelport_cli(*filled)
    assert_one_line_error(result, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.onnx"]


def test_bisect_never_writes_its_reproducer_over_the_input(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(mlp_model(), path)
    before = path.read_bytes()
    result = modelport_cli("bisect", path, "-b", "onnxruntime", "-b", "numpy",
                           "--save-repro", tmp_path)
    assert_one_line_error(result, "is an input of this command")
    assert path.read_bytes() == before


@pytest.mark.parametrize("args", [["run"], ["run", "{model}", "--bogus"], ["nope"]])
def test_usage_errors_are_one_line_with_exit_code_2(mlp_path: Path, args: list[str]) -> None:
    result = modelport_cli(*[a.format(model=mlp_path) for a in args])
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modelport: error: ")
    assert "--help" in lines[0]


def test_debug_is_accepted_after_the_command(tmp_path: Path) -> None:
    path = tmp_path / "readme.onnx"
    path.write_text("text")
    result = modelport_cli("inspect", path, "--debug")
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_flags_show_no_type_placeholder_in_help() -> None:
    result = modelport_cli("bench", "--help")
    assert result.returncode == 0 and "--isolate" in result.stdout
    assert "<bool>" not in result.stdout and "<list" not in result.stdout


def test_backends_lists_the_runtimes(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("backends", "--format", "json")
    names = {b["name"] for b in json.loads(out) if b["available"]}
    assert code == 0 and {"onnxruntime", "openvino", "reference"} <= names


def test_help_teaches(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("backends", "inspect", "check", "run", "compare", "bench", "export", "demo"):
        assert command in out
