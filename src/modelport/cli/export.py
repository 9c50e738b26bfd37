from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
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


def _example_arrays(shapes: list[str]) -> tuple[list[str], list[np.ndarray]]:
    """``["input=1x3x224x224", "ids=1x128:int64"]`` into names and random example arrays."""
    names: list[str] = []
    arrays: list[np.ndarray] = []
    rng = np.random.default_rng(0)
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
        dtype = np.dtype(dtype_name)
        if dtype.kind == "f":
            array = rng.standard_normal(dims).astype(dtype)
        elif dtype.kind == "b":
            array = rng.random(dims) < 0.5
        else:
            array = rng.integers(0, 10, dims).astype(dtype)
        names.append(name)
        arrays.append(array)
    return names, arrays


def _model_and_inputs(spec: str, parts: int = 2) -> tuple[Any, ...]:
    """What ``FILE.py:FUNCTION`` returns: the model and its example inputs (and, for jax, the
    parameters)."""
    from modelport.export.base import load_spec

    built = load_spec(spec)
    if not isinstance(built, tuple) or len(built) not in (2, parts):
        shape = "(model, example_inputs)" + (" or (module, example_inputs, params)"
                                             if parts == 3 else "")
        raise ExportError(f"{spec} must return {shape}, not {type(built).__name__}")
    return built


def _export(format: Format, spec: str, output: Path, call: Callable[[], object]) -> None:
    """Check the output path, run the exporter with progress, render, exit 1 on failure."""
    from modelport.export.base import ExportResult
    from modelport.io import check_output_path

    check_output_path(output, (".onnx",), inputs=(spec.rpartition(":")[0] or spec,))
    with progress(None, "export") as step:
        step(spec)
        result = call()
    assert isinstance(result, ExportResult)
    emit(format, result, lambda: render_result(result))
    if not result.passed:
        raise typer.Exit(1)


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
    import torch

    import modelport.export
    from modelport.export.pytorch import load_module

    names, arrays = _example_arrays(shape)
    _export(format, spec, output, lambda: modelport.export.torch(
        load_module(spec), tuple(torch.from_numpy(a) for a in arrays), output,
        input_names=names, output_names=output_name or None, dynamic_batch=dynamic_batch,
        opset=opset, exporter=exporter, fallback=fallback, verify=verify, atol=atol,
        rtol=rtol, report=False))


SpecArg = Annotated[str, typer.Argument(
    help="FILE.py:FUNCTION or MODULE:FUNCTION returning (model, example_inputs).")]
OutputOption = Annotated[Path, typer.Option("--output", "-o", help="The .onnx file.")]
OpsetOption = Annotated[int | None, typer.Option(
    help="Target ONNX opset (default: the converter's).")]
DynamicBatchOption = Annotated[bool, typer.Option(
    help="Make axis 0 of every input (and every output that follows it) a dimension named "
         "'batch', verified at a second batch size.")]
VerifyOption = Annotated[bool, typer.Option(
    help="Verify against the source framework; without it the file is written unchecked.")]
ZipmapOption = Annotated[bool, typer.Option(
    help="A classifier's probabilities as ZipMap's sequence of maps (a dict per row, as "
         "onnxruntime returns it) instead of a matrix.")]


@app.command("keras", help=(
    "Export a Keras 3 model, a tf.function or any callable of tensors with tf2onnx (traced "
    "as a tf.function: tf2onnx's from_keras fails on Keras 3). SPEC returns (model, "
    "example_inputs); the inputs are an array, a list in call order, or a dict by name. A "
    "SavedModel folder is taken too, with --shape for its inputs.\n\n"
    "Example: `modelport export keras cnn.py:build -o cnn.onnx --inputs-as-nchw input`"))
def keras_command(
        spec: Annotated[str, typer.Argument(
            help="FILE.py:FUNCTION returning (model, example_inputs), or a SavedModel "
                 "folder.")],
        output: OutputOption,
        shape: Annotated[list[str] | None, typer.Option(
            metavar="NAME=DxD[:DTYPE]",
            help="For a SavedModel folder: an example input by its signature name "
                 "(repeatable).")] = None,
        output_name: Annotated[list[str] | None, typer.Option(
            metavar="NAME", help="Names of the graph outputs, in order (repeatable).")] = None,
        inputs_as_nchw: Annotated[list[str] | None, typer.Option(
            metavar="NAME", help="An input the file takes channels-first (NCHW); "
                                 "repeatable.")] = None,
        opset: OpsetOption = None, dynamic_batch: DynamicBatchOption = True,
        verify: VerifyOption = True, atol: AtolOption = 1e-5, rtol: RtolOption = 1e-4,
        format: FormatOption = Format.human) -> None:
    import modelport.export

    if Path(spec).is_dir():
        if not shape:
            raise ExportError(f"{spec} is a folder: give its example inputs with --shape "
                              f"NAME=DxD[:DTYPE]")
        names, arrays = _example_arrays(shape)
        model, inputs = str(spec), dict(zip(names, arrays, strict=True))
    else:
        model, inputs = _model_and_inputs(spec)
    _export(format, spec, output, lambda: modelport.export.keras(
        model, inputs, output, output_names=output_name or None,
        inputs_as_nchw=inputs_as_nchw or (), opset=opset, dynamic_batch=dynamic_batch,
        verify=verify, atol=atol, rtol=rtol, report=False))


app.command("tensorflow", help="The same as `modelport export keras`.")(keras_command)


@app.command("sklearn", help=(
    "Export a fitted scikit-learn estimator or pipeline with skl2onnx. SPEC returns "
    "(estimator, X): a matrix, or a pandas DataFrame for a ColumnTransformer (an input per "
    "column; strings stay strings). A classifier is verified on its labels (equal; rows "
    "where its best two classes tie within --atol are counted) and its probabilities.\n\n"
    "Example: `modelport export sklearn pipe.py:build -o pipe.onnx --zipmap`"))
def sklearn_command(
        spec: SpecArg, output: OutputOption, zipmap: ZipmapOption = False,
        dtype: Annotated[str, typer.Option(
            help="float32 or float64: the float type of the inputs and the graph.")]
        = "float32",
        opset: OpsetOption = None, dynamic_batch: DynamicBatchOption = True,
        verify: VerifyOption = True, atol: AtolOption = 1e-5, rtol: RtolOption = 1e-4,
        format: FormatOption = Format.human) -> None:
    import modelport.export

    model, x = _model_and_inputs(spec)
    _export(format, spec, output, lambda: modelport.export.sklearn(
        model, x, output, zipmap=zipmap, dtype=dtype, opset=opset, dynamic_batch=dynamic_batch,
        verify=verify, atol=atol, rtol=rtol, report=False))


@app.command("lightgbm", help=(
    "Export a LightGBM model (LGBMClassifier, LGBMRegressor) with onnxmltools (opset 15 at "
    "most), verified as `export sklearn` does. SPEC returns (model, X)."))
def lightgbm_command(
        spec: SpecArg, output: OutputOption, zipmap: ZipmapOption = False,
        opset: OpsetOption = None, dynamic_batch: DynamicBatchOption = True,
        verify: VerifyOption = True, atol: AtolOption = 1e-5, rtol: RtolOption = 1e-4,
        format: FormatOption = Format.human) -> None:
    import modelport.export

    model, x = _model_and_inputs(spec)
    _export(format, spec, output, lambda: modelport.export.lightgbm(
        model, x, output, zipmap=zipmap, opset=opset, dynamic_batch=dynamic_batch,
        verify=verify, atol=atol, rtol=rtol, report=False))


@app.command("xgboost", help=(
    "Export an XGBoost model (XGBClassifier, XGBRegressor) with onnxmltools (opset 15 at "
    "most), verified as `export sklearn` does. SPEC returns (model, X)."))
def xgboost_command(
        spec: SpecArg, output: OutputOption, opset: OpsetOption = None,
        dynamic_batch: DynamicBatchOption = True, verify: VerifyOption = True,
        atol: AtolOption = 1e-5, rtol: RtolOption = 1e-4,
        format: FormatOption = Format.human) -> None:
    import modelport.export

    model, x = _model_and_inputs(spec)
    _export(format, spec, output, lambda: modelport.export.xgboost(
        model, x, output, opset=opset, dynamic_batch=dynamic_batch, verify=verify, atol=atol,
        rtol=rtol, report=False))


@app.command("jax", help=(
    "Export a JAX function or a Flax module with jax2onnx, with a symbolic batch. SPEC "
    "returns (function, example_inputs) for a function or a Flax NNX module, or (module, "
    "example_inputs, params) for a Flax Linen module.\n\n"
    "Example: `modelport export jax mlp.py:build -o mlp.onnx`"))
def jax_command(
        spec: Annotated[str, typer.Argument(
            help="FILE.py:FUNCTION or MODULE:FUNCTION returning (function, example_inputs) "
                 "or (module, example_inputs, params).")],
        output: OutputOption,
        output_name: Annotated[list[str] | None, typer.Option(
            metavar="NAME", help="Names of the graph outputs, in order (repeatable).")] = None,
        opset: OpsetOption = None, dynamic_batch: DynamicBatchOption = True,
        verify: VerifyOption = True, atol: AtolOption = 1e-5, rtol: RtolOption = 1e-4,
        format: FormatOption = Format.human) -> None:
    import modelport.export

    function, inputs, *params = _model_and_inputs(spec, parts=3)
    _export(format, spec, output, lambda: modelport.export.jax(
        function, inputs, output, params=params[0] if params else None,
        output_names=output_name or None, opset=opset, dynamic_batch=dynamic_batch,
        verify=verify, atol=atol, rtol=rtol, report=False))
