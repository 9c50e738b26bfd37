from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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

NAME = "demo"
HELP = ("The seed pipeline end to end: train a two-layer classifier in PyTorch on synthetic "
        "data, export it with named inputs and a dynamic batch, run it on every available "
        "backend at batch 1, 7 and 1000, and print a parity table against PyTorch. Needs torch.")


def command(out: Annotated[Path, typer.Option(help="Where the files are written.")]
            = Path("modelport-demo"),
            backend: Annotated[list[str] | None, typer.Option(
                "--backend", "-b", metavar="NAME",
                help="Backends to run (default: every available one).")]
            = None,
            epochs: Annotated[int, typer.Option(help="Training epochs.")] = 5,
            seed: Annotated[int, typer.Option(help="Seed for data and training.")] = 0,
            tolerance: Annotated[float, typer.Option(
                help="Largest absolute difference from PyTorch that counts as agreement.")]
            = 1e-5,
            exporter: Annotated[str, typer.Option(help="dynamo or torchscript.")] = "dynamo",
            format: FormatOption = Format.human) -> None:
    from modelport.demo import run_demo

    with progress(None, "demo") as step:
        report = run_demo(out, epochs=epochs, seed=seed, backends=backend, tolerance=tolerance,
                          exporter=exporter, on_progress=step)

    def render() -> None:
        stdout.print(f"trained {epochs} epochs: loss {report.losses[0]:.3f} -> "
                     f"{report.losses[-1]:.3f}, held-out accuracy {report.accuracy:.1%}")
        attempts = ", ".join(f"{a.exporter} {'ok' if a.ok else 'failed'}"
                             for a in report.export.attempts)
        stdout.print(f"exported with names input/output and a dynamic batch ({attempts})")
        table = Table("backend", "version", *(f"batch {b}" for b in report.batches), "",
                      title=f"max |backend - PyTorch| (agreement: <= {report.tolerance:g})",
                      title_justify="left")
        table.add_row("pytorch", _torch_version(), *("reference" for _ in report.batches), "")
        for row in report.parity:
            cells = [fmt_float(row.max_abs_error.get(b)) for b in report.batches]
            mark = "[green]agrees[/]" if row.passed else f"[red]differs[/] {esc(row.error or '')}"
            table.add_row(row.backend, row.version or "", *cells, mark)
        stdout.print(table)
        for name, reason in report.unavailable.items():
            stdout.print(f"[dim]not run: {name}: {esc(reason)}[/]")
        stdout.print("files: " + esc(", ".join(report.files)))
        verdict(report.passed, "every backend agrees with PyTorch" if report.passed else "")

    emit(format, report, render)
    if not report.passed:
        raise typer.Exit(1)


def _torch_version() -> str:
    import torch

    return str(torch.__version__)
