from __future__ import annotations

from rich.table import Table

from modelport.cli.output import Format, FormatOption, emit, esc, stdout

NAME = "backends"
HELP = ("List the backends, whether each can run here (and what to install if not), the "
        "devices each takes and the options of its `prepare` (`--format json` gives their "
        "types, defaults and help).")


def command(format: FormatOption = Format.human) -> None:
    from modelport.backends import list_backends

    infos = list_backends()

    def render() -> None:
        table = Table("backend", "kind", "available", "version / what to do", "devices",
                      "options")
        for info in infos:
            options = ", ".join(f"{o['name']}={o['default']!r}" for o in info.options)
            table.add_row(info.name, info.kind, "[green]yes[/]" if info.available else "[red]no[/]",
                          esc(info.version or info.reason or ""), ", ".join(info.devices),
                          esc(options))
        stdout.print(table)

    emit(format, [i.to_dict() for i in infos], render)
