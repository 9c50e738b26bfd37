"""Tensors of the types numpy holds only through ml_dtypes, in ONNX's byte layout.

bfloat16, the float8 kinds, float4e2m1, int4/uint4 and int2/uint2 are numpy arrays of
``ml_dtypes`` types in modelport, but the engines' Python bindings take them only as raw
bytes: onnxruntime refuses them in ``run`` ("Numpy_type 260 can't be converted"), OpenVINO
copies them element by element into its packed tensors. ONNX fixes the byte layout
(little-endian, sub-byte types packed with the first element in the low bits), and onnxruntime
and OpenVINO hold tensors the same way, so the bytes that ``onnx.numpy_helper`` writes into a
TensorProto are the bytes those engines expect, and its reader brings theirs back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import TensorProto, helper, numpy_helper

NUMPY_LACKS: frozenset[int] = frozenset({
    TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E4M3FNUZ,
    TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E5M2FNUZ, TensorProto.FLOAT8E8M0,
    TensorProto.FLOAT4E2M1, TensorProto.INT4, TensorProto.UINT4, TensorProto.INT2,
    TensorProto.UINT2})
_BY_DTYPE = {np.dtype(helper.tensor_dtype_to_np_dtype(t)): t for t in NUMPY_LACKS}


def lacking_type(dtype: np.dtype) -> int | None:
    """The ONNX type of ``dtype`` if numpy has it only through ml_dtypes, else None."""
    return _BY_DTYPE.get(dtype)


def to_bytes(array: np.ndarray) -> bytes:
    """``array``'s elements in ONNX's layout (packed where the type is under a byte)."""
    return bytes(numpy_helper.from_array(array).raw_data)


def from_bytes(onnx_type: int, shape: Sequence[int], raw: bytes) -> np.ndarray:
    """The array that ``raw``, in ONNX's layout, holds: ml_dtypes elements, unpacked."""
    return numpy_helper.to_array(helper.make_tensor("", onnx_type, list(shape), raw, raw=True))
