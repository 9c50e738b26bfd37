"""The seed pipeline, end to end: train, export to ONNX, run everywhere, compare.

This is the classic interoperability recipe (a classifier trained in PyTorch, exported with
named inputs and a dynamic batch axis, then run by other engines) made to work on current
frameworks, with a parity table that proves the engines agree with the framework that trained
it. The same recipe starts from Keras, scikit-learn, LightGBM, XGBoost or JAX (``source``):
each trains its own classifier on the same data and exports with its field's converter.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelport.comparison import compare_arrays
from modelport.errors import InputError, UnsupportedOperatorError
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
    source: str
    framework: str  # the source framework, with its version
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
            "passed": self.passed, "source": self.source, "framework": self.framework,
            "out_dir": self.out_dir, "model_path": self.model_path,
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


Say = Callable[[str], None]


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


@dataclass(frozen=True)
class Recipe:
    """How one source framework trains the classifier, answers, and exports it.

    ``scores`` are the model's answers as the file's ``output`` holds them (logits from the
    networks, probabilities from the tree ensembles); ``labels``, for the estimators whose
    files also give class labels (``label``), are its predicted classes.
    """

    framework: str
    packages: tuple[str, ...]  # the distributions that provide it; the first found is shown
    output: str
    fit: Callable[[np.ndarray, np.ndarray, int, int, Say], tuple[Any, list[float]]]
    scores: Callable[[Any, np.ndarray], np.ndarray]
    export: Callable[[Any, np.ndarray, Path, float, str], ExportResult]
    labels: Callable[[Any, np.ndarray], np.ndarray] | None = None


def _fit_torch(x: np.ndarray, y: np.ndarray, epochs: int, seed: int,
               say: Say) -> tuple[Any, list[float]]:
    return train(x, y, epochs=epochs, seed=seed,
                 on_epoch=lambda e, loss: say(f"train epoch {e + 1}/{epochs} loss {loss:.3f}"))


def _scores_torch(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.asarray(model(torch.from_numpy(x)).numpy())


def _export_torch(model: Any, x: np.ndarray, path: Path, tolerance: float,
                  exporter: str) -> ExportResult:
    import torch

    import modelport.export

    return modelport.export.torch(model, torch.from_numpy(x), path, input_names=["input"],
                                  output_names=["output"], exporter=exporter, atol=tolerance,
                                  rtol=0.0, report=False)


def _fit_keras(x: np.ndarray, y: np.ndarray, epochs: int, seed: int,
               say: Say) -> tuple[Any, list[float]]:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(HIDDEN, "relu"),
                              keras.layers.Dense(CLASSES)])
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = []
    for epoch in range(epochs):
        history = model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        losses.append(float(history.history["loss"][-1]))
        say(f"train epoch {epoch + 1}/{epochs} loss {losses[-1]:.3f}")
    return model, losses


def _scores_keras(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False))


def _export_keras(model: Any, x: np.ndarray, path: Path, tolerance: float,
                  exporter: str) -> ExportResult:
    import modelport.export

    return modelport.export.keras(model, x, path, atol=tolerance, rtol=0.0, report=False)


def _fit_jax(x: np.ndarray, y: np.ndarray, epochs: int, seed: int,
             say: Say) -> tuple[Any, list[float]]:
    """The same two-layer network in plain JAX, trained with optax's Adam."""
    import jax
    import jax.numpy as jnp
    import optax

    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    params = {"w1": jax.random.normal(k1, (FEATURES, HIDDEN)) / np.sqrt(FEATURES),
              "b1": jnp.zeros(HIDDEN),
              "w2": jax.random.normal(k2, (HIDDEN, CLASSES)) / np.sqrt(HIDDEN),
              "b2": jnp.zeros(CLASSES)}
    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)

    def loss_fn(p: Any, xb: Any, yb: Any) -> Any:
        logits = _mlp(p, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def step(p: Any, s: Any, xb: Any, yb: Any) -> Any:
        loss, grads = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, s = optimizer.update(grads, s)
        return optax.apply_updates(p, updates), s, loss

    rng = np.random.default_rng(seed)
    losses = []
    for epoch in range(epochs):
        order, total = rng.permutation(len(x)), 0.0
        for start in range(0, len(x), 64):
            idx = order[start:start + 64]
            params, state, loss = step(params, state, x[idx], y[idx])
            total += float(loss) * len(idx)
        losses.append(total / len(x))
        say(f"train epoch {epoch + 1}/{epochs} loss {losses[-1]:.3f}")
    return jax.jit(functools.partial(_mlp, params)), losses


def _mlp(params: Any, x: Any) -> Any:
    import jax

    return jax.nn.relu(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def _export_jax(model: Any, x: np.ndarray, path: Path, tolerance: float,
                exporter: str) -> ExportResult:
    import modelport.export

    return modelport.export.jax(model, x, path, atol=tolerance, rtol=0.0, report=False)


def _estimator(build: Callable[[int], Any]) -> Callable[..., tuple[Any, list[float]]]:
    """Fit a scikit-learn-style estimator; it has no epochs, so no losses."""
    def fit(x: np.ndarray, y: np.ndarray, epochs: int, seed: int,
            say: Say) -> tuple[Any, list[float]]:
        say("fit")
        return build(seed).fit(x, y), []
    return fit


def _forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RandomForestClassifier(
        n_estimators=50, max_depth=8, random_state=seed))


def _lightgbm(seed: int) -> Any:
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=100, random_state=seed, verbose=-1)


def _xgboost(seed: int) -> Any:
    import xgboost

    return xgboost.XGBClassifier(n_estimators=100, max_depth=4, random_state=seed)


def _probabilities(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(x))


def _predicted(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x)).astype(np.int64)


def _export_estimator(name: str) -> Callable[..., ExportResult]:
    def export(model: Any, x: np.ndarray, path: Path, tolerance: float,
               exporter: str) -> ExportResult:
        import modelport.export

        return getattr(modelport.export, name)(model, x, path, atol=tolerance, rtol=0.0,
                                               report=False)
    return export


RECIPES: dict[str, Recipe] = {
    "torch": Recipe("PyTorch", ("torch",), "output", _fit_torch, _scores_torch, _export_torch),
    "keras": Recipe("Keras", ("keras",), "output", _fit_keras, _scores_keras, _export_keras),
    "jax": Recipe("JAX", ("jax",), "output", _fit_jax, lambda m, x: np.asarray(m(x)),
                  _export_jax),
    "sklearn": Recipe("scikit-learn", ("scikit-learn",), "probabilities", _estimator(_forest),
                      _probabilities, _export_estimator("sklearn"), _predicted),
    "lightgbm": Recipe("LightGBM", ("lightgbm",), "probabilities", _estimator(_lightgbm),
                       _probabilities, _export_estimator("lightgbm"), _predicted),
    "xgboost": Recipe("XGBoost", ("xgboost-cpu", "xgboost"), "probabilities", _estimator(_xgboost),
                      _probabilities, _export_estimator("xgboost"), _predicted),
}


def run_demo(out_dir: str | Path = "modelport-demo", *, source: str = "torch", epochs: int = 5,
             samples: int = 4000, seed: int = 0, batches: Sequence[int] = (1, 7, 1000),
             backends: Sequence[str] | None = None, tolerance: float = 1e-5,
             exporter: str = "dynamo", on_progress: Say | None = None) -> DemoReport:
    """Run the seed pipeline; see the module docstring.

    Args:
        out_dir: where the model, the feeds and the report are written.
        source: the framework that trains and exports: one of ``RECIPES``.
        backends: the backends to run; every available one when not given.
        tolerance: the largest absolute difference from the source that counts as agreement;
            for the estimators, their labels must also be equal.
        exporter: torch's exporter (``--from torch`` only).
        on_progress: called with a label as each step starts.
    """
    from modelport.backends import list_backends
    from modelport.io import save_npz, to_jsonable, write_bytes

    if source not in RECIPES:
        raise InputError(f"unknown source {source!r}: choose one of {', '.join(RECIPES)}")
    if backends is not None:
        from modelport.backends import check_backends

        check_backends(backends)
    if exporter not in ("dynamo", "torchscript"):
        raise InputError(f"unknown exporter {exporter!r}: dynamo or torchscript")
    recipe = RECIPES[source]
    framework = f"{recipe.framework} {_version(recipe)}"
    say = on_progress or (lambda label: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say("data")
    x, y = make_data(samples, seed)
    n_train = samples * 3 // 4
    model, losses = recipe.fit(x[:n_train], y[:n_train], epochs, seed, say)
    accuracy = float(np.mean(recipe.scores(model, x[n_train:]).argmax(1) == y[n_train:]))

    say("export")
    model_path = out / "classifier.onnx"
    exported = recipe.export(model, x[:4], model_path, tolerance, exporter)
    feeds = {b: _rows(x, b) for b in batches}
    expected = {b: recipe.scores(model, f) for b, f in feeds.items()}
    labels = {b: recipe.labels(model, f) for b, f in feeds.items()} if recipe.labels else {}

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
        try:
            parity.append(_parity(name, infos[name].version if name in infos else None,
                                  model_path, recipe.output, feeds, expected, labels,
                                  tolerance))
        except UnsupportedOperatorError as exc:
            if backends is not None:  # asked for by name: its gap is the answer
                parity.append(ParityRow(name, infos[name].version if name in infos else None,
                                        error=str(exc), tolerance=tolerance))
            else:  # OpenVINO has no ai.onnx.ml: not a disagreement, a backend that can't
                unavailable[name] = f"cannot run this model: {exc}"

    inputs_path = out / "inputs.npz"
    save_npz(inputs_path, {f"batch_{b}": f for b, f in feeds.items()})
    report = DemoReport(source, framework, str(out), str(model_path), [], losses, accuracy,
                        exported, list(batches), tolerance, parity, unavailable)
    report_path = out / "report.json"
    report.files = [str(model_path), *(str(out / f) for f in exported.external_data),
                    str(inputs_path), str(report_path)]
    write_bytes(report_path, json.dumps(to_jsonable(report), indent=2).encode())
    return report


def _version(recipe: Recipe) -> str:
    import importlib.metadata

    for package in recipe.packages:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise InputError(f"--from {recipe.framework}: {recipe.packages[0]} is not installed "
                     f"(pip install 'modelport[all]')")


def _rows(x: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` rows of the data, repeated if it has fewer."""
    return np.ascontiguousarray(np.resize(x, (batch, x.shape[1])))


def _parity(name: str, version: str | None, model_path: Path, output: str,
            feeds: dict[int, np.ndarray], expected: dict[int, np.ndarray],
            labels: dict[int, np.ndarray], tolerance: float) -> ParityRow:
    from modelport.backends import get_backend
    from modelport.errors import ModelportError

    row = ParityRow(name, version, tolerance=tolerance)
    try:
        session = get_backend(name).prepare(model_path)
        for batch, feed in feeds.items():
            start = time.perf_counter()
            actual = session.run({"input": feed})
            row.seconds[batch] = time.perf_counter() - start
            row.max_abs_error[batch] = compare_arrays(
                output, actual[output], expected[batch].astype(np.float32), atol=tolerance,
                rtol=0.0).max_abs_error
            if batch in labels:
                differ = int(np.sum(np.asarray(actual["label"]) != labels[batch]))
                if differ:
                    row.error = f"labels differ from the source's on {differ} of {batch} rows"
    except UnsupportedOperatorError:
        raise  # a backend that cannot run the model: the caller decides what that means
    except ModelportError as exc:
        row.error = str(exc)
    return row
