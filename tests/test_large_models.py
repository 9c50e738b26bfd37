"""Models over protobuf's 2 GiB limit: their weights live in external data, and the runtimes
read them from the model's path, never from one serialized buffer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import modelport

ROWS = (2**31) // 16 + 4096  # [ROWS, 4] float32: 64 KiB past 2 GiB
CHUNK = 1 << 22


def row_values(rows: np.ndarray) -> np.ndarray:
    """Row i of the table: i mod 997, plus 0, 0.25, 0.5, 0.75 (exact in float32)."""
    return ((rows % 997)[:, None] + np.array([0, 0.25, 0.5, 0.75])).astype(np.float32)


@pytest.fixture(scope="module")
def large_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Gather from a 2 GiB table, written chunk by chunk (never whole in memory)."""
    folder = tmp_path_factory.mktemp("large")
    with open(folder / "table.bin", "wb") as data:
        for start in range(0, ROWS, CHUNK):
            data.write(row_values(np.arange(start, min(start + CHUNK, ROWS))).tobytes())
    table = TensorProto(name="table", data_type=TensorProto.FLOAT, dims=[ROWS, 4],
                        data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "table.bin"), ("offset", "0"),
                       ("length", str(ROWS * 16))):
        table.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "rows"], ["picked"], axis=0)], "large",
        [helper.make_tensor_value_info("rows", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("picked", TensorProto.FLOAT, ["n", 4])],
        initializer=[table])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save_model(model, folder / "model.onnx")
    assert (folder / "table.bin").stat().st_size > 2**31
    return folder / "model.onnx"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_model_over_2_gib_runs_from_its_path(large_model: Path, backend: str) -> None:
    rows = np.array([0, ROWS - 1, 123_456_789, 996], np.int64)
    session = modelport.get_backend(backend).prepare(large_model)
    picked = session.run({"rows": rows})["picked"]
    np.testing.assert_array_equal(picked, row_values(rows))


@pytest.mark.slow
@pytest.mark.parametrize("isolate", ["--isolate", "--no-isolate"])
def test_modelport_run_takes_a_model_over_2_gib(large_model: Path, isolate: str,
                                                cli) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("run", large_model, "-b", "onnxruntime", "--dim", "n=3", isolate)
    assert code == 0, err
    assert "picked" in out
