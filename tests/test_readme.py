"""The README's Python blocks run as printed, in a folder where `./scripts/demo` has run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def test_the_python_blocks_run_as_printed(tmp_path: Path) -> None:
    from modelport.demo import run_demo

    run_demo(tmp_path / "modelport-demo", epochs=1, backends=["onnxruntime"])
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) >= 3
    # One script, as a user would paste them in order into a file and run it: no main guard.
    (tmp_path / "readme.py").write_text("\n".join(blocks))
    result = subprocess.run([sys.executable, "readme.py"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TensorSpec(name='input'" in result.stdout and "dynamo True" in result.stdout
    for artifact in ("net.onnx", "classifier.pt2", "classifier.jax", "classifier_savedmodel"):
        assert (tmp_path / artifact).exists(), artifact
