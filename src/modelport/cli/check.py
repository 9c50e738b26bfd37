from __future__ import annotations

import typer

from modelport.cli.options import MemoryLimitOption, ModelArg, TimeoutOption
from modelport.cli.output import Format, FormatOption, emit, esc, stdout, verdict

NAME = "check"
HELP = "Run the ONNX checker and strict shape inference; exit 1 when either finds an error."


def command(model: ModelArg, timeout: TimeoutOption = 600.0,
            memory_limit: MemoryLimitOption = None, format: FormatOption = Format.human) -> None:
    from modelport.model import check
    from modelport.workers import call_isolated

    # onnx's checker and shape inference expand a model's functions in C++: a small file can
    # expand without end, so they run in a worker with the time and memory limits
    report = call_isolated(check, model, timeout=timeout, memory_limit_mb=memory_limit,
                           what="the check")

    def render() -> None:
        for severity, message in report.findings:
            colour = "red" if severity == "error" else "yellow"
            stdout.print(f"[{colour}]{severity}[/]: {esc(message)}")
        verdict(report.ok, str(model))

    emit(format, report, render)
    if not report.ok:
        raise typer.Exit(1)
