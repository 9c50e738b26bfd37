"""Hostile files: external data hidden where loaders forget to look, links and races, sizes that
lie, and names that speak to the terminal. Each case is one line of error, nothing read or
written where it should not be."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from conftest import W, mlp_model
from modelport.backends.base import Backend, Session
from modelport.errors import BackendError, ModelLoadError, UnsafeModelError
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


def int_div_model(path: Path, n: int = 17) -> Path:
    """c = a / b on int32: INT_MIN / -1 overflows, and some engines trap (SIGFPE)."""
    graph = helper.make_graph(
        [helper.make_node("Div", ["a", "b"], ["c"])], "div",
        [helper.make_tensor_value_info(name, TensorProto.INT32, [n]) for name in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [n])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    np.savez(path.with_suffix(".npz"), a=np.full(n, -2**31, np.int32),
             b=np.full(n, -1, np.int32))
    return path


def modelport_cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelport", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def test_a_native_crash_costs_one_backend_not_the_comparison(tmp_path: Path) -> None:
    path = int_div_model(tmp_path / "div.onnx")
    feeds = {"a": np.full(17, -2**31, np.int32), "b": np.full(17, -1, np.int32)}
    report = modelport.compare(path, ["numpy", "onnxruntime", "reference"], inputs=feeds,
                               isolate=True)
    crashed, reference = report.results
    assert crashed.backend == "onnxruntime" and crashed.error is not None
    assert "crashed (signal 8): SIGFPE" in crashed.error
    assert reference.error is None and reference.passed
    for command in ("run", "bisect"):
        backends = ["-b", "onnxruntime"] if command == "run" else ["-b", "numpy", "-b",
                                                                   "onnxruntime"]
        result = modelport_cli(command, path, *backends, "--inputs", path.with_suffix(".npz"))
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.strip() == ("modelport: error: backend 'onnxruntime' crashed "
                                         "(signal 8): SIGFPE")


def endless_loop_model(path: Path) -> Path:
    """A Loop with a trip count of 2^62 whose body adds one: it never ends in practice."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]),
         helper.make_node("Add", ["v", "one"], ["v_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.ones(1, np.float32), "one")])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "", "x"], ["y"], body=body)], "endless",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.array(2**62, np.int64), "trips")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_run_that_never_ends_meets_the_time_limit(tmp_path: Path) -> None:
    path = endless_loop_model(tmp_path / "loop.onnx")
    result = modelport_cli("run", path, "-b", "numpy", "--timeout", "5")
    assert result.returncode == 1
    assert result.stderr.strip() == ("modelport: error: backend 'numpy' timed out after 5 s "
                                     "(--timeout)")


def test_a_model_that_swells_while_prepared_meets_the_memory_limit(tmp_path: Path) -> None:
    """ConstantOfShape of a constant 2^30 floats: 4 GB from a model of 200 bytes."""
    graph = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["shape"], ["big"]),
         helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
         helper.make_node("Add", ["x", "s"], ["y"])], "swell",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(np.array([2**30], np.int64), "shape")])
    path = tmp_path / "swell.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert path.stat().st_size < 300
    result = modelport_cli("compare", path, "-b", "reference", "-b", "numpy",
                           "--memory-limit", "1000", "--format", "json")
    assert result.returncode == 1
    assert "backend 'reference' used" in result.stderr and "over the 1000 MB limit" \
        in result.stderr


def element_type_99(path: Path) -> list[object]:
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", 99, [2])],
                              [helper.make_tensor_value_info("y", 99, [2])])
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                     .SerializeToString())
    return ["run", path]


def negative_sparse_index(path: Path) -> list[object]:
    values = numpy_helper.from_array(np.array([7], np.float32), "v")
    indices = numpy_helper.from_array(np.array([-1], np.int64), "i")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["c"],
                          sparse_value=helper.make_sparse_tensor(values, indices, [4])),
         helper.make_node("Add", ["x", "c"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return ["run", path, "-b", "numpy"]


def external_location(location: str) -> object:
    def make(path: Path) -> list[object]:
        save(with_external_w(location), path)
        return ["inspect", path]
    return make


def feeds_file(content: bytes) -> object:
    def make(path: Path) -> list[object]:
        onnx.save(mlp_model(), path)
        (path.parent / "feeds.npz").write_bytes(content)
        return ["run", path, "--inputs", path.parent / "feeds.npz"]
    return make


def object_feeds(path: Path) -> list[object]:
    onnx.save(mlp_model(), path)
    np.savez(path.parent / "feeds.npz", x=np.array([{"a": 1}], dtype=object))
    return ["run", path, "--inputs", path.parent / "feeds.npz"]


def unwritable_output(path: Path) -> list[object]:
    onnx.save(mlp_model(), path)
    (path.parent / "a-file").write_text("not a folder")
    return ["run", path, "--save", path.parent / "a-file" / "out.npz"]


SMALL_ONES = {
    "element type 99": (element_type_99, "element type 99, which ONNX does not define"),
    "negative sparse index": (negative_sparse_index, "an index lies outside its shape [4]"),
    "NUL in a location": (external_location("w\0.bin"), "not a usable file name"),
    "300-character name": (external_location("w" * 300), "not a usable file name"),
    "truncated .npz": (feeds_file(b"PK\x03\x04truncated"), "not a readable .npy/.npz file"),
    "pickled object array": (object_feeds, "not a readable .npy/.npz file without pickles"),
    "--seed -1": (lambda p: [*feeds_file(b"")(p)[:2], "--seed", "-1"], "seeds are 0 or more"),
    "-k '('": (lambda p: ["conformance", "-b", "numpy", "-k", "("],
               "is not a regular expression"),
    "unwritable output": (unwritable_output, "cannot write into"),
}


@pytest.mark.parametrize("case", SMALL_ONES)
def test_small_hostile_cases_are_one_line_errors(tmp_path: Path, case: str) -> None:
    make, needle = SMALL_ONES[case]
    result = modelport_cli(*make(tmp_path / "m.onnx"))  # type: ignore[operator]
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modelport: error: "), result.stderr
    assert needle in lines[0] and "internal" not in lines[0]


def test_integer_division_by_zero_prints_no_warnings(tmp_path: Path) -> None:
    path = int_div_model(tmp_path / "div.onnx", n=3)
    np.savez(path.with_suffix(".npz"), a=np.array([1, 2, 3], np.int32),
             b=np.array([0, 1, 0], np.int32))
    result = modelport_cli("run", path, "-b", "numpy", "--inputs", path.with_suffix(".npz"))
    assert result.returncode == 0 and result.stderr == ""


def function_bomb(path: Path, levels: int = 30) -> Path:
    """2 KB of local functions, each calling the one below twice: 2^30 nodes once expanded."""
    functions = [helper.make_function("bomb", "f0", ["a"], ["b"],
                                      [helper.make_node("Neg", ["a"], ["b"])],
                                      [helper.make_opsetid("", 17)])]
    for i in range(1, levels + 1):
        functions.append(helper.make_function("bomb", f"f{i}", ["a"], ["b"], [
            helper.make_node(f"f{i - 1}", ["a"], ["t"], domain="bomb"),
            helper.make_node(f"f{i - 1}", ["t"], ["b"], domain="bomb")],
            [helper.make_opsetid("", 17), helper.make_opsetid("bomb", 1)]))
    graph = helper.make_graph(
        [helper.make_node(f"f{levels}", ["x"], ["y"], domain="bomb")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    onnx.save(helper.make_model(graph, functions=functions, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("bomb", 1)]), path)
    return path


@pytest.mark.parametrize(("command", "who"), [(["check"], "the check"),
                                              (["run", "-b", "onnxruntime"],
                                               "backend 'onnxruntime'")])
def test_a_function_bomb_meets_the_time_limit(tmp_path: Path, command: list[str],
                                              who: str) -> None:
    path = function_bomb(tmp_path / "bomb.onnx")
    assert path.stat().st_size < 3000
    result = modelport_cli(command[0], path, *command[1:], "--timeout", "5")
    assert result.returncode == 1
    assert result.stderr.strip() == f"modelport: error: {who} timed out after 5 s (--timeout)"


def test_sigterm_to_bench_leaves_no_worker_behind(tmp_path: Path) -> None:
    import signal
    import time

    path = endless_loop_model(tmp_path / "loop.onnx")
    bench = subprocess.Popen([sys.executable, "-m", "modelport", "bench", str(path), "-b",
                              "numpy"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (workers := _children(bench.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workers, "bench started no worker"
        bench.send_signal(signal.SIGTERM)
        bench.wait(30)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers)
    finally:
        bench.kill()


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                          if ":\t" in line)
        except OSError:
            continue
        if int(fields.get("PPid", "0").strip()) == pid:
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(("change", "needle"), [
    (lambda m: m.graph.node[1].input.__setitem__(0, "nowhere"),
     "node 'relu' (Relu) reads 'nowhere', which nothing computes"),
    (lambda m: m.graph.node[0].input.__setitem__(0, "y"),
     "node 'gemm' (Gemm) reads 'y', which node 'relu' computes after it (a cycle"),
])
@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "tensorflow"])
def test_an_invalid_graph_is_refused_when_prepared(change, needle: str,  # type: ignore[no-untyped-def]
                                                   backend: str) -> None:
    model = mlp_model()
    change(model)
    with pytest.raises(BackendError, match=re.escape(needle)):
        modelport.get_backend(backend).prepare(model)


def test_raw_data_that_does_not_fit_the_shape_is_refused_on_load() -> None:
    model = mlp_model()
    model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data[:-4]
    with pytest.raises(ModelLoadError, match=r"'W' holds 44 bytes of data, but its shape "
                                             r"\[4, 3\] needs 48"):
        modelport.load(model)


class KeyErrorBackend(Backend):
    """Prepares, then fails every run with a plain KeyError, as a kernel with a bug would."""

    name = "keyerror"

    def _prepare(self, model: onnx.ModelProto, device: str, **options: object) -> Session:
        class Failing(Session):
            def _execute(self, feeds: object) -> object:
                raise KeyError("a value the kernel expected")

        return Failing(self, model, device)


@pytest.mark.parametrize("isolate", [False, True])
def test_a_backend_raising_a_plain_exception_does_not_stop_the_comparison(
        mlp_path: Path, register, isolate: bool) -> None:  # type: ignore[no-untyped-def]
    register("keyerror", KeyErrorBackend)
    report = modelport.compare(mlp_path, ["onnxruntime", "keyerror", "numpy"], isolate=isolate)
    failing, numpy_result = report.results
    assert failing.error == ("backend 'keyerror' could not run the model: KeyError: 'a value "
                             "the kernel expected'")
    assert numpy_result.error is None and numpy_result.passed


def test_inspect_counts_the_bytes_of_huge_shapes_exactly(tmp_path: Path) -> None:
    model = mlp_model()
    huge = external(numpy_helper.from_array(np.ones(1, np.float32), "huge"), "none.bin")
    del huge.dims[:]
    huge.dims.extend([2**40, 2**40])
    del huge.external_data[:]
    huge.external_data.add(key="location", value="huge.bin")
    model.graph.initializer.append(huge)
    from modelport.model import _tensor_nbytes

    assert _tensor_nbytes(huge) == 2**80 * 4


def test_materialising_the_suite_keeps_what_another_process_installed(tmp_path: Path,
                                                                      monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two runs on an empty cache: the second to finish must not remove the first's folder
    (which a third may be reading), and an incomplete leftover is replaced."""
    from modelport.conformance import suite

    cases = [c for c in suite._generate_node_cases() if c.name in ("test_relu", "test_add")]
    monkeypatch.setattr(suite, "_generate_node_cases", lambda: cases)
    folder = tmp_path / "node"
    suite.materialise_node_cases(folder)
    first = (folder / "test_relu" / "model.onnx").stat().st_ino
    suite.materialise_node_cases(folder)  # finishes second: keeps the installed folder
    assert (folder / "test_relu" / "model.onnx").stat().st_ino == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node"]
    (folder / ".complete").unlink()  # an interrupted install of an older layout
    suite.materialise_node_cases(folder)
    assert (folder / ".complete").exists() and (folder / "test_add" / "model.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node"]
