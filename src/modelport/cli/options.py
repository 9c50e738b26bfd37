"""Options that several commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelArg = Annotated[Path, typer.Argument(help="The ONNX model file.", show_default=False)]
BackendsOption = Annotated[list[str], typer.Option(
    "--backend", "-b", metavar="NAME",
    help="A backend (repeat for several); see `modelport backends`.")]
InputsOption = Annotated[list[str] | None, typer.Option(
    "--inputs", "-i", metavar="FILE",
    help="Feeds from a .npz (keys are input names) or NAME=file.npy; repeatable. Without it, "
    "random feeds are generated from the model's signature.")]
DimOption = Annotated[list[str] | None, typer.Option(
    "--dim", "-d", metavar="NAME=SIZE",
    help="Size of a symbolic dimension for generated feeds, e.g. batch=8 (repeatable; others "
    "default to 1).")]
SeedOption = Annotated[int, typer.Option(help="Seed for generated feeds.")]
AtolOption = Annotated[float, typer.Option(help="Absolute tolerance: |a - b| <= atol + rtol*|b|.")]
RtolOption = Annotated[float, typer.Option(help="Relative tolerance: |a - b| <= atol + rtol*|b|.")]
IsolateOption = Annotated[bool, typer.Option(
    help="Run each backend in a worker process of its own: a native crash, the time limit or "
         "the memory limit then stops that backend with a one-line error, not the command.")]
TimeoutOption = Annotated[float, typer.Option(
    metavar="SECONDS", help="Stop a backend (a check) that takes longer than this (with "
    "--isolate).")]
MemoryLimitOption = Annotated[float | None, typer.Option(
    "--memory-limit", metavar="MB", show_default="3/4 of this machine's memory",
    help="Stop a backend whose worker process holds more memory than this (with --isolate).")]
