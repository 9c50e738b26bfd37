"""Feeds for a model: checked against its signature, generated from it, or read from files."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import InputError, one_line
from modelport.model import TensorSpec

Feeds = Mapping[str, Any] | Sequence[Any]


def check_feeds(specs: Sequence[TensorSpec], feeds: Feeds) -> dict[str, np.ndarray]:
    """Match feeds to the model's inputs and return them as numpy arrays.

    Feeds may be a mapping by input name or a sequence in graph-input order (the
    ``onnx.backend`` convention). Names, dtype, rank, fixed dimensions, and the consistency of
    each symbolic dimension across inputs are checked; every problem is reported at once.

    Raises:
        InputError: naming what was given and what the model expects.
    """
    by_name = _by_name(specs, feeds)
    problems: list[str] = []
    unknown = sorted(set(by_name) - {s.name for s in specs})
    if unknown:
        problems.append(f"unknown input(s) {', '.join(map(repr, unknown))}")
    missing = [s.name for s in specs if s.name not in by_name]
    if missing:
        problems.append(f"missing input(s) {', '.join(map(repr, missing))}")
    arrays: dict[str, np.ndarray] = {}
    symbols: dict[str, tuple[int, str]] = {}
    for spec in specs:
        if spec.name in by_name and spec.dtype is None:  # sequences, optionals (None: empty)
            arrays[spec.name] = by_name[spec.name]
        elif spec.name in by_name:
            array = _as_array(spec, by_name[spec.name], problems)
            if array is not None:
                if spec.kind == "tensor":
                    _check_shape(spec, array.shape, symbols, problems)
                arrays[spec.name] = array
    if problems:
        expected = "; ".join(f"{s.name}: {s.dtype_name}{s.shape_str()}" for s in specs)
        raise InputError(f"{'; '.join(problems)} (the model expects {expected})")
    return arrays


def _by_name(specs: Sequence[TensorSpec], feeds: Feeds) -> Mapping[str, Any]:
    if isinstance(feeds, Mapping):
        return feeds
    if isinstance(feeds, np.ndarray):  # a single array for a single-input model
        feeds = [feeds]
    feeds = list(feeds)
    if len(feeds) > len(specs):
        raise InputError(f"{len(feeds)} inputs given, the model takes {len(specs)}: "
                         f"{', '.join(s.name for s in specs)}")
    return {spec.name: value for spec, value in zip(specs, feeds, strict=False)}


def _as_array(spec: TensorSpec, value: Any, problems: list[str]) -> np.ndarray | None:
    expected = spec.dtype
    assert expected is not None  # sequences and optionals are passed through by check_feeds
    if expected == np.dtype(object):
        return _as_strings(spec, value, problems)
    if not isinstance(value, np.ndarray | np.generic):
        # Python scalars and lists carry no dtype of their own: give them the model's.
        try:
            return np.asarray(value, dtype=expected)
        except (TypeError, ValueError) as exc:
            problems.append(f"input {spec.name!r} cannot be read as {spec.dtype_name}: {exc}")
            return None
    array = np.asarray(value)
    if array.dtype != expected:
        name = np.dtype(expected).name
        where = "np" if hasattr(np, name) else "ml_dtypes"  # bfloat16, float8_*, int4, ...
        problems.append(f"input {spec.name!r} has dtype {array.dtype}, expected "
                        f"{spec.dtype_name} ({name}); convert it with .astype({where}.{name})")
        return None
    return array


def _as_strings(spec: TensorSpec, value: Any, problems: list[str]) -> np.ndarray | None:
    """A STRING feed as onnx runtimes take it: an object array of ``str``. numpy ``str`` and
    ``bytes`` arrays, lists of either, and object arrays of either are accepted; bytes must be
    UTF-8."""
    array = np.asarray(value, dtype=object if not isinstance(value, np.ndarray) else None)
    if array.dtype.kind not in "USO":
        problems.append(f"input {spec.name!r} has dtype {array.dtype}, expected STRING: give "
                        f"str or bytes (a list, or a numpy array of dtype str, bytes or object)")
        return None
    if array.dtype.kind == "U":  # every element is a str already: no per-element check
        return array.astype(object)
    strings = np.empty(array.shape, dtype=object)
    for index, item in np.ndenumerate(array):
        if isinstance(item, bytes | np.bytes_):
            try:
                item = bytes(item).decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(f"input {spec.name!r}: element {index} is not UTF-8 ({exc})")
                return None
        if not isinstance(item, str):
            problems.append(f"input {spec.name!r}: element {index} is a "
                            f"{type(item).__name__}, not a string")
            return None
        strings[index] = str(item)
    return strings


def _check_shape(spec: TensorSpec, shape: tuple[int, ...],
                 symbols: dict[str, tuple[int, str]], problems: list[str]) -> None:
    if spec.shape is None:
        return
    if len(shape) != len(spec.shape):
        problems.append(f"input {spec.name!r} has rank {len(shape)} (shape {list(shape)}), "
                        f"expected rank {len(spec.shape)} {spec.shape_str()}")
        return
    for axis, (want, got) in enumerate(zip(spec.shape, shape, strict=True)):
        if isinstance(want, int) and want > 0 and want != got:
            problems.append(f"input {spec.name!r} has shape {list(shape)}, expected "
                            f"{spec.shape_str()} (axis {axis} must be {want})")
        elif isinstance(want, str) and want:
            seen = symbols.setdefault(want, (got, spec.name))
            if seen[0] != got:
                problems.append(f"dimension {want!r} is {seen[0]} in input {seen[1]!r} but "
                                f"{got} in input {spec.name!r}")


def resolve_shape(spec: TensorSpec, dims: Mapping[str, int], default: int = 1,
                  batch: int | None = None) -> tuple[int, ...]:
    """A concrete shape for ``spec``.

    Fixed dimensions stay; a free leading dimension becomes ``batch`` when it is given; other
    symbolic dimensions come from ``dims``; the rest become ``default``.
    """
    if spec.shape is None:
        raise InputError(f"input {spec.name!r} has no shape in the model; give its data with "
                         f"--inputs")
    shape = []
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, int) and dim > 0:
            shape.append(dim)
        elif axis == 0 and batch is not None:
            if isinstance(dim, str) and dims.get(dim, batch) != batch:
                raise InputError(f"--dim {dim}={dims[dim]} conflicts with batch {batch}")
            shape.append(batch)
        else:
            shape.append(dims.get(dim, default) if isinstance(dim, str) else default)
    return tuple(shape)


def generate_inputs(specs: Sequence[TensorSpec], *, dims: Mapping[str, int] | None = None,
                    seed: int = 0, default_dim: int = 1,
                    batch: int | None = None) -> dict[str, np.ndarray]:
    """Random feeds that fit the signature, reproducible from ``seed``.

    Floats are standard normal, integers uniform in [0, 10) (small enough to be valid indices
    for most gather-like inputs), booleans fair coins. Symbolic dimensions come from ``dims``
    (``{"batch": 8}``); others default to ``default_dim``. ``batch``, when given, sets every
    input's free leading dimension.
    """
    check_dims(specs, dims or {})
    if seed < 0:
        raise InputError(f"--seed {seed}: seeds are 0 or more")
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        dtype = spec.dtype
        if dtype is None:
            raise InputError(f"input {spec.name!r} is a {spec.kind}; give its data with --inputs")
        shape = resolve_shape(spec, dims or {}, default_dim, batch)
        if np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.complexfloating):
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[spec.name] = rng.random(shape) < 0.5
        elif np.issubdtype(dtype, np.integer):
            feeds[spec.name] = rng.integers(0, 10, size=shape).astype(dtype)
        else:
            raise InputError(f"input {spec.name!r} is {spec.dtype_name}, which modelport cannot "
                             f"generate; give its data with --inputs")
    return feeds


def load_inputs(paths: Sequence[str | os.PathLike[str]],
                specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Read feeds from ``.npz`` files (keys are input names) and ``.npy`` files.

    A ``.npy`` file is named ``NAME=path.npy``, or is the only input of a single-input model.
    Pickled objects are never loaded.
    """
    feeds: dict[str, np.ndarray] = {}
    for item in paths:
        name, _, path_str = str(item).rpartition("=") if "=" in str(item) else ("", "", str(item))
        path = Path(path_str)
        if not path.is_file():
            raise InputError(f"{path}: no such input file")
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.ndarray):
                with loaded as npz:
                    feeds.update({key: npz[key] for key in npz.files})
                continue
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: not a readable .npy/.npz file without pickles "
                             f"({one_line(exc)})") from exc
        if not name:
            if len(specs) != 1:
                raise InputError(f"{path}: say which input it is, as NAME={path} (inputs: "
                                 f"{', '.join(s.name for s in specs)})")
            name = specs[0].name
        feeds[name] = loaded
    return feeds


def parse_dims(items: Sequence[str]) -> dict[str, int]:
    """Parse ``["batch=8", "seq=128"]`` into ``{"batch": 8, "seq": 128}``."""
    dims: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit() or int(value) < 1:
            raise InputError(f"--dim {item!r}: expected NAME=SIZE with a size of 1 or more, "
                             f"e.g. batch=8")
        dims[name.strip()] = int(value)
    return dims


def symbolic_dims(specs: Sequence[TensorSpec]) -> list[str]:
    """The names of the symbolic dimensions of ``specs``, in order of first appearance."""
    names = (d for s in specs for d in (s.shape or ()) if isinstance(d, str) and d)
    return list(dict.fromkeys(names))


def check_dims(specs: Sequence[TensorSpec], dims: Mapping[str, int]) -> None:
    """Refuse sizes for dimensions the model does not have, and sizes below 1.

    Raises:
        InputError: naming the model's symbolic dimensions.
    """
    known = symbolic_dims(specs)
    unknown = [name for name in dims if name not in known]
    small = [f"{name}={size}" for name, size in dims.items() if size < 1]
    problems = [f"the model has no dimension {name!r}" for name in unknown]
    problems += [f"--dim {item}: sizes must be 1 or more" for item in small]
    if problems:
        have = ", ".join(map(repr, known)) if known else "none"
        raise InputError(f"{'; '.join(problems)} (its symbolic dimensions: {have})")



def make_feeds(specs: Sequence[TensorSpec], files: Sequence[str | os.PathLike[str]] = (), *,
               dims: Mapping[str, int] | None = None, seed: int = 0,
               batch: int | None = None) -> dict[str, np.ndarray]:
    """Feeds read from ``files`` when any are given, else generated from the signature."""
    if files:
        return load_inputs(files, specs)
    return generate_inputs(specs, dims=dims, seed=seed, batch=batch)
