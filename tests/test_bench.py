"""bench: real timings per backend and batch size, as data and as a plot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest

import modelport
from modelport.backends.base import Backend, Session
from modelport.errors import BackendError, InputError, ModelportError


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


class Refusing(Backend):
    """Refuses every model, as a backend without the operators would."""

    name = "refusing"

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Session:
        raise BackendError("no kernels here")


class Crashing(Backend):
    """Kills its own process with SIGSEGV when asked to prepare."""

    name = "crashing"

    def _prepare(self, model: onnx.ModelProto, device: str, **options: Any) -> Session:
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")


def test_bench_in_process_and_a_failing_backend_is_reported(mlp_path: Path, register) -> None:  # type: ignore[no-untyped-def]
    register("refusing", Refusing)
    report = modelport.bench(mlp_path, ["reference", "refusing"], [2], runs=3, warmup=0,
                             isolate=False)
    ok, failed = report.results
    assert ok.error is None and ok.runs == 3 and ok.peak_rss_mb is None
    assert failed.error == "no kernels here"
    assert not report.passed


def test_a_worker_that_dies_is_reported_with_its_signal(mlp_path: Path, register) -> None:  # type: ignore[no-untyped-def]
    register("crashing", Crashing)
    report = modelport.bench(mlp_path, ["reference", "crashing"], [1, 2], runs=3, warmup=0)
    assert [r.error for r in report.results[:2]] == [None, None]
    for r in report.results[2:]:
        assert r.error is not None and "crashed (signal 11): SIGSEGV" in r.error


def test_bench_raises_when_every_backend_failed(mlp_path: Path, register) -> None:  # type: ignore[no-untyped-def]
    register("refusing", Refusing)
    with pytest.raises(BackendError, match="every backend failed: refusing: no kernels here"):
        modelport.bench(mlp_path, ["refusing"], [1], runs=3, warmup=0)


@pytest.mark.parametrize(("backends", "batches", "dims", "message"), [
    (["onnxruntime", "nope"], [1], {}, r"unknown backend 'nope' \(known backends: jax, numpy"),
    (["onnxruntime"], [0], {}, "batch sizes of 1 or more"),
    (["onnxruntime"], [1], {"bacth": 8}, r"no dimension 'bacth' \(its symbolic dimensions: "
                                         r"'batch'\)"),
])
def test_bench_refuses_bad_arguments_before_any_work(mlp_path: Path, backends: list[str],
                                                     batches: list[int], dims: dict[str, int],
                                                     message: str) -> None:
    with pytest.raises(ModelportError, match=message):
        modelport.bench(mlp_path, backends, batches, dims=dims, on_progress=_no_work)


def _no_work(name: str) -> None:
    raise AssertionError(f"{name} started before the arguments were checked")


def test_a_script_without_a_main_guard_benches_once(tmp_path: Path, mlp_path: Path) -> None:
    """spawn re-imports the caller's __main__ in each worker: a script without the guard
    would run again there (and bootstrap workers of its own)."""
    script = tmp_path / "script.py"
    script.write_text("import sys, modelport\n"
                      "print('script body runs', flush=True)\n"
                      f"r = modelport.bench({str(mlp_path)!r}, ['onnxruntime', 'numpy'], [1], "
                      "runs=3, warmup=0)\n"
                      "print([x.error for x in r.results])\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["script body runs", "[None, None]"]
    assert "Traceback" not in run.stderr


def test_a_fixed_batch_cannot_be_changed(tmp_path: Path) -> None:
    from modelport.benchmark import batch_feeds
    from modelport.model import TensorSpec

    with pytest.raises(InputError, match="fixed batch of 2"):
        batch_feeds([TensorSpec("x", 1, (2, 4))], 8)
