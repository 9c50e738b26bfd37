"""String operators. Strings exist only as numpy object arrays, so these run on the host."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from modelport.ops.registry import op


def _strings(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=object)


@op("StringConcat", 20)
def string_concat(ctx: Any, x: Any, y: Any) -> Any:
    a, b = np.broadcast_arrays(_strings(x), _strings(y))
    return np.array([str(p) + str(q) for p, q in zip(a.reshape(-1), b.reshape(-1),
                                                      strict=True)],
                    dtype=object).reshape(a.shape)


@op("RegexFullMatch", 20)
def regex_full_match(ctx: Any, x: Any, *, pattern: str) -> Any:
    compiled = re.compile(pattern)
    flat = [compiled.fullmatch(str(s)) is not None for s in _strings(x).reshape(-1)]
    return np.array(flat, dtype=bool).reshape(np.shape(x))


@op("StringSplit", 20)
def string_split(ctx: Any, x: Any, *, delimiter: str | None = None,
                 maxsplit: int | None = None) -> Any:
    strings = _strings(x)
    parts = [(str(s).split(delimiter or None, maxsplit if maxsplit is not None else -1)
              if delimiter else str(s).split(None, maxsplit if maxsplit is not None else -1))
             for s in strings.reshape(-1)]
    width = max((len(p) for p in parts), default=0)
    out = np.full((len(parts), width), "", dtype=object)
    for i, p in enumerate(parts):
        out[i, :len(p)] = p
    counts = np.array([len(p) for p in parts], dtype=np.int64)
    return out.reshape((*strings.shape, width)), counts.reshape(strings.shape)


@op("StringNormalizer", 10)
def string_normalizer(ctx: Any, x: Any, *, case_change_action: str = "NONE",
                      is_case_sensitive: int = 0, locale: str | None = None,
                      stopwords: list[str] | None = None) -> Any:
    strings = _strings(x)
    words = stopwords or []
    if is_case_sensitive:
        kept = [s for s in strings.reshape(-1) if str(s) not in words]
    else:
        lowered = {w.lower() for w in words}
        kept = [s for s in strings.reshape(-1) if str(s).lower() not in lowered]
    change = {"LOWER": str.lower, "UPPER": str.upper}.get(case_change_action, str)
    out = np.array([change(str(s)) for s in kept] or [""], dtype=object)
    return out.reshape((1, -1)) if strings.ndim == 2 else out
