"""The classic recipe, line for line, on current frameworks.

The original: train in PyTorch, ``torch.onnx.export`` with named inputs and a dynamic batch,
then ``onnx_tf.backend.prepare(model).run(x)`` and ``caffe2.python.onnx.backend`` calls. Here the
same calls go to modelport's backends, which are drop-in ``onnx.backend`` modules.

Run: ``.venv/bin/python examples/seed_pipeline.py``
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

import modelport
import modelport.backends.onnxruntime as ort_backend
import modelport.backends.openvino as openvino_backend
import modelport.backends.reference as reference_backend
import modelport.backends.tensorflow as tensorflow_backend  # the seed's onnx_tf.backend
from modelport.demo import make_data, train


def main() -> int:
    x, y = make_data(2000, seed=0)
    model, _ = train(x, y, epochs=3, seed=0)

    path = Path(tempfile.mkdtemp()) / "classifier.onnx"
    result = modelport.export.torch(model, torch.from_numpy(x[:4]), path,
                                    input_names=["input"], output_names=["output"])
    print(f"exported with {result.exporter}; verified: {result.passed}")

    onnx_model = onnx.load(str(path))
    batch = x[:7]
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    worst = 0.0
    for backend in (ort_backend, openvino_backend, reference_backend, tensorflow_backend):
        outputs = backend.prepare(onnx_model).run(batch)  # the seed's call, unchanged
        error = float(np.abs(outputs[0] - expected).max())
        worst = max(worst, error)
        print(f"{backend.__name__.rsplit('.', 1)[-1]:12s} max |diff| vs PyTorch: {error:.2e}")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
