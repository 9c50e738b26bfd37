"""Translating backends against ONNX Runtime and against the original PyTorch module.

Models: the seed classifier, ResNet-50 and BERT-base (random weights from ``transformers``
configs; seq 128), at batch 1 and 8. Each backend runs in its own process through
``modelport.bench``; the original module is timed in this process the same way (warm-up, then
the median of repeated runs). Ratios are against ONNX Runtime from the same run, since this
machine is shared and absolute times drift.

    .venv/bin/python benchmarks/translating.py [--quick] [--json out.json]   # prints a table
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

import modelport

CACHE = Path(__file__).resolve().parent / ".cache"
BACKENDS = ["onnxruntime", "torch", "jax", "tensorflow", "numpy"]


def seed_model() -> tuple[Any, tuple[Any, ...], list[str]]:
    from modelport.demo import make_data, train

    x, y = make_data(2000, seed=0)
    model, _ = train(x, y, epochs=2, seed=0)
    return model, (torch.from_numpy(x[:4]),), ["input"]


def resnet50() -> tuple[Any, tuple[Any, ...], list[str]]:
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(0)
    model = ResNetModel(ResNetConfig()).eval()  # the default config is ResNet-50

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.model(pixel_values).pooler_output

    return Pooled().eval(), (torch.randn(2, 3, 224, 224),), ["pixel_values"]


def bert_base() -> tuple[Any, tuple[Any, ...], list[str]]:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig()).eval()  # the default config is BERT-base

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
            return self.model(input_ids, attention_mask).last_hidden_state

    ids = torch.randint(0, 30000, (2, 128))
    return Hidden().eval(), (ids, torch.ones_like(ids)), ["input_ids", "attention_mask"]


MODELS = {"seed": seed_model, "resnet50": resnet50, "bert-base": bert_base}


def feeds(module_inputs: tuple[Any, ...], names: list[str], batch: int) -> dict[str, Any]:
    out = {}
    for name, example in zip(names, module_inputs, strict=True):
        shape = (batch, *example.shape[1:])
        if example.dtype == torch.int64:
            out[name] = (torch.ones(shape, dtype=torch.int64) if name == "attention_mask"
                         else torch.randint(0, 30000, shape))
        else:
            out[name] = torch.randn(shape)
    return out


def time_module(module: Any, inputs: dict[str, Any], max_seconds: float) -> float:
    """Median latency (ms) of the original module, warm-up excluded."""
    args = list(inputs.values())
    with torch.no_grad():
        for _ in range(3):
            module(*args)
        times: list[float] = []
        deadline = time.perf_counter() + max_seconds
        while len(times) < 100 and (len(times) < 5 or time.perf_counter() < deadline):
            start = time.perf_counter()
            module(*args)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def run(models: list[str], batches: list[int], max_seconds: float) -> dict[str, Any]:
    CACHE.mkdir(exist_ok=True)
    results: dict[str, Any] = {"machine": {"platform": platform.platform(),
                                           "processor": platform.processor(),
                                           "threads": torch.get_num_threads(),
                                           "python": platform.python_version()},
                               "date": date.today().isoformat(), "models": {}}
    for name in models:
        module, example, names = MODELS[name]()
        path = CACHE / f"{name}.onnx"
        if not path.exists():
            print(f"exporting {name} ...", file=sys.stderr)
            modelport.export.torch(module, example, path, input_names=names, report=False,
                                   atol=1e-3, rtol=1e-3)
        print(f"benchmarking {name} ...", file=sys.stderr)
        # the exports fix every dimension but the batch (BERT's sequence is 128)
        report = modelport.bench(path, BACKENDS, batches, warmup=3, runs=50,
                                 max_seconds=max_seconds)
        module_ms = {b: time_module(module, feeds(example, names, b), max_seconds)
                     for b in batches}
        results["models"][name] = {"module_ms": module_ms,
                                   "backends": [r.__dict__ for r in report.results]}
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [f"Measured {results['date']} on {results['machine']['platform']} "
             f"({results['machine']['threads']} torch threads), by "
             f"`benchmarks/translating.py`. p50 latency in ms; ratios are to ONNX Runtime and "
             f"to the original PyTorch module in the same run.", "",
             "| model | batch | backend | p50 ms | × onnxruntime | × PyTorch module | "
             "prepare s | first call s |", "|---|---|---|---|---|---|---|---|"]
    for name, data in results["models"].items():
        rows = data["backends"]
        for batch in sorted({r["batch"] for r in rows}):
            at = {r["backend"]: r for r in rows if r["batch"] == batch}
            base = at.get("onnxruntime", {}).get("p50_ms")
            module = data["module_ms"][str(batch)] if str(batch) in data["module_ms"] \
                else data["module_ms"][batch]
            lines.append(f"| {name} | {batch} | PyTorch module | {module:.3f} | "
                         f"{module / base:.2f} | 1.00 | | |" if base else "")
            for backend, r in at.items():
                if r["p50_ms"] is None:
                    lines.append(f"| {name} | {batch} | {backend} | error: {r['error']} | | | | |")
                    continue
                lines.append(
                    f"| {name} | {batch} | {backend} | {r['p50_ms']:.3f} | "
                    f"{r['p50_ms'] / base:.2f} | {r['p50_ms'] / module:.2f} | "
                    f"{r['prepare_s']:.2f} | {r['first_run_s']:.2f} |")
    return "\n".join(line for line in lines if line) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the seed model only")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--max-seconds", type=float, default=8.0)
    args = parser.parse_args()
    models = ["seed"] if args.quick else list(MODELS)
    results = run(models, [1, 8], args.max_seconds)
    results["models"] = json.loads(json.dumps(results["models"]))  # int keys -> str
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
