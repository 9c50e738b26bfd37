"""The seed pipeline, end to end: train in PyTorch, export to ONNX, run everywhere, compare.

This is the classic interoperability recipe (a classifier trained in PyTorch, exported with
named inputs and a dynamic batch axis, then run by other engines) made to work on current
frameworks, with a parity table that proves the engines agree with PyTorch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelport.comparison import compare_arrays
from modelport.errors import InputError
from modelport.export.base import ExportResult

FEATURES, HIDDEN, CLASSES = 20, 64, 3


@dataclass
class ParityRow:
    backend: str
    version: str | None
    max_abs_error: dict[int, float | None] = field(default_factory=dict)  # per batch size
    seconds: dict[int, float | None] = field(default_factory=dict)  # one run per batch size
    error: str | None = None
    tolerance: float = 1e-5

    @property
    def passed(self) -> bool:
        return self.error is None and all(e is not None and e <= self.tolerance
                                          for e in self.max_abs_error.values())


@dataclass
class DemoReport:
    out_dir: str
    model_path: str
    files: list[str]
    losses: list[float]
    accuracy: float
    export: ExportResult
    batches: list[int]
    tolerance: float
    parity: list[ParityRow]
    unavailable: dict[str, str]

    @property
    def passed(self) -> bool:
        return self.export.passed and bool(self.parity) and all(r.passed for r in self.parity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "out_dir": self.out_dir, "model_path": self.model_path,
            "files": self.files,
            "training": {"losses": self.losses, "accuracy": self.accuracy},
            "export": self.export.to_dict(), "batches": self.batches,
            "tolerance": self.tolerance,
            "parity": [{"backend": r.backend, "version": r.version, "passed": r.passed,
                        "max_abs_error": r.max_abs_error, "seconds": r.seconds,
                        "error": r.error} for r in self.parity],
            "unavailable": self.unavailable,
        }


def make_data(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs, one per class, in ``FEATURES`` dimensions, standardised."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 0.5, size=(CLASSES, FEATURES))  # overlapping: not trivial
    labels = rng.integers(0, CLASSES, size=samples)
    x = centers[labels] + rng.normal(0, 1.0, size=(samples, FEATURES))
    x = (x - x.mean(0)) / x.std(0)
    return x.astype(np.float32), labels.astype(np.int64)


def train(x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int,
          on_epoch: Callable[[int, float], None] | None = None) -> tuple[Any, list[float]]:
    """Train the seed classifier, two Linear layers, with Adam; return it and epoch losses."""
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    losses = []
    for epoch in range(epochs):
        order = torch.randperm(len(xt))
        total = 0.0
        for start in range(0, len(xt), 64):
            idx = order[start:start + 64]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(xt))
        if on_epoch:
            on_epoch(epoch, losses[-1])
    return model.eval(), losses


def run_demo(out_dir: str | Path = "modelport-demo", *, epochs: int = 5, samples: int = 4000,
             seed: int = 0, batches: Sequence[int] = (1, 7, 1000),
             backends: Sequence[str] | None = None, tolerance: float = 1e-5,
             exporter: str = "dynamo",
             on_progress: Callable[[str], None] | None = None) -> DemoReport:
    """Run the seed pipeline; see the module docstring.

    Args:
        out_dir: where the model, the feeds and the report are written.
        backends: the backends to run; every available one when not given.
        tolerance: the largest absolute difference from PyTorch that counts as agreement.
        on_progress: called with a label as each step starts.
    """
    import torch

    import modelport.export
    from modelport.backends import list_backends
    from modelport.io import save_npz, to_jsonable, write_bytes

    if backends is not None:
        from modelport.backends import check_backends

        check_backends(backends)
    if exporter not in ("dynamo", "torchscript"):
        raise InputError(f"unknown exporter {exporter!r}: dynamo or torchscript")
    say = on_progress or (lambda label: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say("data")
    x, y = make_data(samples, seed)
    n_train = samples * 3 // 4
    model, losses = train(x[:n_train], y[:n_train], epochs=epochs, seed=seed,
                          on_epoch=lambda e, loss: say(f"train epoch {e + 1}/{epochs} "
                                                       f"loss {loss:.3f}"))
    with torch.no_grad():
        predictions = model(torch.from_numpy(x[n_train:])).argmax(1).numpy()
    accuracy = float(np.mean(predictions == y[n_train:]))

    say("export")
    model_path = out / "classifier.onnx"
    exported = modelport.export.torch(model, torch.from_numpy(x[:4]), model_path,
                                      input_names=["input"], output_names=["output"],
                                      exporter=exporter, atol=tolerance, rtol=0.0,
                                      report=False)
    feeds = {b: _rows(x, b) for b in batches}
    with torch.no_grad():
        expected = {b: model(torch.from_numpy(f)).numpy() for b, f in feeds.items()}

    infos = {i.name: i for i in list_backends()}
    # Engines first, then the translating backends.
    names = list(backends) if backends is not None else sorted(
        (n for n, i in infos.items() if i.available),
        key=lambda n: (infos[n].kind != "runtime", n))
    unavailable = {n: i.reason or "" for n, i in infos.items()
                   if not i.available and backends is None}
    parity = []
    for name in names:
        say(f"run {name}")
        parity.append(_parity(name, infos[name].version if name in infos else None, model_path,
                              feeds, expected, tolerance))

    inputs_path = out / "inputs.npz"
    save_npz(inputs_path, {f"batch_{b}": f for b, f in feeds.items()})
    report = DemoReport(str(out), str(model_path), [], losses, accuracy, exported, list(batches),
                        tolerance, parity, unavailable)
    report_path = out / "report.json"
    report.files = [str(model_path), *(str(out / f) for f in exported.external_data),
                    str(inputs_path), str(report_path)]
    write_bytes(report_path, json.dumps(to_jsonable(report), indent=2).encode())
    return report


def _rows(x: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` rows of the data, repeated if it has fewer."""
    return np.ascontiguousarray(np.resize(x, (batch, x.shape[1])))


def _parity(name: str, version: str | None, model_path: Path, feeds: dict[int, np.ndarray],
            expected: dict[int, np.ndarray], tolerance: float) -> ParityRow:
    from modelport.backends import get_backend
    from modelport.errors import ModelportError

    row = ParityRow(name, version, tolerance=tolerance)
    try:
        session = get_backend(name).prepare(model_path)
        for batch, feed in feeds.items():
            start = time.perf_counter()
            actual = session.run({"input": feed})["output"]
            row.seconds[batch] = time.perf_counter() - start
            row.max_abs_error[batch] = compare_arrays("output", actual, expected[batch],
                                                      atol=tolerance, rtol=0.0).max_abs_error
    except ModelportError as exc:
        row.error = str(exc)
    return row
