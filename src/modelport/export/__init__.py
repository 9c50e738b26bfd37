"""Exporters from source frameworks to ONNX; each verifies the file against its source.

``torch`` (torch.onnx), ``keras`` / ``tensorflow`` (tf2onnx), ``sklearn`` (skl2onnx),
``lightgbm`` and ``xgboost`` (onnxmltools), ``jax`` (jax2onnx). Each writes atomically: the
file replaces the target only once it agrees with the source framework at the example batch
and at another batch size. Framework imports happen inside the exporter modules, so importing
this package imports no framework.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelport.export.base import ExportAttempt, ExportResult, Verification

if TYPE_CHECKING:
    import torch as _torch

__all__ = ["ExportAttempt", "ExportResult", "Verification", "jax", "keras", "lightgbm",
           "sklearn", "tensorflow", "torch", "xgboost"]


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
    return _reported(result, report)


def keras(model: Any, inputs: Any, path: str | os.PathLike[str], *,
          input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
          opset: int | None = None, inputs_as_nchw: Sequence[str] = (),
          dynamic_batch: bool = True, verify: bool = True, verify_backend: str = "onnxruntime",
          second_batch: int | None = None, atol: float = 1e-5, rtol: float = 1e-4,
          report: bool = True) -> ExportResult:
    """Export a Keras model, a ``tf.function`` (or any callable of tensors) or a SavedModel
    folder to ONNX with tf2onnx, and verify the file against the source.

    Args:
        model: a ``keras.Model``, a ``tf.function`` or callable, or the path of a SavedModel
            folder (its ``serving_default`` signature, inputs and outputs by its names).
        inputs: example inputs: an array, a list of arrays in call order, or a dict by name.
        path: the ``.onnx`` file to write.
        input_names, output_names: graph names; default ``input``/``output`` (numbered when
            there are several), a dict's keys, or the SavedModel's names.
        opset: the ONNX opset; tf2onnx's default when not given.
        inputs_as_nchw: inputs the file takes channels-first (tf2onnx transposes them).
        dynamic_batch: make axis 0 of every input a dimension named ``batch``.
        verify, verify_backend, second_batch, atol, rtol, report: as :func:`torch`.
    """
    from modelport.export.tf_keras import export_tensorflow

    return _reported(export_tensorflow(
        model, inputs, path, input_names=input_names, output_names=output_names, opset=opset,
        inputs_as_nchw=inputs_as_nchw, dynamic_batch=dynamic_batch, verify=verify,
        verify_backend=verify_backend, second_batch=second_batch, atol=atol, rtol=rtol),
        report)


tensorflow = keras


def sklearn(model: Any, x: Any, path: str | os.PathLike[str], *, opset: int | None = None,
            zipmap: bool = False, dtype: str = "float32", dynamic_batch: bool = True,
            verify: bool = True, verify_backend: str = "onnxruntime",
            second_batch: int | None = None, atol: float = 1e-5, rtol: float = 1e-4,
            report: bool = True) -> ExportResult:
    """Export a fitted scikit-learn estimator or pipeline to ONNX with skl2onnx, and verify the
    file against it.

    Args:
        model: the fitted estimator or pipeline (a ColumnTransformer takes a DataFrame).
        x: example rows: a matrix (one input, ``input``) or a pandas DataFrame (an input per
            column, by its name, of shape ``(rows, 1)``; strings stay strings).
        zipmap: a classifier's probabilities as ZipMap's sequence of maps (a dict per row,
            what onnxruntime returns) instead of a matrix.
        dtype: ``float32`` or ``float64``: the float type of the inputs and of the graph.
        verify: compare labels (equal; a row where the estimator's two best classes tie
            within ``atol`` is counted and reported) and probabilities, or ``predict`` or
            ``transform``, at ``x`` and at ``second_batch`` rows drawn from it.
        opset, dynamic_batch, verify_backend, atol, rtol, report: as :func:`torch`.
    """
    return _estimator("sklearn", model, x, path, opset=opset, zipmap=zipmap, dtype=dtype,
                      dynamic_batch=dynamic_batch, verify=verify, verify_backend=verify_backend,
                      second_batch=second_batch, atol=atol, rtol=rtol, report=report)


def lightgbm(model: Any, x: Any, path: str | os.PathLike[str], *, opset: int | None = None,
             zipmap: bool = False, dynamic_batch: bool = True, verify: bool = True,
             verify_backend: str = "onnxruntime", second_batch: int | None = None,
             atol: float = 1e-5, rtol: float = 1e-4, report: bool = True) -> ExportResult:
    """Export a LightGBM model (the scikit-learn API: ``LGBMClassifier``, ``LGBMRegressor``)
    with onnxmltools, opset 15 at most, and verify it as :func:`sklearn` does."""
    return _estimator("lightgbm", model, x, path, opset=opset, zipmap=zipmap, dtype="float32",
                      dynamic_batch=dynamic_batch, verify=verify, verify_backend=verify_backend,
                      second_batch=second_batch, atol=atol, rtol=rtol, report=report)


def xgboost(model: Any, x: Any, path: str | os.PathLike[str], *, opset: int | None = None,
            dynamic_batch: bool = True, verify: bool = True,
            verify_backend: str = "onnxruntime", second_batch: int | None = None,
            atol: float = 1e-5, rtol: float = 1e-4, report: bool = True) -> ExportResult:
    """Export an XGBoost model (``XGBClassifier``, ``XGBRegressor``) with onnxmltools, opset
    15 at most, and verify it as :func:`sklearn` does."""
    return _estimator("xgboost", model, x, path, opset=opset, zipmap=False, dtype="float32",
                      dynamic_batch=dynamic_batch, verify=verify, verify_backend=verify_backend,
                      second_batch=second_batch, atol=atol, rtol=rtol, report=report)


def jax(function: Any, inputs: Any, path: str | os.PathLike[str], *, params: Any = None,
        input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
        opset: int | None = None, dynamic_batch: bool = True, verify: bool = True,
        verify_backend: str = "onnxruntime", second_batch: int | None = None,
        atol: float = 1e-5, rtol: float = 1e-4, report: bool = True) -> ExportResult:
    """Export a JAX function or a Flax module to ONNX with jax2onnx, with a symbolic batch,
    and verify the file against it.

    Args:
        function: a function of arrays (jitted or not), a Flax NNX module, or, with
            ``params``, a Flax Linen module or a function of ``(params, *inputs)``.
        inputs: example inputs: an array or a list of arrays in call order.
        params: the parameters a Linen module's ``apply`` (or the function) takes first.
        opset: the ONNX opset; jax2onnx's default when not given.
        input_names, output_names, dynamic_batch, verify, verify_backend, second_batch,
        atol, rtol, report: as :func:`torch`.
    """
    from modelport.export.jax_flax import export_jax

    return _reported(export_jax(
        function, inputs, path, params=params, input_names=input_names,
        output_names=output_names, opset=opset, dynamic_batch=dynamic_batch, verify=verify,
        verify_backend=verify_backend, second_batch=second_batch, atol=atol, rtol=rtol),
        report)


def _estimator(framework: str, model: Any, x: Any, path: str | os.PathLike[str], *,
               report: bool, **options: Any) -> ExportResult:
    from modelport.export.classic import export_estimator

    return _reported(export_estimator(model, x, path, framework=framework, **options), report)


def _reported(result: ExportResult, report: bool) -> ExportResult:
    if report:
        print(result.summary(), file=sys.stderr)
    return result
