"""bench: real timings per backend and batch size, as data and as a plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import modelport
from modelport.errors import InputError


def test_cli_bench_writes_figures_and_plot(cli, mlp_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plot = tmp_path / "p.png"
    code, out, _ = cli("bench", mlp_path, "-b", "onnxruntime", "-b", "openvino",
                       "--batch", "1,8", "--runs", "20", "--warmup", "2",
                       "--format", "json", "--plot", plot)
    data = json.loads(out)
    assert code == 0 and data["passed"]
    rows = {(r["backend"], r["batch"]): r for r in data["results"]}
    assert set(rows) == {(b, n) for b in ("onnxruntime", "openvino") for n in (1, 8)}
    for row in rows.values():
        assert row["error"] is None and row["runs"] == 20
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["throughput"] == pytest.approx(row["batch"] / (row["p50_ms"] / 1e3))
        assert row["prepare_s"] > 0 and row["peak_rss_mb"] > 10
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_in_process_and_a_failing_backend_is_reported(mlp_path: Path) -> None:
    report = modelport.bench(mlp_path, ["reference", "nope"], [2], runs=3, warmup=0,
                             isolate=False)
    ok, failed = report.results
    assert ok.error is None and ok.runs == 3 and ok.peak_rss_mb is None
    assert failed.error is not None and "unknown backend" in failed.error
    assert not report.passed


def test_a_fixed_batch_cannot_be_changed(tmp_path: Path) -> None:
    from modelport.benchmark import batch_feeds
    from modelport.model import TensorSpec

    with pytest.raises(InputError, match="fixed batch of 2"):
        batch_feeds([TensorSpec("x", 1, (2, 4))], 8)
