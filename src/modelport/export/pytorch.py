"""PyTorch to ONNX with ``torch.onnx.export``: the dynamo exporter, the TorchScript one as the
fallback, written atomically and verified against the module."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelport.errors import ExportError, InputError
from modelport.export.base import (
    Case,
    ExportAttempt,
    ExportResult,
    Verification,
    batch_of,
    default_names,
    failure_summary,
    load_spec,
    move_into_place,
    quiet,
    verify_file,
)

EXPORTERS = ("dynamo", "torchscript")


def export_torch(model: torch.nn.Module, args: Any, path: str | os.PathLike[str], *,
                 input_names: Sequence[str] | None, output_names: Sequence[str] | None,
                 dynamic_batch: bool, dynamic_axes: Mapping[str, Mapping[int, str]] | None,
                 opset: int | None, exporter: str, fallback: bool, verify: bool,
                 verify_backend: str, second_batch: int | None, atol: float,
                 rtol: float) -> ExportResult:
    """See :func:`modelport.export.torch`."""
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    model = model.eval()
    args = _as_tuple(args)
    try:
        with torch.no_grad():
            expected = _flatten(model(*args))
    except Exception as exc:  # the example does not fit the module: the caller's to fix
        shown = ", ".join(_describe(a) for a in args)
        raise InputError(f"the module fails on the example inputs ({shown}): "
                         f"{failure_summary(exc)}") from exc
    input_names = list(input_names or default_names("input", len(args)))
    output_names = list(output_names or default_names("output", len(expected)))
    if dynamic_axes is None and dynamic_batch:
        dynamic_axes = {name: {0: "batch"} for name in [*input_names, *output_names]}
    order = [exporter] + ([e for e in EXPORTERS if e != exporter] if fallback else [])
    attempts: list[ExportAttempt] = []
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Each attempt writes into a scratch folder beside the target; the files replace the
    # target only once the export is verified, so a failure leaves the previous file as it was.
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as tmp:
        for name in order:
            start = time.perf_counter()
            scratch = Path(tmp) / name / target.name
            try:
                files = _export_once(name, model, args, scratch, input_names, output_names,
                                     dynamic_axes, opset)
            except Exception as exc:  # exporters raise anything; each failure is reported
                attempts.append(ExportAttempt(name, False, time.perf_counter() - start,
                                              failure_summary(exc)))
                continue
            attempts.append(ExportAttempt(name, True, time.perf_counter() - start))
            result = ExportResult(str(target), name, attempts, external_data=files[1:])
            if verify:
                result.verification = _verify(model, args, scratch, expected, dynamic_axes,
                                              input_names, verify_backend, second_batch, atol,
                                              rtol)
            result.written = result.passed
            if result.written:
                move_into_place(scratch, files, target)
            return result
    raise ExportError("every exporter failed: " + "; ".join(
        f"{a.exporter}: {a.error}" for a in attempts))


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')}{list(value.shape)}"
    return type(value).__name__


def _export_once(exporter: str, model: torch.nn.Module, args: tuple[Any, ...], scratch: Path,
                 input_names: list[str], output_names: list[str],
                 dynamic_axes: Mapping[str, Mapping[int, str]] | None,
                 opset: int | None) -> list[str]:
    """Export to ``scratch`` in a folder of its own; return the written files' names, the
    model first."""
    scratch.parent.mkdir()
    with _quiet():
        kwargs: dict[str, Any] = {
            "input_names": input_names, "output_names": output_names,
            "opset_version": opset, "verbose": False,
            "dynamic_axes": {k: dict(v) for k, v in (dynamic_axes or {}).items()} or None,
        }
        if exporter == "dynamo":
            program = torch.onnx.export(model, args, None, dynamo=True, **kwargs)
            assert program is not None
            # external_data=None: a single file unless the weights pass protobuf's 2 GB.
            program.save(str(scratch), external_data=None)
        else:
            torch.onnx.export(model, args, str(scratch), dynamo=False, **kwargs)
    files = sorted(p.name for p in scratch.parent.iterdir() if p != scratch)
    return [scratch.name, *files]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """``quiet``, and torch's registration log, which says "torchvision is not installed" on
    every export."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with quiet(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*dynamic_axes.*")
            yield
    finally:
        registration.setLevel(level)


def _verify(model: torch.nn.Module, args: tuple[Any, ...], path: Path, expected: list[np.ndarray],
            dynamic_axes: Mapping[str, Mapping[int, str]] | None, input_names: list[str],
            backend: str, second_batch: int | None, atol: float, rtol: float) -> Verification:
    cases = [(args, expected)]
    batch = batch_of(args)
    batched = dynamic_axes and all(0 in dynamic_axes.get(n, {}) for n in input_names)
    if batch is not None and batched:
        other = _resize_batch(args, second_batch or 2 * batch + 1)
        with torch.no_grad():
            cases.append((other, _flatten(model(*other))))
    return verify_file(path, backend, [
        Case(dict(zip(input_names, _flatten(case_args), strict=True)), case_expected,
             batch_of(case_args)) for case_args, case_expected in cases], atol, rtol)


def _as_tuple(args: Any) -> tuple[Any, ...]:
    return tuple(args) if isinstance(args, list | tuple) else (args,)


def _flatten(value: Any) -> list[np.ndarray]:
    """Tensors in a (nested) output, in the order the exporters flatten them."""
    leaves, _ = torch.utils._pytree.tree_flatten(value)
    return [leaf.detach().cpu().numpy() if isinstance(leaf, torch.Tensor) else np.asarray(leaf)
            for leaf in leaves]


def _resize_batch(args: tuple[Any, ...], batch: int) -> tuple[Any, ...]:
    """Inputs like ``args`` with ``batch`` rows: normal floats, integers within the range seen."""
    gen = torch.Generator().manual_seed(1)
    out = []
    for a in args:
        shape = (batch, *a.shape[1:])
        if a.is_floating_point():
            out.append(torch.randn(shape, generator=gen, dtype=a.dtype))
        elif a.dtype == torch.bool:
            out.append(torch.rand(shape, generator=gen) < 0.5)
        else:
            low, high = int(a.min()), int(a.max()) + 1
            out.append(torch.randint(low, high, shape, generator=gen, dtype=a.dtype))
    return tuple(out)


def load_module(spec: str) -> torch.nn.Module:
    """Build a module from ``file.py:factory`` or ``package.module:factory``.

    The factory is called without arguments and must return an ``nn.Module``.
    """
    built = load_spec(spec)
    if not isinstance(built, torch.nn.Module):
        raise ExportError(f"{spec} gave {type(built).__name__}, not a torch.nn.Module")
    return built
