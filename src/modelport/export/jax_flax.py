"""JAX and Flax to ONNX with jax2onnx, verified against the function, with a symbolic batch.

The source is a function of arrays (jitted or not), a Flax NNX module (it holds its
parameters), or a Flax Linen module or a function of ``(params, *inputs)`` together with its
``params``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
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

# jax2onnx's name for the symbolic batch; the file's is ``batch``, set after conversion.
_SYMBOL = "B"


def export_jax(function: Any, inputs: Any, path: str | os.PathLike[str], *, params: Any,
               input_names: Sequence[str] | None, output_names: Sequence[str] | None,
               opset: int | None, dynamic_batch: bool, verify: bool, verify_backend: str,
               second_batch: int | None, atol: float, rtol: float) -> ExportResult:
    """See :func:`modelport.export.jax`."""
    import jax

    source = _bound(function, params)
    count = len(inputs) if isinstance(inputs, list | tuple) else 1
    names = list(input_names or default_names("input", count))
    arrays = example_arrays(inputs, names)
    cases = source_cases(arrays, lambda given: _case(source, names, given), dynamic_batch,
                         second_batch)
    outputs = output_names or default_names("output", len(cases[0].expected))
    specs = [jax.ShapeDtypeStruct(
        jax.export.symbolic_shape(", ".join([_SYMBOL, *map(str, a.shape[1:])]))
        if dynamic_batch and a.ndim else a.shape, a.dtype) for a in arrays]

    def convert() -> onnx.ModelProto:
        import logging

        from jax2onnx import to_onnx

        # onnx_ir warns of every untyped shape constant jax2onnx writes
        logging.getLogger("onnx_ir.serde").setLevel(logging.ERROR)
        chosen = {} if opset is None else {"opset": opset}  # else jax2onnx's default
        model = to_onnx(function if params is None else source, specs, input_names=names,
                        output_names=list(outputs),
                        enable_double_precision=any(a.dtype == np.float64 for a in arrays),
                        **chosen)
        assert not isinstance(model, str)
        return model if hasattr(model, "SerializeToString") else _proto(model)

    return export_verified(path, "jax2onnx", convert, cases, verify=verify,
                           backend=verify_backend, atol=atol, rtol=rtol,
                           dynamic_batch=dynamic_batch)


def _bound(function: Any, params: Any) -> Callable[..., Any]:
    if params is None:
        if not callable(function):
            raise InputError(f"{type(function).__name__} is not callable")
        return function
    if hasattr(function, "apply"):  # a Flax Linen module
        return functools.partial(function.apply, params)
    return functools.partial(function, params)


def _leaves(value: Any) -> list[np.ndarray]:
    import jax

    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(value)]


def _case(source: Callable[..., Any], names: list[str], arrays: list[np.ndarray]) -> Case:
    return Case(dict(zip(names, arrays, strict=True)),
                _leaves(run_source(source, names, arrays)), batch_of(arrays))


def _proto(model: Any) -> onnx.ModelProto:
    import onnx_ir

    return onnx_ir.serde.serialize_model(model)
