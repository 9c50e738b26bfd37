"""Sequences (Python lists of tensors) and optionals (a value or ``None``)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from modelport.ops.registry import op
from modelport.ops.shape import normalize_axis, shape_of, take_range


def _position(value: Any, length: int, default: int) -> int:
    if value is None:
        return default
    position = int(np.asarray(value).reshape(-1)[0])
    return position + length if position < 0 else position


@op("SequenceEmpty", 11)
def sequence_empty(ctx: Any, *, dtype: int = 1) -> Any:
    return []


@op("SequenceConstruct", 11)
def sequence_construct(ctx: Any, *inputs: Any) -> Any:
    return list(inputs)


@op("SequenceAt", 11, host=(1,))
def sequence_at(ctx: Any, sequence: list[Any], position: Any) -> Any:
    return sequence[_position(position, len(sequence), 0)]


@op("SequenceInsert", 11, host=(2,))
def sequence_insert(ctx: Any, sequence: list[Any], tensor: Any, position: Any = None) -> Any:
    out = list(sequence)
    out.insert(_position(position, len(out), len(out)), tensor)
    return out


@op("SequenceErase", 11, host=(1,))
def sequence_erase(ctx: Any, sequence: list[Any], position: Any = None) -> Any:
    out = list(sequence)
    del out[_position(position, len(out), len(out) - 1)]
    return out


@op("SequenceLength", 11)
def sequence_length(ctx: Any, sequence: list[Any]) -> Any:
    return np.array(len(sequence), dtype=np.int64)


@op("SplitToSequence", 11, 24, host=(1,))
def split_to_sequence(ctx: Any, x: Any, split: Any = None, *, axis: int = 0,
                      keepdims: int = 1) -> Any:
    axis = normalize_axis(axis, len(x.shape))
    length = shape_of(x)[axis]
    if split is None:
        parts = [take_range(ctx, x, axis, i, i + 1) for i in range(length)]
        return [ctx.xp.squeeze(p, axis=axis) for p in parts] if not keepdims else parts
    sizes = [int(split)] * (-(-length // int(split))) if np.ndim(split) == 0 \
        else [int(s) for s in split]
    bounds = np.cumsum([0, *sizes])
    return [take_range(ctx, x, axis, int(a), int(min(b, length)))
            for a, b in itertools.pairwise(bounds)]


@op("ConcatFromSequence", 11)
def concat_from_sequence(ctx: Any, sequence: list[Any], *, axis: int,
                         new_axis: int = 0) -> Any:
    if new_axis:
        return ctx.xp.stack(sequence, axis=normalize_axis(axis, len(sequence[0].shape) + 1))
    return ctx.xp.concat(sequence, axis=axis)


@op("Optional", 15, 28)
def optional(ctx: Any, value: Any = None, *, type: Any = None) -> Any:
    return value


@op("OptionalHasElement", 15, 18, 28)
def optional_has_element(ctx: Any, value: Any = None) -> Any:
    return np.array(value is not None)


@op("OptionalGetElement", 15, 18, 28)
def optional_get_element(ctx: Any, value: Any) -> Any:
    if value is None:
        raise NotImplementedError("OptionalGetElement of an empty optional")
    return value
