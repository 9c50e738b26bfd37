"""Entry point: builds the app from one module per command and turns errors into one line."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated

import typer

from modelport.cli import (
    backends,
    bench,
    bisect,
    check,
    compare,
    conformance,
    demo,
    export,
    inspect,
    run,
)
from modelport.cli.output import stderr

app = typer.Typer(
    name="modelport",
    help="Run a model trained in one framework in any other, through ONNX, and prove that the "
         "answers agree.\n\nStart with `modelport demo`, then `modelport backends`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",
)
for module in (backends, inspect, check, run, compare, bisect, bench, conformance, demo):
    app.command(module.NAME, help=module.HELP)(module.command)
app.add_typer(export.app, name="export")

_debug = [bool(os.environ.get("MODELPORT_DEBUG"))]


@app.callback()
def _options(debug: Annotated[bool, typer.Option(
        "--debug", help="Show the full traceback of an error (or set MODELPORT_DEBUG=1).")]
        = False) -> None:
    _debug[0] = _debug[0] or debug


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return its exit code. Errors become one line on stderr and exit code 1."""
    try:
        app(args=argv, prog_name="modelport")  # exits through SystemExit, also on success
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        return 130
    except Exception as exc:
        from modelport.errors import ModelportError, one_line

        if _debug[0]:
            traceback.print_exc()
        if isinstance(exc, ModelportError):
            print(f"modelport: error: {one_line(exc)}", file=sys.stderr)
        else:
            print(f"modelport: internal error ({type(exc).__name__}): {one_line(exc)}"
                  + ("" if _debug[0] else " (--debug shows the traceback)"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
