"""One output object for every command: results on stdout (a rich rendering or JSON),
diagnostics and progress on stderr."""

from __future__ import annotations

import contextlib
import enum
import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from modelport.errors import printable
from modelport.io import to_jsonable

# Piped output is read by tools and people in wide terminals: don't fold tables at 80 columns.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True, highlight=False)


def esc(value: object) -> str:
    """Text from a model or the user, safe to print: rich's [markup] escaped (shapes look like
    tags) and control characters written out (a name may hold terminal escapes)."""
    return escape(printable(str(value)))


class Format(enum.StrEnum):
    human = "human"
    json = "json"


FormatOption = Annotated[Format, typer.Option(
    "--format", help="human: tables; json: one JSON document on stdout.")]


def emit(fmt: Format, data: Any, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or call ``render`` to draw it for people."""
    if fmt is Format.json:
        print(json.dumps(to_jsonable(data), indent=2, allow_nan=False))
    else:
        render()


def verdict(passed: bool, what: str = "") -> None:
    """The final PASSED / FAILED line of a command that checks something."""
    text = "[bold green]PASSED[/]" if passed else "[bold red]FAILED[/]"
    stdout.print(f"{text}{' ' + esc(what) if what else ''}")


def fmt_float(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}e}" if abs(value) < 1e-3 or abs(value) >= 1e5 else \
        f"{value:.{digits + 2}g}"


@contextlib.contextmanager
def progress(total: int | None, description: str) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr; the yielded function advances it with a new label."""
    if not stderr.is_terminal:  # logs and pipes get no animation, nor its stray blank line
        yield lambda label: None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}") if total else TextColumn(""),
               TimeElapsedColumn()]
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(description, total=total)
        first = [True]

        def step(label: str) -> None:
            if not first[0]:
                bar.advance(task)
            first[0] = False
            bar.update(task, description=f"{description}: {label}")

        yield step
