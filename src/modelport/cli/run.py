from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from modelport.backends import backend_ref, check_backends
from modelport.cli.options import (
    DimOption,
    InputsOption,
    IsolateOption,
    MemoryLimitOption,
    ModelArg,
    SeedOption,
    TimeoutOption,
)
from modelport.cli.output import Format, FormatOption, emit, esc, fmt_float, stdout
from modelport.workers import call_isolated

NAME = "run"
HELP = ("Run a model on one backend and summarise its outputs; `--save out.npz` keeps them.\n\n"
        "Example: `modelport run model.onnx -b openvino --dim batch=8`")


def _summary(name: str, value: np.ndarray) -> dict[str, Any]:
    array = np.asarray(value)
    numeric = array.dtype.kind in "fiub" and array.size > 0
    return {"name": name, "dtype": str(array.dtype), "shape": list(array.shape),
            "min": float(array.min()) if numeric else None,
            "max": float(array.max()) if numeric else None,
            "mean": float(array.astype(np.float64).mean()) if numeric else None}


def command(model: ModelArg,
            backend: Annotated[str, typer.Option("--backend", "-b", help="The backend.")]
            = "onnxruntime",
            inputs: InputsOption = None, dim: DimOption = None, seed: SeedOption = 0,
            save: Annotated[Path | None, typer.Option(
                help="Write the outputs to this .npz file, keyed by output name.")] = None,
            save_inputs: Annotated[Path | None, typer.Option(
                help="Write the feeds to this .npz file, keyed by input name: `--inputs` "
                     "reads it back.")] = None,
            isolate: IsolateOption = True, timeout: TimeoutOption = 600.0,
            memory_limit: MemoryLimitOption = None,
            format: FormatOption = Format.human) -> None:
    import modelport
    from modelport.comparison import run_backend
    from modelport.inputs import make_feeds, parse_dims
    from modelport.io import check_output_path, save_npz
    from modelport.model import has_external_data, input_specs, load

    check_backends([backend])
    given: tuple[str | Path, ...] = (model, *(i.rpartition("=")[2] for i in inputs or []))
    for path in (save, save_inputs):
        if path is not None:
            check_output_path(path, (".npz",), inputs=given)
    proto = load(model, load_external_data=False)  # checked, weights left where they are
    feeds = make_feeds(input_specs(proto), inputs or [], dims=parse_dims(dim or []), seed=seed)
    # By path, so an engine that reads files takes a model over 2 GiB from its folder.
    source = str(Path(model).resolve())
    if isolate:
        outputs = call_isolated(run_backend, backend, backend_ref(backend),
                                source if has_external_data(proto) else
                                proto.SerializeToString(), feeds, timeout=timeout,
                                memory_limit_mb=memory_limit, what=f"backend {backend!r}")
    else:
        outputs = modelport.get_backend(backend).prepare(source).run(feeds)
    if save is not None:
        save_npz(save, outputs)
    if save_inputs is not None:
        save_npz(save_inputs, feeds)
    rows = {"inputs": [_summary(k, v) for k, v in feeds.items()],
            "outputs": [_summary(k, v) for k, v in outputs.items()]}

    def render() -> None:
        table = Table("", "name", "dtype", "shape", "min", "max", "mean",
                      title=esc(f"{model} on {backend}"), title_justify="left")
        for kind, summaries in rows.items():
            for row in summaries:
                table.add_row(kind[:-1], esc(row["name"]), row["dtype"], esc(row["shape"]),
                              fmt_float(row["min"]), fmt_float(row["max"]),
                              fmt_float(row["mean"]))
        stdout.print(table)
        for what, path in (("outputs", save), ("inputs", save_inputs)):
            if path:
                stdout.print(f"{what} written to {esc(path)}")

    emit(format, {"backend": backend, **rows, "saved": str(save) if save else None,
                  "saved_inputs": str(save_inputs) if save_inputs else None}, render)
