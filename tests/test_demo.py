"""The seed pipeline end to end, as the README's first command runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")


def test_demo_json_agrees_within_1e5_on_every_runtime(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("demo", "--out", tmp_path / "demo", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["passed"]
    assert data["batches"] == [1, 7, 1000]
    rows = {row["backend"]: row for row in data["parity"]}
    assert {"onnxruntime", "openvino", "reference", "numpy", "torch", "jax",
            "tensorflow"} <= set(rows)
    for row in rows.values():
        assert row["error"] is None
        errors = row["max_abs_error"]
        assert set(errors) == {"1", "7", "1000"}
        assert all(0 <= e <= 1e-5 for e in errors.values()), row
    assert data["training"]["losses"][-1] < data["training"]["losses"][0]
    assert data["training"]["accuracy"] > 0.6  # three overlapping classes: chance is 1/3
    assert data["export"]["exporter"] == "dynamo" and data["export"]["passed"]
    # The report on disk is the same data.
    assert json.loads((tmp_path / "demo" / "report.json").read_text())["parity"] == data["parity"]
    for file in data["files"]:
        assert Path(file).is_file()


def test_demo_table(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("demo", "--out", tmp_path, "-b", "onnxruntime", "--epochs", "1")
    assert code == 0
    assert "batch 1000" in out and "onnxruntime" in out and "agrees" in out
    assert out.strip().splitlines()[-1].startswith("PASSED")


@pytest.mark.parametrize("source", ["sklearn", "keras", "lightgbm", "xgboost", "jax"])
def test_demo_from_another_framework_agrees_on_every_backend_that_runs_it(
        source: str, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("demo", "--from", source, "--out", tmp_path, "--epochs", "2",
                       "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["passed"] and data["source"] == source
    rows = {row["backend"]: row for row in data["parity"]}
    assert {"onnxruntime", "reference", "numpy", "torch", "jax", "tensorflow"} <= set(rows)
    for row in rows.values():
        assert row["error"] is None, row
        assert all(0 <= e <= 1e-5 for e in row["max_abs_error"].values()), row
    assert data["training"]["accuracy"] > 0.6  # three overlapping classes: chance is 1/3
    if source in ("sklearn", "lightgbm", "xgboost"):
        # OpenVINO's ONNX front end has no ai.onnx.ml operators: said, not failed
        assert "openvino" not in rows
        assert data["unavailable"]["openvino"].startswith("cannot run this model")
    else:
        assert "openvino" in rows


def test_demo_from_names_the_framework_in_the_table(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("demo", "--from", "sklearn", "--out", tmp_path, "-b", "onnxruntime")
    assert code == 0
    assert "max |backend - scikit-learn|" in out
    assert out.strip().splitlines()[-1] == "PASSED every backend agrees with scikit-learn"
    code, _, err = cli("demo", "--from", "caffe", "--out", tmp_path)
    assert code == 1 and "unknown source 'caffe'" in err


def test_demo_asked_for_a_backend_that_cannot_run_the_model_fails(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("openvino")
    code, out, _ = cli("demo", "--from", "lightgbm", "--out", tmp_path, "-b", "openvino",
                       "--format", "json")
    data = json.loads(out)
    assert code == 1 and not data["passed"]
    assert "No conversion rule found" in data["parity"][0]["error"]
