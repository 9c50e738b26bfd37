from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelport.cli.options import BackendsOption, DimOption, ModelArg, SeedOption
from modelport.cli.output import Format, FormatOption, emit, esc, fmt_float, progress, stdout

NAME = "bench"
HELP = ("Time backends side by side: prepare time, p50/p90/p99 latency, throughput and peak "
        "memory per batch size. Each backend runs in its own process.\n\n"
        "Example: `modelport bench model.onnx -b onnxruntime -b openvino --batch 1,8 "
        "--plot bench.png`")


def _batches(text: str) -> list[int]:
    try:
        values = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise typer.BadParameter(f"{text!r}: expected positive sizes like 1,8,32")
    return values


def command(model: ModelArg, backend: BackendsOption,
            batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1",
            warmup: Annotated[int, typer.Option(help="Untimed runs first.")] = 5,
            runs: Annotated[int, typer.Option(help="Timed runs at most.")] = 100,
            max_seconds: Annotated[float, typer.Option(
                help="Stop timing a batch size after this long (3 runs at least).")] = 10.0,
            isolate: Annotated[bool, typer.Option(
                help="Run each backend in a fresh process (measures its peak memory).")] = True,
            plot: Annotated[Path | None, typer.Option(
                help="Draw latency by backend and batch into this image (png, svg, pdf).")]
            = None,
            dim: DimOption = None, seed: SeedOption = 0,
            format: FormatOption = Format.human) -> None:
    from modelport.benchmark import bench
    from modelport.benchmark import plot as draw
    from modelport.inputs import parse_dims
    from modelport.io import check_figure_path

    batches, dims = _batches(batch), parse_dims(dim or [])
    if plot is not None:
        check_figure_path(plot, inputs=(model,))
    with progress(len(backend), "bench") as step:
        report = bench(model, backend, batches, warmup=warmup, runs=runs,
                       max_seconds=max_seconds, dims=dims, seed=seed, isolate=isolate,
                       on_progress=step)
    if plot is not None:
        draw(report, plot)

    def render() -> None:
        table = Table("backend", "batch", "prepare s", "p50 ms", "p90 ms", "p99 ms",
                      "samples/s", "peak MB", "runs", title=esc(model), title_justify="left")
        for r in report.results:
            if r.error:
                table.add_row(r.backend, str(r.batch), "[red]error[/]")
                continue
            table.add_row(r.backend, str(r.batch), fmt_float(r.prepare_s), fmt_float(r.p50_ms),
                          fmt_float(r.p90_ms), fmt_float(r.p99_ms), fmt_float(r.throughput, 1),
                          fmt_float(r.peak_rss_mb, 1), str(r.runs))
        stdout.print(table)
        for r in report.results:
            if r.error:
                stdout.print(f"[red]{r.backend} at batch {r.batch}[/]: {esc(r.error)}")
        if plot is not None:
            stdout.print(f"plot written to {esc(plot)}")

    data = report.to_dict() | {"plot": str(plot) if plot else None}
    emit(format, data, render)
    if not report.passed:
        raise typer.Exit(1)
