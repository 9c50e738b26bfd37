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
HELP = ("The seed pipeline end to end: train a classifier on synthetic data (a two-layer "
        "network in PyTorch, or --from keras, jax; a random forest pipeline --from sklearn; "
        "gradient-boosted trees --from lightgbm, xgboost), export it with named inputs and a "
        "dynamic batch, run it on every available backend at batch 1, 7 and 1000, and print "
        "a parity table against the framework that trained it.\n\n"
        "Example: `modelport demo --from sklearn -b onnxruntime -b torch`")


def command(out: Annotated[Path, typer.Option(help="Where the files are written.")]
            = Path("modelport-demo"),
            source: Annotated[str, typer.Option(
                "--from", metavar="FRAMEWORK",
                help="The framework that trains and exports: torch, keras, jax, sklearn, "
                     "lightgbm or xgboost.")] = "torch",
            backend: Annotated[list[str] | None, typer.Option(
                "--backend", "-b", metavar="NAME",
                help="Backends to run (default: every available one).")]
            = None,
            epochs: Annotated[int, typer.Option(
                help="Training epochs (the networks: torch, keras, jax).")] = 5,
            seed: Annotated[int, typer.Option(help="Seed for data and training.")] = 0,
            tolerance: Annotated[float, typer.Option(
                help="Largest absolute difference from the source that counts as agreement "
                     "(the estimators' labels must also be equal).")]
            = 1e-5,
            exporter: Annotated[str, typer.Option(
                help="dynamo or torchscript (--from torch).")] = "dynamo",
            format: FormatOption = Format.human) -> None:
    from modelport.demo import run_demo

    with progress(None, "demo") as step:
        report = run_demo(out, source=source, epochs=epochs, seed=seed, backends=backend,
                          tolerance=tolerance, exporter=exporter, on_progress=step)

    def render() -> None:
        trained = (f"trained {len(report.losses)} epochs: loss {report.losses[0]:.3f} -> "
                   f"{report.losses[-1]:.3f}" if report.losses else "fitted")
        stdout.print(f"{esc(report.framework)}: {trained}, held-out accuracy "
                     f"{report.accuracy:.1%}")
        attempts = ", ".join(f"{a.exporter} {'ok' if a.ok else 'failed'}"
                             for a in report.export.attempts)
        stdout.print(f"exported with a dynamic batch ({attempts})")
        name, _, version = report.framework.rpartition(" ")
        table = Table("backend", "version", *(f"batch {b}" for b in report.batches), "",
                      title=f"max |backend - {name}| (agreement: <= {report.tolerance:g})",
                      title_justify="left")
        table.add_row(esc(name), version, *("reference" for _ in report.batches), "")
        for row in report.parity:
            cells = [fmt_float(row.max_abs_error.get(b)) for b in report.batches]
            mark = "[green]agrees[/]" if row.passed else f"[red]differs[/] {esc(row.error or '')}"
            table.add_row(row.backend, row.version or "", *cells, mark)
        stdout.print(table)
        for backend_name, reason in report.unavailable.items():
            stdout.print(f"[dim]not run: {backend_name}: {esc(reason)}[/]")
        stdout.print("files: " + esc(", ".join(report.files)))
        verdict(report.passed, f"every backend agrees with {name}" if report.passed else "")

    emit(format, report, render)
    if not report.passed:
        raise typer.Exit(1)

