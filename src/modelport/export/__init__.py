"""Exporters from source frameworks to ONNX; each verifies the file against its source.

``modelport.export.torch(...)`` exports a PyTorch module. Framework imports happen inside the
exporter modules, so importing this package imports no framework.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelport.export.base import ExportAttempt, ExportResult, Verification

if TYPE_CHECKING:
    import torch as _torch

__all__ = ["ExportAttempt", "ExportResult", "Verification", "torch"]


def torch(model: _torch.nn.Module, args: Any, path: str | os.PathLike[str], *,
          input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
          dynamic_batch: bool = True, dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
          opset: int | None = None, exporter: str = "dynamo", fallback: bool = True,
          verify: bool = True, verify_backend: str = "onnxruntime", second_batch: int | None = None,
          atol: float = 1e-5, rtol: float = 1e-4, report: bool = True) -> ExportResult:
    """Export a PyTorch module to ONNX and verify the file against the module.

    Args:
        model: the module; it is put in eval mode.
        args: example inputs: a tensor or a tuple of tensors.
        path: the ``.onnx`` file to write. Weights go to ``<path>.data`` only when the model is
            over protobuf's 2 GB limit.
        input_names, output_names: graph names; default ``input``/``output`` (numbered when
            there are several).
        dynamic_batch: make axis 0 of every input and output a dimension named ``batch``.
        dynamic_axes: explicit dynamic axes (``{"input": {0: "batch", 1: "seq"}}``); overrides
            ``dynamic_batch``.
        opset: the ONNX opset to target; the exporter's default when not given.
        exporter: ``"dynamo"`` (``torch.export`` based, the default) or ``"torchscript"``.
        fallback: when the chosen exporter fails, try the other one; every attempt is reported.
        verify: run the file with ``verify_backend`` on the example inputs and on a second
            batch size (``second_batch``, default ``2 * batch + 1``) and compare with the module.
        atol, rtol: tolerances of the verification.
        report: print the attempts and the verification (``ExportResult.summary``) to stderr.

    Returns:
        the written path, the exporter that succeeded, every attempt, and the verification.

    Raises:
        ExportError: every exporter failed (the message carries each one's error).
    """
    from modelport.export.pytorch import export_torch

    result = export_torch(model, args, path, input_names=input_names,
                          output_names=output_names, dynamic_batch=dynamic_batch,
                          dynamic_axes=dynamic_axes, opset=opset, exporter=exporter,
                          fallback=fallback, verify=verify, verify_backend=verify_backend,
                          second_batch=second_batch, atol=atol, rtol=rtol)
    if report:
        print(result.summary(), file=sys.stderr)
    return result
