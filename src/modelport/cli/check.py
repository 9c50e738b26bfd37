from __future__ import annotations

import typer

from modelport.cli.options import ModelArg
from modelport.cli.output import Format, FormatOption, emit, esc, stdout, verdict

NAME = "check"
HELP = "Run the ONNX checker and strict shape inference; exit 1 when either finds an error."


def command(model: ModelArg, format: FormatOption = Format.human) -> None:
    from modelport.model import check

    report = check(model)

    def render() -> None:
        for severity, message in report.findings:
            colour = "red" if severity == "error" else "yellow"
            stdout.print(f"[{colour}]{severity}[/]: {esc(message)}")
        verdict(report.ok, str(model))

    emit(format, report, render)
    if not report.ok:
        raise typer.Exit(1)
