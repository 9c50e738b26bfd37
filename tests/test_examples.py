"""The examples in the README run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def test_seed_pipeline_example() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "seed_pipeline.py")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "exported with dynamo; verified: True" in result.stdout
    for name in ("onnxruntime", "openvino", "reference", "tensorflow"):
        assert name in result.stdout
