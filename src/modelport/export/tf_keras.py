"""Keras and TensorFlow to ONNX with tf2onnx, verified against the source.

tf2onnx's ``from_keras`` fails on Keras 3 (tensorflow-onnx#2329, #2348: it looks up Keras 2
internals), so every source (a Keras 3 model, a ``tf.function`` or any callable of tensors, a
SavedModel folder) is traced into one ``tf.function`` that returns a dict of named outputs,
and converted as tf2onnx's ``from_function`` does, with the signature's tensors as the only
inputs (see ``_from_function``). The dict's keys become the ONNX output names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.errors import InputError
from modelport.export.base import (
    Case,
    ExportResult,
    batch_of,
    default_names,
    example_arrays,
    export_verified,
    run_source,
    source_cases,
)

if TYPE_CHECKING:
    import onnx

Source = Callable[..., dict[str, Any]]


def export_tensorflow(model: Any, inputs: Any, path: str | os.PathLike[str], *,
                      input_names: Sequence[str] | None, output_names: Sequence[str] | None,
                      opset: int | None, inputs_as_nchw: Sequence[str], dynamic_batch: bool,
                      verify: bool, verify_backend: str, second_batch: int | None,
                      atol: float, rtol: float) -> ExportResult:
    """See :func:`modelport.export.keras`."""
    import tensorflow as tf

    source, names = _source(model, inputs, input_names, output_names)
    arrays = example_arrays(inputs, names)
    unknown = sorted(set(inputs_as_nchw) - set(names))
    if unknown:
        raise InputError(f"inputs_as_nchw names {', '.join(unknown)}, not an input; the "
                         f"inputs are {', '.join(names)}")
    cases = source_cases(arrays, lambda given: _case(source, names, given, inputs_as_nchw),
                         dynamic_batch, second_batch)
    signature = [tf.TensorSpec([None if dynamic_batch else a.shape[0], *a.shape[1:]],
                               tf.as_dtype(a.dtype), name=n) for n, a in zip(names, arrays,
                                                                              strict=True)]

    def convert() -> onnx.ModelProto:
        return _from_function(tf.function(source, autograph=False), signature, opset,
                              inputs_as_nchw)

    return export_verified(path, "tf2onnx", convert, cases, verify=verify,
                           backend=verify_backend, atol=atol, rtol=rtol,
                           dynamic_batch=dynamic_batch)


def _from_function(function: Any, signature: list[Any], opset: int | None,
                   inputs_as_nchw: Sequence[str]) -> onnx.ModelProto:
    """tf2onnx's ``convert.from_function``, but with the signature's inputs only.

    ``from_function`` makes every tensor the function captures (a ``tf.constant`` from the
    enclosing scope, not a variable) an input of the file too, which nobody can feed; here
    only the signature's tensors are inputs, and the captures are frozen into constants.
    """
    import tensorflow as tf
    import tf2onnx

    concrete = function.get_concrete_function(*signature)
    inputs = [t.name for t in concrete.inputs[:len(signature)]]  # the captures follow
    outputs = [t.name for t in concrete.outputs if t.dtype != tf.dtypes.resource]
    with tf.device("/cpu:0"):
        frozen = tf2onnx.tf_loader.from_function(concrete, inputs, outputs)
        model, _ = tf2onnx.convert._convert_common(
            frozen, name=concrete.name, continue_on_error=True, opset=opset,
            input_names=inputs, output_names=outputs,
            inputs_as_nchw=[f"{n}:0" for n in inputs_as_nchw] or None,
            tensors_to_rename=tf2onnx.convert.tensor_names_from_structed(concrete, inputs,
                                                                         outputs))
    return model


def _source(model: Any, inputs: Any, input_names: Sequence[str] | None,
            output_names: Sequence[str] | None) -> tuple[Source, list[str]]:
    """A function of the inputs, in order, that returns the outputs by name; the names."""
    import tensorflow as tf

    if isinstance(model, str | os.PathLike):
        return _saved_model(Path(model), input_names, output_names)
    if isinstance(inputs, Mapping):
        names = [str(k) for k in inputs]
    else:
        count = len(inputs) if isinstance(inputs, list | tuple) else 1
        names = list(input_names or default_names("input", count))
        if len(names) != count:
            raise InputError(f"{len(names)} input names for {count} example inputs")
    keras_model = _is_keras(model)

    def call(*args: Any) -> dict[str, Any]:
        if keras_model:
            given: Any = dict(zip(names, args, strict=True)) if isinstance(inputs, Mapping) \
                else args[0] if len(args) == 1 else list(args)
            result = model(given, training=False)
        else:
            result = model(*args)
        return _named(result, output_names)

    if not callable(model) and not isinstance(model, tf.Module):
        raise InputError(f"{type(model).__name__} is neither a Keras model, a callable nor a "
                         f"SavedModel folder")
    return call, names


def _saved_model(folder: Path, input_names: Sequence[str] | None,
                 output_names: Sequence[str] | None) -> tuple[Source, list[str]]:
    """The folder's ``serving_default`` signature; its inputs by their signature names."""
    import tensorflow as tf

    if not (folder / "saved_model.pb").is_file():
        raise InputError(f"{folder}: not a SavedModel folder (no saved_model.pb)")
    loaded = tf.saved_model.load(str(folder))
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise InputError(f"{folder} has no serving_default signature; it has "
                         f"{', '.join(loaded.signatures) or 'none'}")
    names = sorted(signature.structured_input_signature[1])
    if input_names and list(input_names) != names:
        raise InputError(f"the SavedModel's inputs are {', '.join(names)}; they keep "
                         f"their names")

    def call(*args: Any) -> dict[str, Any]:
        _ = loaded  # the signature's variables live as long as the object that loaded them
        return _named(signature(**dict(zip(names, args, strict=True))), output_names)

    return call, names


def _is_keras(model: Any) -> bool:
    try:
        import keras
    except ImportError:
        return False
    return isinstance(model, keras.Model)


def _named(result: Any, output_names: Sequence[str] | None) -> dict[str, Any]:
    """The outputs by name: a dict's own keys, else the names given or ``default_names``
    (whose sorted order, TensorFlow's, is the outputs' order)."""
    if isinstance(result, Mapping):
        return dict(result)
    values = list(result) if isinstance(result, list | tuple) else [result]
    if output_names is not None:
        if len(output_names) != len(values):
            raise InputError(f"{len(output_names)} output names for {len(values)} outputs")
        return dict(zip(output_names, values, strict=True))
    return dict(zip(default_names("output", len(values)), values, strict=True))


def _case(source: Source, names: list[str], arrays: list[np.ndarray],
          inputs_as_nchw: Sequence[str]) -> Case:
    outputs = run_source(source, names, arrays)
    feeds = {n: np.ascontiguousarray(np.moveaxis(a, -1, 1) if n in inputs_as_nchw else a)
             for n, a in zip(names, arrays, strict=True)}
    return Case(feeds, {k: np.asarray(v) for k, v in outputs.items()}, batch_of(arrays))
