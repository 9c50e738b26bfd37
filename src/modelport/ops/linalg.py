"""Matrix products: MatMul, Gemm, Einsum, Det, and the integer MatMul."""

from __future__ import annotations

from typing import Any

from modelport.ops.registry import op


@op("MatMul", 1, 9, 13)  # 9 only added integer types
def mat_mul(ctx: Any, a: Any, b: Any) -> Any:
    return ctx.xp.matmul(a, b)


@op("Gemm", 1, 6, 7, 9, 11, 13)
def gemm(ctx: Any, a: Any, b: Any, c: Any = None, *, alpha: float = 1.0, beta: float = 1.0,
         transA: int = 0, transB: int = 0, broadcast: int = 0) -> Any:
    """``broadcast`` (versions 1 and 6) only says whether C may broadcast; in a valid model it
    means what version 7's unidirectional broadcast does."""
    xp = ctx.xp
    y = xp.matmul(xp.matrix_transpose(a) if transA else a,
                  xp.matrix_transpose(b) if transB else b)
    if alpha != 1.0:
        y = y * xp.asarray(alpha, dtype=y.dtype)
    if c is not None:
        if len(c.shape) == 2 and c.shape[0] == 1:
            # a row bias as the vector it is: TensorFlow's graph optimizer fuses MatMul + Add
            # into a kernel that then refuses a [1, N] bias, on some machines only
            c = xp.reshape(c, (c.shape[1],))
        y = y + (c if beta == 1.0 else c * xp.asarray(beta, dtype=c.dtype))
    return y


@op("Einsum", 12, 28)
def einsum(ctx: Any, *inputs: Any, equation: str) -> Any:
    return ctx.xp.einsum(equation.replace(" ", ""), *inputs)


@op("Det", 11, 22)
def det(ctx: Any, x: Any) -> Any:
    return ctx.xp.linalg.det(x)


@op("MatMulInteger", 10)
def mat_mul_integer(ctx: Any, a: Any, b: Any, a_zero_point: Any = None,
                    b_zero_point: Any = None) -> Any:
    xp = ctx.xp
    a32, b32 = xp.astype(a, xp.int32), xp.astype(b, xp.int32)
    if a_zero_point is not None:
        zp = xp.astype(a_zero_point, xp.int32)
        a32 = a32 - (xp.reshape(zp, (-1, 1)) if len(zp.shape) == 1 and zp.shape[0] > 1 else zp)
    if b_zero_point is not None:
        b32 = b32 - xp.astype(b_zero_point, xp.int32)
    return xp.matmul(a32, b32)
