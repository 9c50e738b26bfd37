"""compare: error statistics by hand-checked cases, and across real backends."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport.comparison import compare_arrays


def test_statistics_of_a_known_difference() -> None:
    expected = np.array([1.0, 2.0, -4.0], np.float32)
    actual = np.array([1.0, 2.1, -4.0], np.float32)
    stats = compare_arrays("y", actual, expected, atol=0.01, rtol=0.0)
    assert not stats.passed and stats.mismatched == 1 and stats.size == 3
    assert stats.max_abs_error == pytest.approx(0.1, rel=1e-5)
    assert stats.max_rel_error == pytest.approx(0.05, rel=1e-5)
    assert stats.needed_atol == pytest.approx(0.1, rel=1e-5)  # at rtol 0
    assert stats.needed_rtol == pytest.approx((0.1 - 0.01) / 2.0, rel=1e-4)  # at atol 0.01
    assert compare_arrays("y", actual, expected, atol=0.11, rtol=0.0).passed
    assert compare_arrays("y", actual, expected, atol=0.0, rtol=0.051).passed


def test_nan_and_inf_mismatches_are_counted() -> None:
    expected = np.array([np.nan, np.inf, 1.0, np.nan])
    actual = np.array([np.nan, -np.inf, np.nan, 1.0])
    stats = compare_arrays("y", actual, expected)
    assert stats.nan_mismatch == 2 and stats.inf_mismatch == 1
    assert stats.mismatched == 3 and not stats.passed
    assert compare_arrays("y", expected, expected).passed  # NaN matches NaN


def test_shape_and_dtype_disagreement() -> None:
    stats = compare_arrays("y", np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))
    assert not stats.passed and not stats.shape_match and "shape [2, 3]" in stats.note
    stats = compare_arrays("y", np.zeros(3, np.float64), np.zeros(3, np.float32))
    assert not stats.passed and stats.shape_match and not stats.dtype_match


def test_compare_real_backends(mlp_path: Path) -> None:
    report = modelport.compare(mlp_path, ["onnxruntime", "reference", "openvino"],
                               dims={"batch": 16})
    assert report.passed and report.baseline == "onnxruntime"
    assert [r.backend for r in report.results] == ["reference", "openvino"]
    assert report.inputs == {"x": [16, 4]}
    for result in report.results:
        assert result.outputs[0].max_abs_error < 1e-5


def test_cli_compare_json_and_exit_codes(cli, wide_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = [wide_path, "-b", "onnxruntime", "-b", "reference", "-b", "openvino",
            "--dim", "batch=64", "--format", "json"]
    code, out, _ = cli("compare", *args)
    data = json.loads(out)
    assert code == 0 and data["passed"]
    rows = {r["backend"]: r["outputs"][0] for r in data["results"]}
    assert set(rows) == {"reference", "openvino"}
    assert all(r["max_abs_error"] is not None and r["max_rel_error"] is not None
               for r in rows.values())
    # Different summation orders leave float32 differences that a zero tolerance cannot hold.
    code, out, _ = cli("compare", *args, "--atol", "0", "--rtol", "0")
    assert code == 1 and json.loads(out)["passed"] is False


def test_cli_compare_reads_feeds_from_a_file(cli, mlp_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    np.savez(tmp_path / "feeds.npz", x=np.ones((3, 4), np.float32))
    code, out, _ = cli("compare", mlp_path, "-b", "onnxruntime", "-b", "reference",
                       "--inputs", tmp_path / "feeds.npz", "--format", "json")
    assert code == 0 and json.loads(out)["inputs"] == {"x": [3, 4]}
