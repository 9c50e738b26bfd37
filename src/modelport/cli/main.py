"""Entry point: builds the app from one module per command and turns errors into one line."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated, Any

import typer
import typer.core
from typer._click import exceptions as usage  # typer's own click, which it raises from

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

def _flags_take_no_placeholder() -> None:
    """typer prints a type after every option, flags included (``--isolate <bool>``); a flag
    takes no value, so its help shows none."""
    option = typer.core.TyperOption
    shown = option.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    option.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_placeholder()


@app.callback()
def _options(debug: Annotated[bool, typer.Option(
        "--debug", help="Show the full traceback of an error, wherever it stands on the command "
                        "line (or set MODELPORT_DEBUG=1).")] = False) -> None:
    """--debug is taken out of the arguments by ``main``; declared here for the help."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return its exit code. Errors become one line on stderr: exit code 2 for a
    command line that cannot be parsed, 1 for everything else."""
    args = list(sys.argv[1:] if argv is None else argv)
    end = args.index("--") if "--" in args else len(args)
    debug = bool(os.environ.get("MODELPORT_DEBUG")) or "--debug" in args[:end]
    args = [a for a in args[:end] if a != "--debug"] + args[end:]
    try:
        code = app(args=args, prog_name="modelport", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except usage.NoArgsIsHelpError as exc:  # the help is printed already, or is the message
        if exc.format_message().strip():
            print(exc.format_message(), file=sys.stderr)
        return 2
    except usage.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "modelport"
        print(f"modelport: error: {exc.format_message()} (see `{command} --help`)",
              file=sys.stderr)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        stderr.print("interrupted")
        return 130
    except Exception as exc:
        from modelport.errors import ModelportError, one_line

        if debug:
            traceback.print_exc()
        if isinstance(exc, ModelportError):
            print(f"modelport: error: {one_line(exc)}", file=sys.stderr)
        else:
            print(f"modelport: internal error ({type(exc).__name__}): {one_line(exc)}"
                  + ("" if debug else " (--debug shows the traceback)"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
