"""The contract between the shared operators and a framework: the ground floor.

An operator is a function ``op(ctx, *inputs, **attributes)``. What it may use of a framework
is all here: ``ctx.xp``, an array-API namespace (a module); ``ctx.k``, the framework's
:class:`Kernels`, the few primitives the array API lacks; and the framework's declared native
overrides (:func:`native`), which must agree with the shared definition they stand in for.

Nothing here imports a framework or anything from ``modelport.backends``: the host framework
(numpy, :mod:`modelport.ops.host`) lives on this floor too, and every backend builds on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, ClassVar, Protocol

import numpy as np

from modelport.errors import BackendError


class HostFallback(Exception):
    """A framework cannot hold a value (strings, int4, ...) or has no kernel for an operation:
    that node runs on numpy, the host framework, instead."""


class Kernels(Protocol):
    """The primitives an operator may call through ``ctx.k``: what the array API lacks.

    Arrays are the framework's own (``Any`` here); geometry is worked out by the shared
    operators, so kernels get explicit begin and end pads. Each framework's kernel module is
    declared against this protocol (``k: Kernels = kernels``), so the type checker reports a
    missing or mistyped kernel. A kernel may raise :class:`HostFallback`.
    """

    def erf(self, x: Any) -> Any: ...

    def pad(self, x: Any, widths: list[list[int]], mode: str, value: Any) -> Any: ...

    def cast(self, x: Any, to: int, saturate: int) -> Any: ...

    def cast_like(self, x: Any, target: Any, saturate: int) -> Any: ...

    def top_k(self, x: Any, k: int, axis: int, largest: bool) -> tuple[Any, Any]: ...

    def conv(self, x: Any, w: Any, b: Any | None, strides: list[int], begin: list[int],
             end: list[int], dilations: list[int], group: int) -> Any: ...

    def conv_transpose(self, x: Any, w: Any, b: Any | None, strides: list[int],
                       begin: list[int], end: list[int], dilations: list[int], group: int,
                       output_padding: list[int]) -> Any: ...

    def pool(self, x: Any, kind: str, kernel: list[int], strides: list[int],
             dilations: list[int], begin: list[int], end: list[int]) -> Any:
        """``kind`` "max" (pads are -inf, or the integer minimum) or "sum" (pads are 0) over
        each window of the spatial axes."""
        ...

    def max_pool_with_indices(self, x: Any, kernel: list[int], strides: list[int],
                              dilations: list[int], begin: list[int], end: list[int]
                              ) -> tuple[Any, Any]:
        """The max of each window, and where it is: its row-major position in the padded
        spatial plane of its image (int64)."""
        ...

    def scatter_elements(self, data: Any, indices: Any, updates: Any, axis: int,
                         reduction: str) -> Any: ...

    def scatter_nd(self, data: Any, indices: Any, updates: Any, reduction: str) -> Any: ...

    def unique(self, x: Any, axis: int | None, sort: bool) -> tuple[Any, ...]: ...

    def bit_cast(self, x: Any, dtype: Any) -> Any: ...

    def gather_in_range(self, x: Any, indices: Any, axis: int) -> Any:
        """``take_along_axis`` for int32 or int64 ``indices`` known to be in range and not
        negative: no wrapping or clamping (they cost more than the gather in a tree walk)."""
        ...


class Framework:
    """What the interpreter and the operators need of a target.

    A framework is an array namespace ``xp``, a kernel table ``k``, the native overrides it
    declares (operator helpers by name: ``relu``, ``softmax``, ``cond``...; see
    :func:`native`), and conversions between its tensors and numpy's.
    """

    name: ClassVar[str] = "numpy"
    xp: ModuleType
    k: Kernels  # each framework's kernel module, checked against the protocol
    overrides: ClassVar[Mapping[str, Callable[..., Any]]] = {}
    # The integer type of positions a tree walk looks its tables up with (it is bound by their
    # memory traffic): int32 halves it where the gathers take int32 as it is; numpy's take
    # converts them to int64 first, which made its walks 10-50% slower (docs/benchmarks.md)
    positions: ClassVar[str] = "int32"

    def is_native(self, value: Any) -> bool:
        """True for the framework's own tensors (never for numpy arrays)."""
        return False

    def asarray(self, value: np.ndarray) -> Any:
        """A host value as a framework tensor."""
        return value

    def to_host(self, value: Any) -> np.ndarray:
        """A framework tensor as a numpy array (only possible outside tracing)."""
        return np.asarray(value)

    def dtype(self, elem_type: int) -> Any:
        """The framework dtype of an ONNX element type."""
        import onnx.helper

        return onnx.helper.tensor_dtype_to_np_dtype(elem_type)

    def elem_type(self, value: Any) -> int:
        """The ONNX element type of a host or framework tensor."""
        import onnx.helper

        return int(onnx.helper.np_dtype_to_tensor_dtype(np.asarray(value).dtype))

    def tracing(self, value: Any) -> bool:
        """True while ``value`` is symbolic (``jax.jit``, ``torch.export``, a ``tf.function``
        graph): its contents cannot be read, so an operator cannot branch on them."""
        return False

    def lacks_kernel(self, error: Exception) -> bool:
        """True when ``error`` says the framework has no kernel for an operation on these
        dtypes: the node then runs on numpy instead (eager mode only)."""
        return False


class OpContext:
    """What an operator sees besides its inputs: ``xp``, kernels ``k``, the framework."""

    __slots__ = ("fw", "k", "n_outputs", "node", "scope", "xp")

    def __init__(self, fw: Framework, scope: Mapping[str, Any]) -> None:
        self.fw: Framework = fw
        self.xp: ModuleType = fw.xp
        self.k: Kernels = fw.k
        self.scope: Mapping[str, Any] = scope
        self.node = ""
        self.n_outputs = 1

    def dtype(self, elem_type: int) -> Any:
        return self.fw.dtype(elem_type)

    @property
    def host(self) -> bool:
        """True when this operator runs on numpy (all its inputs were host values)."""
        return self.fw.name == "numpy"


def native(ctx: OpContext, name: str) -> Callable[..., Any] | None:
    """The framework's declared override for ``name``, where it is faster than the shared code.

    The shared implementation stays the definition; ``tests/test_overrides.py`` holds every
    declared override to it.
    """
    return ctx.fw.overrides.get(name)


def host_value(ctx: OpContext, value: Any) -> np.ndarray:
    """A host or framework value as a numpy array. Reading a framework value waits for it;
    while tracing it cannot be read (see ``eager_host_value``)."""
    return np.asarray(ctx.fw.to_host(value) if ctx.fw.is_native(value) else value)


def eager_host_value(ctx: OpContext, value: Any, why: str) -> np.ndarray:
    """``host_value``, or while tracing a ``BackendError`` saying ``why`` the node needs the
    values, upon which the session runs the graph eagerly instead."""
    if ctx.fw.tracing(value):
        raise BackendError(why)
    return host_value(ctx, value)


def truth(ctx: OpContext, value: Any) -> bool:
    """The first element of a host or framework value as a Python bool (an If's condition, a
    guard's test)."""
    return bool(host_value(ctx, value).reshape(-1)[0])
