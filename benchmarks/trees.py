"""Tree ensembles on the translating backends, against ONNX Runtime and Hummingbird.

Models, trained on synthetic data (20 float features, two classes): a scikit-learn
RandomForestClassifier of 100 trees of depth 10 and a LightGBM classifier of 500 trees (its
defaults: 31 leaves, leaf-wise growth, so trees of depths 5-17), exported with
``modelport.export``. Each backend runs in its own process through ``modelport.bench`` at
batch 10,000; Hummingbird (``hummingbird.ml.convert(model, "torch")``) and the source
framework's own ``predict_proba`` are timed in this process the same way (warm-up, then the
median). Ratios are against ONNX Runtime and Hummingbird from the same run.

Hummingbird 0.4.12 pins onnx <= 1.16.1, below the lock's, so it is not a dependency: install
it beside the environment and name the folder (it needs only torch at run time)::

    .venv/bin/pip install --no-deps --target /tmp/hummingbird hummingbird-ml==0.4.12 dill
    .venv/bin/python benchmarks/trees.py --hummingbird /tmp/hummingbird [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

import modelport

CACHE = Path(__file__).resolve().parent / ".cache"
BACKENDS = ["onnxruntime", "numpy", "torch", "jax", "tensorflow"]
ROWS = 10_000


def data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 20)).astype(np.float32)
    noise = rng.normal(0, 0.5, rows)
    return x, (x[:, 0] + x[:, 1] ** 2 - x[:, 2] * x[:, 3] + noise > 0.5).astype(np.int64)


def random_forest(x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(100, max_depth=10, random_state=0, n_jobs=2).fit(x, y)


def lightgbm(x: np.ndarray, y: np.ndarray) -> Any:
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=500, random_state=0, verbose=-1).fit(x, y)


MODELS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], Any], Callable[..., Any]]] = {
    "random-forest": (random_forest, modelport.export.sklearn),
    "lightgbm": (lightgbm, modelport.export.lightgbm),
}


def median_ms(call: Callable[[], Any], max_seconds: float) -> float:
    """Median latency (ms), warm-up excluded."""
    for _ in range(2):
        call()
    times: list[float] = []
    deadline = time.perf_counter() + max_seconds
    while len(times) < 20 and (len(times) < 3 or time.perf_counter() < deadline):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def hummingbird_ms(model: Any, x: np.ndarray, max_seconds: float) -> tuple[float, str, float]:
    """Hummingbird's torch model: p50 ms, the strategy it chose, its largest probability
    difference from the source model."""
    import hummingbird.ml

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = hummingbird.ml.convert(model, "torch")
    strategy = type(converted.model._operators[0]).__name__
    error = float(np.abs(converted.predict_proba(x) - model.predict_proba(x)).max())
    return median_ms(lambda: converted.predict_proba(x), max_seconds), strategy, error


def run(models: list[str], max_seconds: float, hummingbird: bool) -> dict[str, Any]:
    import torch

    CACHE.mkdir(exist_ok=True)
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(),
                    "python": platform.python_version()},
        "date": date.today().isoformat(), "rows": ROWS, "models": {}}
    x, y = data(30_000, seed=0)
    test = data(ROWS, seed=1)[0]
    for name in models:
        fit, export = MODELS[name]
        print(f"training {name} ...", file=sys.stderr)
        model = fit(x, y)
        path = CACHE / f"{name}.onnx"
        export(model, x[:100], path, report=False)
        print(f"benchmarking {name} ...", file=sys.stderr)
        report = modelport.bench(path, BACKENDS, [ROWS], warmup=2, runs=20,
                                 max_seconds=max_seconds)
        entry: dict[str, Any] = {
            "source_ms": median_ms(lambda m=model: m.predict_proba(test), max_seconds),
            "backends": [r.__dict__ for r in report.results]}
        if hummingbird:
            ms, strategy, error = hummingbird_ms(model, test, max_seconds)
            entry["hummingbird"] = {"ms": ms, "strategy": strategy, "max_abs_error": error}
        results["models"][name] = entry
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [f"Measured {results['date']} on {results['machine']['platform']} "
             f"({results['machine']['threads']} torch threads) by `benchmarks/trees.py`, "
             f"batch {results['rows']:,}. p50 latency in ms; ratios to ONNX Runtime and to "
             f"Hummingbird (torch) from the same run.", "",
             "| model | engine | p50 ms | × onnxruntime | × Hummingbird |",
             "|---|---|---|---|---|"]
    for name, data_ in results["models"].items():
        rows = {r["backend"]: r for r in data_["backends"]}
        base = rows["onnxruntime"]["p50_ms"]
        hb = data_.get("hummingbird", {}).get("ms")
        lines.append(_line(name, "source framework (predict_proba)", data_["source_ms"], base,
                           hb))
        if hb:
            lines.append(_line(name, f"Hummingbird torch ({data_['hummingbird']['strategy']})",
                               hb, base, hb))
        lines += [_line(name, b, r["p50_ms"], base, hb, r.get("error") or "")
                  for b, r in rows.items()]
    return "\n".join(lines) + "\n"


def _line(model: str, engine: str, ms: float | None, base: float, hb: float | None,
          error: str = "") -> str:
    if ms is None:
        return f"| {model} | {engine} | error: {error} | | |"
    versus = f"{ms / hb:.2f}" if hb else ""
    return f"| {model} | {engine} | {ms:.1f} | {ms / base:.2f} | {versus} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hummingbird", type=Path,
                        help="a folder holding hummingbird-ml (see the module docstring)")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--max-seconds", type=float, default=8.0)
    parser.add_argument("--model", action="append", choices=list(MODELS))
    args = parser.parse_args()
    if args.hummingbird:
        sys.path.insert(0, str(args.hummingbird.resolve()))
    results = run(args.model or list(MODELS), args.max_seconds, args.hummingbird is not None)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
