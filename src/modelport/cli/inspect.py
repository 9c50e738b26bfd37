from __future__ import annotations

from rich.table import Table

from modelport.cli.options import ModelArg
from modelport.cli.output import Format, FormatOption, emit, esc, stdout

NAME = "inspect"
HELP = ("Show a model's IR version, opsets, producer, inputs and outputs (dtypes, symbolic "
        "dims), an operator histogram, and its weights.")


def command(model: ModelArg, format: FormatOption = Format.human) -> None:
    from modelport.model import inspect

    info = inspect(model)

    def render() -> None:
        opsets = ", ".join(f"{d} {v}" for d, v in info.opset_imports.items())
        stdout.print(f"[bold]{esc(model)}[/]  IR {info.ir_version}  opset {opsets}  "
                     f"producer {esc(info.producer or '-')}")
        table = Table("", "name", "dtype", "shape", title="signature", title_justify="left")
        for kind, specs in (("input", info.inputs), ("output", info.outputs)):
            for spec in specs:
                table.add_row(kind, esc(spec.name), spec.dtype_name, esc(spec.shape_str()))
        stdout.print(table)
        ops = Table("op type", "count", title=f"{info.node_count} nodes", title_justify="left")
        for op, count in info.op_histogram.items():
            ops.add_row(esc(op), str(count))
        stdout.print(ops)
        stdout.print(f"initializers: {info.initializer_count}, "
                     f"{info.initializer_bytes:,} bytes")

    emit(format, info, render)
