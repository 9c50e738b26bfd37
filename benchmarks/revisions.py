"""Did a change make a translating backend slower? Two source trees, timed in turns.

On a shared machine absolute times drift by more than the changes worth measuring (ONNX
Runtime itself moved 42-48 ms on ResNet-50 within an hour here), so ratios taken in two
separate runs cannot tell 5% apart. This script alternates the trees: each round prepares
every (model, backend) once per tree, in a fresh process, and takes the p50 of the timed
calls; the verdict is the median over rounds of new/old. Models come from
``benchmarks/.cache`` (written by ``benchmarks/translating.py``).

    git worktree add /tmp/base 631408d      # the old tree, beside this one
    python benchmarks/revisions.py --old /tmp/base/src --new src --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"

TIMER = """
import os, sys, time, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, modelport
from modelport.inputs import generate_inputs
path, backend, batch, calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
session = modelport.get_backend(backend).prepare(path)
call = session.timed_call(generate_inputs(session.inputs, batch=batch, seed=0))
for _ in range(3):
    call()
times = []
for _ in range(calls):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
print(json.dumps({"p50_ms": float(np.median(times)) * 1e3, "source": modelport.__file__}))
"""


def time_once(src: str, model: Path, backend: str, batch: int, calls: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    result = subprocess.run([sys.executable, "-c", TIMER, str(model), backend, str(batch),
                             str(calls)], capture_output=True, text=True, env=env, timeout=900)
    if result.returncode:
        raise SystemExit(f"{backend} on {model.name} failed:\n{result.stderr[-2000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["source"].startswith(str(Path(src).resolve())), data["source"]
    return float(data["p50_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="the old tree's src folder")
    parser.add_argument("--new", required=True, help="the new tree's src folder")
    parser.add_argument("--models", nargs="+", default=["seed", "resnet50", "bert-base"])
    parser.add_argument("--backends", nargs="+",
                        default=["numpy", "torch", "jax", "tensorflow"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every timing here")
    args = parser.parse_args()
    timings: dict[str, dict[str, list[float]]] = {}
    for round_ in range(args.rounds):
        for model in args.models:
            path = CACHE / f"{model}.onnx"
            calls = 3000 if model == "seed" else 15
            for backend in args.backends:
                key = f"{model}/{backend}"
                cell = timings.setdefault(key, {"old": [], "new": []})
                # the order alternates too, so neither tree always runs on a warmer machine
                order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
                for tree in order:
                    src = args.old if tree == "old" else args.new
                    cell[tree].append(time_once(src, path, backend, args.batch, calls))
                print(f"round {round_ + 1}: {key}: old {cell['old'][-1]:.3f} ms, "
                      f"new {cell['new'][-1]:.3f} ms", file=sys.stderr)
    print(f"| model / backend (batch {args.batch}) | old p50 ms | new p50 ms | new/old "
          f"(median of {args.rounds} rounds) |")
    print("|---|---|---|---|")
    for key, cell in timings.items():
        ratios = [n / o for n, o in zip(cell["new"], cell["old"], strict=True)]
        print(f"| {key} | {statistics.median(cell['old']):.3f} | "
              f"{statistics.median(cell['new']):.3f} | {statistics.median(ratios):.3f} |")
    if args.json:
        args.json.write_text(json.dumps(timings, indent=1))


if __name__ == "__main__":
    main()
