from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelport.cli.options import AtolOption, RtolOption
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
from modelport.errors import ExportError

app = typer.Typer(help="Export a model from a source framework to ONNX and verify it.",
                  no_args_is_help=True)

_DTYPES = ("float32", "float64", "float16", "int64", "int32", "bool")


def _example_inputs(shapes: list[str]) -> tuple[list[str], list[object]]:
    """``["input=1x3x224x224", "ids=1x128:int64"]`` into names and random example tensors."""
    import torch

    names: list[str] = []
    tensors: list[object] = []
    gen = torch.Generator().manual_seed(0)
    for item in shapes:
        name, sep, rest = item.partition("=")
        dims_text, _, dtype_name = rest.partition(":")
        dtype_name = dtype_name or "float32"
        try:
            dims = [int(d) for d in dims_text.lower().split("x")]
        except ValueError:
            dims = []
        if not sep or not name or not dims or dtype_name not in _DTYPES:
            raise ExportError(f"--shape {item!r}: expected NAME=DxDxD[:DTYPE], e.g. "
                              f"input=1x3x224x224 or ids=1x128:int64 (dtypes: "
                              f"{', '.join(_DTYPES)})")
        dtype = getattr(torch, dtype_name)
        if dtype.is_floating_point:
            tensor = torch.randn(dims, generator=gen, dtype=dtype)
        elif dtype == torch.bool:
            tensor = torch.rand(dims, generator=gen) < 0.5
        else:
            tensor = torch.randint(0, 10, dims, generator=gen, dtype=dtype)
        names.append(name)
        tensors.append(tensor)
    return names, tensors


def render_result(result: object) -> None:
    from modelport.export.base import ExportResult

    assert isinstance(result, ExportResult)
    for attempt in result.attempts:
        state = "[green]ok[/]" if attempt.ok else f"[red]failed[/]: {esc(attempt.error)}"
        stdout.print(f"exporter {attempt.exporter}: {state} ({attempt.seconds:.1f} s)")
    stdout.print(esc(result.written_line))
    verification = result.verification
    if verification is not None:
        table = Table("inputs", "output", "max abs", "max rel", "",
                      title=f"verified with {verification.backend} against the source "
                      f"(atol {verification.atol:g}, rtol {verification.rtol:g})",
                      title_justify="left")
        for case in verification.cases:
            for o in case.outputs:
                table.add_row(esc(case.inputs), esc(o.name), fmt_float(o.max_abs_error),
                              fmt_float(o.max_rel_error),
                              "[green]ok[/]" if o.passed else f"[red]differs[/] {esc(o.note)}")
        stdout.print(table)
    verdict(result.passed)


@app.command("torch", help=(
    "Export a PyTorch module: SPEC is FILE.py:FACTORY or MODULE:FACTORY, a callable that "
    "returns the nn.Module. The dynamo exporter runs first, the TorchScript one if it fails; "
    "the file is then verified against the module at the example batch and another.\n\n"
    "Example: `modelport export torch net.py:build --shape input=4x20 -o net.onnx`"))
def torch_command(
        spec: Annotated[str, typer.Argument(help="FILE.py:FACTORY or MODULE:FACTORY.")],
        shape: Annotated[list[str], typer.Option(
            metavar="NAME=DxD[:DTYPE]",
            help="An example input as NAME=DxD[:DTYPE], in forward()'s order (repeatable).")],
        output: Annotated[Path, typer.Option("--output", "-o", help="The .onnx file.")],
        output_name: Annotated[list[str] | None, typer.Option(
            metavar="NAME", help="Names of the graph outputs, in order (repeatable).")] = None,
        dynamic_batch: Annotated[bool, typer.Option(
            help="Make axis 0 of every input and output a dimension named 'batch'.")] = True,
        opset: Annotated[int | None, typer.Option(help="Target ONNX opset.")] = None,
        exporter: Annotated[str, typer.Option(help="dynamo or torchscript.")] = "dynamo",
        fallback: Annotated[bool, typer.Option(
            help="Try the other exporter when the first fails.")] = True,
        verify: Annotated[bool, typer.Option(help="Verify against the module.")] = True,
        atol: AtolOption = 1e-5, rtol: RtolOption = 1e-4,
        format: FormatOption = Format.human) -> None:
    import modelport.export
    from modelport.export.pytorch import load_module
    from modelport.io import check_output_path

    check_output_path(output, (".onnx",), inputs=(spec.rpartition(":")[0],))
    names, tensors = _example_inputs(shape)
    with progress(None, "export") as step:
        step(f"{spec} with {exporter}")
        result = modelport.export.torch(
            load_module(spec), tuple(tensors), output, input_names=names,
            output_names=output_name or None, dynamic_batch=dynamic_batch, opset=opset,
            exporter=exporter, fallback=fallback, verify=verify, atol=atol, rtol=rtol,
            report=False)
    emit(format, result, lambda: render_result(result))
    if not result.passed:
        raise typer.Exit(1)
