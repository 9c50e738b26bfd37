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


@op("TfIdfVectorizer", 9, host=(0,))
def tfidf_vectorizer(ctx: Any, x: Any, *, max_gram_length: int, max_skip_count: int,
                     min_gram_length: int, mode: str, ngram_counts: list[int],
                     ngram_indexes: list[int], pool_int64s: list[int] | None = None,
                     pool_strings: list[str] | None = None,
                     weights: list[float] | None = None) -> Any:
    """Counts of the pool's n-grams in each row of ``x`` ([C] or [N, C]), as TF, IDF (1 or the
    weight where present) or TFIDF (count times weight). An n-gram may skip up to
    ``max_skip_count`` items between its elements; a unigram is counted once, not per skip."""
    pool = list(pool_int64s if pool_int64s is not None else pool_strings or [])
    columns = _pool_columns(pool, ngram_counts, ngram_indexes, min_gram_length,
                            max_gram_length)
    rows = np.asarray(x)
    rows = rows.reshape(1, -1) if rows.ndim < 2 else rows
    counts = np.zeros((rows.shape[0], max(ngram_indexes) + 1), np.float32)
    for r, row in enumerate(rows.tolist()):
        for skip in range(max_skip_count + 1):
            shortest = min_gram_length if skip == 0 else max(min_gram_length, 2)
            for start in range(len(row)):
                for n in range(shortest, max_gram_length + 1):
                    gram = tuple(row[start:start + (n - 1) * (skip + 1) + 1:skip + 1])
                    if len(gram) == n and gram in columns:
                        counts[r, columns[gram]] += 1
    # weights[i] belongs to the pool's i-th n-gram (the spec, and onnxruntime; the reference
    # evaluator reads it by output column, the same only when ngram_indexes is 0, 1, 2, ...)
    w = np.zeros(counts.shape[1], np.float32)
    w[np.asarray(ngram_indexes[:len(weights or [])], np.int64)] = weights or []
    if mode == "IDF":
        counts = np.where(counts > 0, w if weights else 1, 0).astype(np.float32)
    elif mode == "TFIDF" and weights:
        counts = counts * w
    return counts if np.asarray(x).ndim == 2 else counts[0]


def _pool_columns(pool: list[Any], ngram_counts: list[int], ngram_indexes: list[int],
                  shortest: int, longest: int) -> dict[tuple[Any, ...], int]:
    """Each n-gram of the pool (``ngram_counts[i]`` is where the (i+1)-grams start) with a
    length in [shortest, longest], mapped to its output column."""
    columns: dict[tuple[Any, ...], int] = {}
    gram_id = 0
    for size, begin in enumerate(ngram_counts, start=1):
        end = ngram_counts[size] if size < len(ngram_counts) else len(pool)
        for at in range(begin, end, size):
            if shortest <= size <= longest:
                columns[tuple(pool[at:at + size])] = ngram_indexes[gram_id]
            gram_id += 1
    return columns
