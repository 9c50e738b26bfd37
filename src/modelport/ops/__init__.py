"""The shared operator library: each ONNX operator written once over an array namespace.

Importing this package registers every family. See :mod:`modelport.ops.registry` for how an
operator is written and resolved.
"""

from modelport.ops import (  # noqa: F401 - importing registers
    contrib,
    control_flow,
    decoder,
    elementwise,
    indexing,
    linalg,
    ml,
    nn,
    quant,
    random,
    reduction,
    resize,
    rnn,
    sequence,
    shape,
    signal,
    text,
    training,
    vision,
)
from modelport.ops.registry import REGISTRY, OpDef, lookup, op, supported_ops

__all__ = ["REGISTRY", "OpDef", "lookup", "op", "supported_ops"]
