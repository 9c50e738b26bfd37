from __future__ import annotations

from rich.table import Table

from modelport.cli.output import Format, FormatOption, emit, esc, stdout

NAME = "backends"
HELP = "List the backends, whether each can run here, and what to install if not."


def command(format: FormatOption = Format.human) -> None:
    from modelport.backends import list_backends

    infos = list_backends()

    def render() -> None:
        table = Table("backend", "kind", "available", "version / what to do")
        for info in infos:
            table.add_row(info.name, info.kind, "[green]yes[/]" if info.available else "[red]no[/]",
                          esc(info.version or info.reason or ""))
        stdout.print(table)

    emit(format, [i.to_dict() for i in infos], render)
