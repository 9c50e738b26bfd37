"""scikit-learn, LightGBM and XGBoost to ONNX: skl2onnx for scikit-learn estimators and
pipelines, onnxmltools for LightGBM and XGBoost; verified against the estimator.

A classifier is verified on its labels (equal, except where the estimator's two best classes
tie within ``atol``: counted and reported) and on its probabilities, or its decision function
where it has no probabilities; a regressor on ``predict``; a transformer on ``transform``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.errors import ExportError, InputError
from modelport.export.base import Case, ExportResult, export_verified, resample_rows

if TYPE_CHECKING:
    import onnx

FLOAT_TYPES = ("float32", "float64")
# onnxmltools' LightGBM and XGBoost converters write at most this opset.
ONNXMLTOOLS_MAX_OPSET = 15


def export_estimator(model: Any, x: Any, path: str | os.PathLike[str], *, framework: str,
                     opset: int | None, zipmap: bool, dtype: str, dynamic_batch: bool,
                     verify: bool, verify_backend: str, second_batch: int | None, atol: float,
                     rtol: float) -> ExportResult:
    """See :func:`modelport.export.sklearn`."""
    if dtype not in FLOAT_TYPES:
        raise InputError(f"dtype {dtype!r}: choose float32 or float64")
    if framework != "sklearn" and dtype != "float32":
        raise InputError(f"onnxmltools converts {framework} models for float32 inputs only")
    floats = np.dtype(dtype)
    x = _floats_as(x, floats)
    rows = len(x)
    if rows == 0:
        raise InputError("the example inputs have no rows")
    kind, outputs = _source(model, framework)
    cases = [_case(model, kind, outputs, x, floats, atol)]
    if dynamic_batch:
        cases.append(_case(model, kind, outputs, _take(x, resample_rows(
            rows, second_batch or 2 * rows + 1)), floats, atol))
    if framework == "sklearn":
        def convert() -> onnx.ModelProto:
            return _skl2onnx(model, x, opset, zipmap, dynamic_batch)
    else:
        def convert() -> onnx.ModelProto:
            return _onnxmltools(model, x, framework, opset, zipmap)
    converter = "skl2onnx" if framework == "sklearn" else "onnxmltools"
    return export_verified(path, converter, convert, cases, verify=verify,
                           backend=verify_backend, atol=atol, rtol=rtol,
                           dynamic_batch=dynamic_batch,
                           adapt=_matrices(model) if kind == "classifier" and zipmap else None)


def _source(model: Any, framework: str) -> tuple[str, list[Callable[[Any], Any]]]:
    """What the estimator is, and the methods whose results the ONNX outputs hold, in order."""
    from sklearn.base import is_classifier, is_regressor

    if not hasattr(model, "fit"):
        raise InputError(f"{type(model).__name__} is not a {framework} estimator")
    if is_classifier(model):
        scores = getattr(model, "predict_proba", None) or getattr(model, "decision_function",
                                                                  None)
        if scores is None:
            raise InputError(f"{type(model).__name__} has neither predict_proba nor "
                             f"decision_function to verify the scores with")
        return "classifier", [model.predict, scores]
    if is_regressor(model) or not hasattr(model, "transform"):
        return "regressor", [model.predict]
    return "transformer", [model.transform]


def _case(model: Any, kind: str, outputs: list[Callable[[Any], Any]], x: Any,
          floats: np.dtype, atol: float) -> Case:
    try:
        results = [_dense(method(x)) for method in outputs]
    except Exception as exc:  # the example does not fit the estimator: the caller's to fix
        raise InputError(f"{type(model).__name__} fails on the example inputs: "
                         f"{type(exc).__name__}: {exc}") from exc
    if kind == "classifier":
        labels, scores = results
        return Case(_feeds(x), [_labels(labels), _rows(scores, floats)], len(x), label=0,
                    ties=_ties(scores, atol))
    return Case(_feeds(x), [_rows(r, floats) for r in results], len(x))


def _dense(value: Any) -> np.ndarray:
    return np.asarray(value.toarray() if hasattr(value, "toarray") else value)


def _labels(labels: np.ndarray) -> np.ndarray:
    """Class labels as ONNX holds them: int64, or strings."""
    return labels.astype(np.int64) if labels.dtype.kind in "iub" else labels.astype(str)


def _rows(values: np.ndarray, floats: np.dtype) -> np.ndarray:
    """A matrix with a row per sample, as the converters write regressors' and scores'
    outputs, in the float type chosen for the file (the estimator computes in float64)."""
    values = values.reshape(len(values), -1)
    return values.astype(floats) if values.dtype.kind == "f" else values


def _ties(scores: np.ndarray, atol: float) -> np.ndarray:
    """Rows whose two best scores are within ``atol`` (one score: within ``atol`` of zero)."""
    scores = scores.reshape(len(scores), -1)
    if scores.shape[1] == 1:
        return np.abs(scores[:, 0]) <= atol
    best = np.sort(scores, axis=1)
    return best[:, -1] - best[:, -2] <= atol


def _floats_as(x: Any, dtype: np.dtype) -> Any:
    """The example with every float column in ``dtype`` (skl2onnx types each input after it;
    a float64 column beside float32 ones makes a graph that mixes the two and fails)."""
    if _is_frame(x):
        return x.astype({c: dtype for c in x.columns if x[c].dtype.kind == "f"})
    array = np.asarray(x)
    if array.ndim != 2:
        raise InputError(f"the example inputs must be a matrix (rows x features) or a pandas "
                         f"DataFrame, not an array of shape {list(array.shape)}")
    return array.astype(dtype) if array.dtype.kind in "fiu" else array


def _is_frame(x: Any) -> bool:
    return hasattr(x, "columns") and hasattr(x, "iloc")


def _take(x: Any, index: np.ndarray) -> Any:
    return x.iloc[index].reset_index(drop=True) if _is_frame(x) else x[index]


def _feeds(x: Any) -> dict[str, np.ndarray]:
    """A DataFrame is one input per column (skl2onnx's naming), a column of shape (rows, 1);
    a matrix is the single input ``input``."""
    if not _is_frame(x):
        return {"input": np.ascontiguousarray(x)}
    feeds = {}
    for column in x.columns:
        values = x[column].to_numpy()
        if values.dtype.kind not in "fiub":
            values = values.astype(str)
        feeds[str(column)] = values.reshape(-1, 1)
    return feeds


def _initial_types(x: Any, dynamic_batch: bool) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int32TensorType,
        Int64TensorType,
        StringTensorType,
    )

    types = {"float32": FloatTensorType, "float64": DoubleTensorType, "int64": Int64TensorType,
             "int32": Int32TensorType, "bool": BooleanTensorType}
    batch = None if dynamic_batch else len(x)
    initial = []
    for name, values in _feeds(x).items():
        make = StringTensorType if values.dtype.kind == "U" else types.get(values.dtype.name)
        if make is None:
            raise InputError(f"input {name!r}: dtype {values.dtype} has no ONNX tensor type "
                             f"skl2onnx converts; use float32, float64, int64, int32, bool or "
                             f"strings")
        initial.append((name, make([batch, values.shape[1]])))
    return initial


def _skl2onnx(model: Any, x: Any, opset: int | None, zipmap: bool,
              dynamic_batch: bool) -> onnx.ModelProto:
    from skl2onnx import to_onnx

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options = {id(final): {"zipmap": zipmap}} if "zipmap" in _allowed_options(final) else None
    return to_onnx(model, initial_types=_initial_types(x, dynamic_batch), target_opset=opset,
                   options=options)


def _allowed_options(estimator: Any) -> dict[str, Any]:
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import get_converter

    alias = sklearn_operator_name_map.get(type(estimator))
    if alias is None:
        raise ExportError(f"skl2onnx has no converter for {type(estimator).__name__}")
    return dict(get_converter(alias).get_allowed_options() or {})


def _onnxmltools(model: Any, x: Any, framework: str, opset: int | None,
                 zipmap: bool) -> onnx.ModelProto:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    if _is_frame(x):
        x = x.to_numpy(dtype=np.float32)
    if opset is not None and opset > ONNXMLTOOLS_MAX_OPSET:
        raise ExportError(f"onnxmltools converts {framework} models up to opset "
                          f"{ONNXMLTOOLS_MAX_OPSET}, not {opset}")
    kwargs: dict[str, Any] = {
        "initial_types": [("input", FloatTensorType([None, x.shape[1]]))],
        "target_opset": opset or ONNXMLTOOLS_MAX_OPSET}
    if framework == "lightgbm":
        return onnxmltools.convert_lightgbm(model, zipmap=zipmap, **kwargs)
    if zipmap:
        raise ExportError("onnxmltools writes XGBoost classifiers without ZipMap; "
                          "export with zipmap=False (--no-zipmap)")
    return onnxmltools.convert_xgboost(model, **kwargs)


def _matrices(model: Any) -> Callable[[dict[str, Any]], dict[str, np.ndarray]]:
    """ZipMap's sequence of maps (a dict per row, class to probability) back to a matrix in
    the estimator's class order, so it compares with ``predict_proba``."""
    classes = list(model.classes_)

    def adapt(outputs: dict[str, Any]) -> dict[str, np.ndarray]:
        return {name: np.array([[row[c] for c in classes] for row in value], np.float32)
                if isinstance(value, list) else value for name, value in outputs.items()}
    return adapt
