"""PyTorch export with each exporter, the fallback between them, and the verification."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import modelport  # noqa: E402
from modelport.errors import ExportError, InputError  # noqa: E402


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(6, 3)
        self.embed = torch.nn.Embedding(10, 3)

    def forward(self, x, ids):  # type: ignore[no-untyped-def]
        return torch.softmax(self.linear(x) + self.embed(ids).sum(1), -1), self.linear(x)


def example() -> tuple[object, object]:
    return torch.randn(4, 6), torch.randint(0, 10, (4, 5))


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_each_exporter_exports_and_verifies(exporter: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "two.onnx"
    result = modelport.export.torch(TwoInputs(), example(), path, input_names=["x", "ids"],
                                    output_names=["probs", "logits"], exporter=exporter,
                                    fallback=False)
    assert result.exporter == exporter and result.passed
    assert [a.ok for a in result.attempts] == [True]
    assert result.verification is not None
    assert [c.batch for c in result.verification.cases] == [4, 9]  # example, then 2 * 4 + 1
    for case in result.verification.cases:
        assert [o.name for o in case.outputs] == ["probs", "logits"]
        assert all(o.max_abs_error is not None and o.max_abs_error < 1e-5 for o in case.outputs)
    info = modelport.inspect(path)
    assert [(s.name, s.shape) for s in info.inputs] == [("x", ("batch", 6)),
                                                         ("ids", ("batch", 5))]
    assert [(s.name, s.shape[0]) for s in info.outputs] == [("probs", "batch"),
                                                            ("logits", "batch")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.onnx"]  # one file, no leftovers


def test_opset_choice(tmp_path: Path) -> None:
    result = modelport.export.torch(torch.nn.Linear(3, 2), torch.randn(2, 3),
                                    tmp_path / "l.onnx", opset=18, exporter="torchscript")
    assert result.passed
    assert modelport.inspect(tmp_path / "l.onnx").opset_imports["ai.onnx"] == 18


class DataDependent(torch.nn.Module):
    """A branch on a tensor's value: torch.export refuses it, tracing freezes one branch."""

    def forward(self, x):  # type: ignore[no-untyped-def]
        if x.min() > 0:
            return x * 2
        return x - 1


def test_fallback_is_reported_and_verification_catches_a_frozen_branch(tmp_path: Path) -> None:
    positive = torch.rand(4, 3) + 0.5  # the trace takes the x * 2 branch
    with pytest.warns(torch.jit.TracerWarning):
        result = modelport.export.torch(DataDependent(), positive, tmp_path / "d.onnx")
    dynamo, torchscript = result.attempts
    assert not dynamo.ok and dynamo.error and torchscript.ok
    assert result.exporter == "torchscript"
    assert result.verification is not None
    first, second = result.verification.cases
    assert first.passed  # the example inputs took the traced branch
    assert not second.passed  # normal inputs at batch 9 take the other one
    assert not result.passed


def test_a_failed_verification_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "d.onnx"
    target.write_bytes(b"the previous export")
    with pytest.warns(torch.jit.TracerWarning):
        result = modelport.export.torch(DataDependent(), torch.rand(4, 3) + 0.5, target)
    assert not result.passed and not result.written
    assert "nothing was written" in result.summary()
    assert target.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.onnx"]


def test_an_example_that_does_not_fit_the_module_is_the_callers_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"fails on the example inputs \(float32\[4, 7\]\)"
                                         r".*mat1 and mat2 shapes cannot be multiplied"):
        modelport.export.torch(torch.nn.Linear(6, 3), torch.randn(4, 7), tmp_path / "l.onnx")
    assert list(tmp_path.iterdir()) == []


def test_an_export_gets_the_usual_permissions(tmp_path: Path) -> None:
    result = modelport.export.torch(torch.nn.Linear(6, 3), torch.randn(4, 6), tmp_path / "l.onnx")
    mask = os.umask(0)
    os.umask(mask)
    assert result.written and (tmp_path / "l.onnx").stat().st_mode & 0o777 == 0o666 & ~mask


class NoTensors(torch.nn.Module):
    def forward(self, x):  # type: ignore[no-untyped-def]
        return {"shape": str(tuple(x.shape))}


def test_when_every_exporter_fails_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"every exporter failed: dynamo: .*torchscript: "):
        modelport.export.torch(NoTensors(), torch.randn(2, 3), tmp_path / "out" / "n.onnx")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_cli_export_torch(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "net.py").write_text(
        "import torch\n\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(20, 8), torch.nn.Tanh())\n")
    code, out, _ = cli("export", "torch", f"{tmp_path / 'net.py'}:build", "--shape",
                       "input=4x20", "-o", tmp_path / "net.onnx", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["passed"] and data["exporter"] == "dynamo"
    cases = data["verification"]["cases"]
    assert [c["inputs"]["input"] for c in cases] == [[4, 20], [9, 20]]
    x = np.random.default_rng(0).standard_normal((2, 20)).astype(np.float32)
    out_onnx = modelport.get_backend("onnxruntime").prepare(tmp_path / "net.onnx").run([x])
    assert out_onnx["output"].shape == (2, 8)


def test_cli_export_rejects_a_bad_shape(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("export", "torch", "x.py:f", "--shape", "input=4by20", "-o", "o.onnx")
    assert code == 1 and "expected NAME=DxDxD" in err


def test_cli_export_with_a_wrong_example_shape_is_not_an_internal_error(
        cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "net.py").write_text("import torch\n\ndef build():\n"
                                     "    return torch.nn.Linear(20, 8)\n")
    code, out, err = cli("export", "torch", f"{tmp_path / 'net.py'}:build", "--shape",
                         "input=4x21", "-o", tmp_path / "net.onnx")
    assert code == 1 and out == ""
    assert err.startswith("modelport: error: the module fails on the example inputs")
    assert "internal" not in err and not (tmp_path / "net.onnx").exists()
