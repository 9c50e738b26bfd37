"""Writing files so that a failure never leaves a half-written one behind, and JSON data."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name keeps the extension: writers that check it (torch.export) stay quiet
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}",
                               dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, usual_mode(target, 0o666))
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def usual_mode(target: Path, default: int) -> int:
    """The permissions a plain ``open`` or ``mkdir`` would give ``target``: the file's own when
    it is being replaced, else ``default`` less the umask (temporary files are private)."""
    with contextlib.suppress(OSError):
        return target.stat().st_mode & 0o7777
    mask = os.umask(0)
    os.umask(mask)
    return default & ~mask


def check_output_path(path: str | os.PathLike[str], suffixes: tuple[str, ...] = (),
                      inputs: tuple[str | os.PathLike[str], ...] = ()) -> Path:
    """Refuse, before any work, an output path that cannot be written as asked.

    Args:
        suffixes: the file extensions allowed (with the dot), any when empty.
        inputs: files the command reads, which an output must never replace.

    Raises:
        InputError: naming the problem.
    """
    from modelport.errors import InputError

    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target} is a folder; give a file name")
    if suffixes and target.suffix.lower() not in suffixes:
        raise InputError(f"{target}: the file name must end in {', '.join(suffixes)}")
    for given in inputs:
        if target.exists() and Path(given).exists() and target.resolve() == Path(given).resolve():
            raise InputError(f"{target} is an input of this command; write elsewhere")
    parent = next((p for p in (target.parent, *target.parent.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{target}: cannot write into {parent}")
    return target


def save_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> None:
    """Write arrays to a ``.npz`` file atomically, one member per key, whatever the key.

    ``np.savez(file, **arrays)`` would take keys such as ``file`` or ``allow_pickle`` for its
    own arguments; its format is written here member by member instead. String arrays are
    stored as numpy strings, so the file loads without pickles.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as archive:
        for key, value in arrays.items():
            array = np.asanyarray(value)
            if array.dtype == np.object_:
                array = array.astype(np.str_)
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def check_figure_path(path: str | os.PathLike[str],
                      inputs: tuple[str | os.PathLike[str], ...] = ()) -> Path:
    """Refuse, before any work, a plot path matplotlib cannot write (or that is missing)."""
    from modelport.errors import InputError

    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise InputError("plots need matplotlib: pip install 'modelport[plot]'") from exc
    formats = Figure().canvas.get_supported_filetypes()
    return check_output_path(path, tuple(f".{f}" for f in formats), inputs)


def to_jsonable(value: Any) -> Any:
    """Plain JSON data; non-finite floats become the strings "nan", "inf", "-inf"."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
