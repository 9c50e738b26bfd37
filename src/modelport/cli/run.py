from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from modelport.cli.options import DimOption, InputsOption, ModelArg, SeedOption
from modelport.cli.output import Format, FormatOption, emit, esc, fmt_float, stdout

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
                help="Write the outputs (and feeds, as feed:NAME) to this .npz file.")] = None,
            format: FormatOption = Format.human) -> None:
    import modelport
    from modelport.inputs import make_feeds, parse_dims
    from modelport.io import save_npz

    session = modelport.get_backend(backend).prepare(model)
    feeds = make_feeds(session.inputs, inputs or [], dims=parse_dims(dim or []), seed=seed)
    outputs = session.run(feeds)
    if save is not None:
        save_npz(save, {**outputs, **{f"feed:{k}": v for k, v in feeds.items()}})
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
        if save:
            stdout.print(f"outputs written to {save}")

    emit(format, {"backend": backend, **rows, "saved": str(save) if save else None}, render)
