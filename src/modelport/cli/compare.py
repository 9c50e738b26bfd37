from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

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
from modelport.cli.output import (
    Format,
    FormatOption,
    emit,
    esc,
    fmt_float,
    progress,
    stdout,
    verdict,
)
from modelport.comparison import DEFAULT_ATOL, DEFAULT_RTOL, CompareReport

NAME = "compare"
HELP = ("Run the same feeds through several backends and compare each with a baseline (the "
        "first -b unless --baseline). Exit 1 when any output disagrees.\n\n"
        "Example: `modelport compare model.onnx -b onnxruntime -b openvino -b reference`")


def render_report(report: CompareReport) -> None:
    table = Table("backend", "output", "max abs", "max rel", "needed atol", "needed rtol",
                  "mismatched", "nan/inf", "", title=esc(
                      f"against {report.baseline} (atol {report.atol:g}, rtol {report.rtol:g}), "
                      f"inputs {report.inputs}"), title_justify="left")
    for result in report.results:
        if result.error:
            table.add_row(result.backend, "-", "", "", "", "", "", "", "[red]error[/]")
            continue
        for o in result.outputs:
            mark = "[green]ok[/]" if o.passed else f"[red]differs[/] {esc(o.note)}"
            table.add_row(result.backend, esc(o.name), fmt_float(o.max_abs_error),
                          fmt_float(o.max_rel_error), fmt_float(o.needed_atol),
                          fmt_float(o.needed_rtol), f"{o.mismatched}/{o.size}",
                          f"{o.nan_mismatch}/{o.inf_mismatch}", mark)
    stdout.print(table)
    for result in report.results:
        if result.error:
            stdout.print(f"[red]{result.backend}[/]: {esc(result.error)}")
    verdict(report.passed)


def command(model: ModelArg, backend: BackendsOption,
            baseline: Annotated[str | None, typer.Option(
                help="The backend the others are compared with.")] = None,
            atol: AtolOption = DEFAULT_ATOL, rtol: RtolOption = DEFAULT_RTOL,
            inputs: InputsOption = None, dim: DimOption = None, seed: SeedOption = 0,
            isolate: IsolateOption = True, timeout: TimeoutOption = 600.0,
            memory_limit: MemoryLimitOption = None,
            format: FormatOption = Format.human) -> None:
    from modelport.comparison import compare
    from modelport.inputs import load_inputs, parse_dims
    from modelport.model import input_specs, load

    proto = load(model)
    feeds = load_inputs(inputs, input_specs(proto)) if inputs else None
    names = list(dict.fromkeys(([baseline] if baseline else []) + backend))
    with progress(len(names), "compare") as step:
        report = compare(proto, names, baseline=baseline, inputs=feeds,
                         dims=parse_dims(dim or []), seed=seed, atol=atol, rtol=rtol,
                         on_progress=step, isolate=isolate, timeout=timeout,
                         memory_limit_mb=memory_limit)
    emit(format, report, lambda: render_report(report))
    if not report.passed:
        raise typer.Exit(1)
