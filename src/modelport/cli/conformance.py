from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelport.cli.output import Format, FormatOption, emit, esc, stderr, stdout, verdict

NAME = "conformance"
HELP = ("Run the official ONNX backend test suite (from the installed onnx package) against a "
        "backend. Each case runs in a worker process, so a crash or hang is recorded and the "
        "run goes on.\n\n"
        "Example: `modelport conformance -b onnxruntime --kinds node -j 2 --json r.json`")


def _kinds(text: str) -> list[str]:
    from modelport.conformance import KINDS

    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        raise typer.BadParameter(f"{text!r}: choose from {', '.join(KINDS)}")
    return kinds


def command(backend: Annotated[str, typer.Option("--backend", "-b", help="The backend.")],
            k: Annotated[str | None, typer.Option(
                "-k", help="Only cases whose name matches this regular expression.")] = None,
            kinds: Annotated[str, typer.Option(
                help="Comma-separated: node, simple, pytorch-converted, pytorch-operator.")]
            = "node",
            json_path: Annotated[Path | None, typer.Option(
                "--json", help="Write the full report (every case) to this file.")] = None,
            jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes.")] = 1,
            timeout: Annotated[float, typer.Option(
                help="Seconds a case may take before it counts as an error.")] = 120.0,
            memory_limit: Annotated[float, typer.Option(
                help="MB of resident memory a worker may use before its case is an error.")]
            = 6144.0,
            fail_under: Annotated[float | None, typer.Option(
                help="Exit 1 when the pass rate (percent) is below this.")] = None,
            format: FormatOption = Format.human) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from modelport.conformance import run_conformance
    from modelport.io import check_output_path, to_jsonable, write_bytes

    if json_path is not None:
        check_output_path(json_path, (".json",))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[tally]}"), TimeElapsedColumn(), console=stderr,
                  transient=True, disable=not stderr.is_terminal) as bar:
        task = bar.add_task(f"conformance {backend}", total=None, tally="")
        tally = {"pass": 0, "fail": 0, "error": 0, "skip": 0}

        def on_result(result: object) -> None:
            tally[getattr(result, "status")] += 1  # noqa: B009
            bar.update(task, advance=1, tally=" ".join(f"{s} {n}" for s, n in tally.items()))

        report = run_conformance(backend, kinds=_kinds(kinds), pattern=k, jobs=jobs,
                                 timeout=timeout, memory_limit_mb=memory_limit,
                                 on_start=lambda n: bar.update(task, total=n),
                                 on_result=on_result)
    data = report.to_dict()
    if json_path is not None:
        import json

        write_bytes(json_path, json.dumps(to_jsonable(data), indent=1).encode())
    rate = 100 * report.pass_rate()
    passed = fail_under is None or rate >= fail_under

    def render() -> None:
        table = Table("kind", "pass", "fail", "error", "skip", "total", "pass rate",
                      title=f"{backend} {report.backend_version or ''} on the onnx "
                      f"{report.onnx_version} suite", title_justify="left")
        for kind in report.kinds:
            c = report.counts(kind)
            table.add_row(kind, *(str(c[s]) for s in ("pass", "fail", "error", "skip", "total")),
                          f"{100 * report.pass_rate(kind):.1f}%")
        stdout.print(table)
        worst = sorted(((op, c) for op, c in report.by_op_type().items() if c["pass"] < c["total"]),
                       key=lambda item: item[1]["pass"] - item[1]["total"])[:15]
        if worst:
            ops = Table("op type", "pass", "total", "example reason",
                        title="operators with the most non-passing cases", title_justify="left")
            for op, c in worst:
                reason = next(r.reason for r in report.results
                              if r.op_type == op and r.status != "pass")
                ops.add_row(esc(op), str(c["pass"]), str(c["total"]), esc(reason[:100]))
            stdout.print(ops)
        if json_path is not None:
            stdout.print(f"report written to {esc(json_path)}")
        if fail_under is not None:
            verdict(passed, f"pass rate {rate:.1f}% (needed {fail_under:g}%)")

    emit(format, data, render)
    if not passed:
        raise typer.Exit(1)
