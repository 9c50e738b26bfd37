from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelport.bisection import BisectReport
from modelport.cli.options import (
    AtolOption,
    BackendsOption,
    DimOption,
    InputsOption,
    IsolateOption,
    MemoryLimitOption,
    ModelArg,
    RtolOption,
    SeedOption,
    TimeoutOption,
)
from modelport.cli.output import Format, FormatOption, emit, esc, fmt_float, stdout, verdict

NAME = "bisect"
HELP = ("Find the first node where two backends disagree: every intermediate value is "
        "exposed and compared in topological order. Exit 1 when they disagree.\n\n"
        "Example: `modelport bisect model.onnx -b onnxruntime -b openvino --save-repro repro/`")


def render(report: BisectReport) -> None:
    a, b = report.backends
    if report.culprit is None:
        stdout.print(f"{a} and {b} agree on all {len(report.curve)} nodes "
                     f"(atol {report.atol:g}, rtol {report.rtol:g})")
        verdict(True)
        return
    c = report.culprit
    kind = ("first divergent node" if report.verdict == "node" else
            "divergence grows gradually; first node past the tolerance")
    stdout.print(f"[bold]{kind}:[/] {esc(c['op_type'])} {esc(c['name'] or '(unnamed)')} "
                 f"({esc(c['domain'])})")
    if c["attributes"]:
        stdout.print("attributes: " + esc(", ".join(f"{k}={v}" for k, v in
                                                     c["attributes"].items())))
    table = Table("", "value", "shape", "dtype", "max abs", "max rel", "",
                  title=f"{b} against {a} (atol {report.atol:g}, rtol {report.rtol:g})",
                  title_justify="left")
    for side in ("inputs", "outputs"):
        for v in c[side]:
            table.add_row(side[:-1], esc(v["name"]), esc(v["shape"]), v["dtype"],
                          fmt_float(v["max_abs_error"]), fmt_float(v["max_rel_error"]),
                          "[green]agrees[/]" if v["agrees"] else "[red]differs[/]")
    stdout.print(table)
    if report.isolated_agrees is True:
        stdout.print("[yellow]In isolation, on the same inputs, both backends agree on this "
                     "node:[/] the difference comes from how one of them runs it inside the "
                     "graph (a fused kernel, an intermediate kept in higher precision).")
    elif report.isolated_agrees is False:
        stdout.print("In isolation, on the same inputs, the node still disagrees.")
    if report.repro:
        stdout.print(f"reproducer: {esc(report.repro)}/model.onnx; rerun with `modelport "
                     f"compare {esc(report.repro)}/model.onnx -b {a} -b {b} --inputs "
                     f"{esc(report.repro)}/inputs.npz`")
    verdict(False, f"{b} departs from {a} at {c['op_type']} {c['name']}")


def command(model: ModelArg, backend: BackendsOption,
            atol: AtolOption = 1e-5, rtol: RtolOption = 1e-4,
            inputs: InputsOption = None, dim: DimOption = None, seed: SeedOption = 0,
            save_repro: Annotated[Path | None, typer.Option(
                help="Write the culprit node as a standalone model with its inputs and both "
                     "backends' outputs to this folder.")] = None,
            plot: Annotated[Path | None, typer.Option(
                help="Draw each node's error (in tolerances) along the graph.")] = None,
            isolate: IsolateOption = True, timeout: TimeoutOption = 600.0,
            memory_limit: MemoryLimitOption = None,
            format: FormatOption = Format.human) -> None:
    from modelport.bisection import bisect, check_repro_folder, plot_curve
    from modelport.inputs import load_inputs, parse_dims
    from modelport.io import check_figure_path
    from modelport.model import input_specs, load

    given: tuple[str | Path, ...] = (model, *(i.rpartition("=")[2] for i in inputs or []))
    if plot is not None:
        check_figure_path(plot, inputs=given)
    if save_repro is not None:
        check_repro_folder(save_repro, backend, given)
    proto = load(model)
    feeds = load_inputs(inputs, input_specs(proto)) if inputs else None
    report = bisect(proto, backend, inputs=feeds, dims=parse_dims(dim or []), seed=seed,
                    atol=atol, rtol=rtol, save_repro=save_repro, isolate=isolate,
                    timeout=timeout, memory_limit_mb=memory_limit)
    if plot is not None:
        plot_curve(report, plot)
    emit(format, report, lambda: render(report))
    if not report.passed:
        raise typer.Exit(1)
