"""Small random-weight architectures from ``transformers`` configs, exported to ONNX.

Weights cannot be downloaded here, so every model is built from its config with random weights
(seeded); the configs are small so the tests stay quick, but the graphs have every operator
pattern of their full-size versions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _seeded(build: Callable[[], Any]) -> Any:
    import torch

    torch.manual_seed(0)
    return build().eval()


class _Outputs:
    """Wraps a transformers model so that forward takes named tensors and returns tensors.

    torch.export matches dynamic shapes to forward's parameters, so they are spelled out.
    """

    @staticmethod
    def wrap(model: Any, keys: tuple[str, ...], two_inputs: bool = False) -> Any:
        import torch

        def pick(out: Any) -> Any:
            return tuple(out[k] for k in keys) if len(keys) > 1 else out[keys[0]]

        class One(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, x: Any) -> Any:
                return pick(self.model(x))

        class Two(One):
            def forward(self, x: Any, mask: Any) -> Any:  # type: ignore[override]
                return pick(self.model(x, mask))

        return (Two() if two_inputs else One()).eval()


def resnet() -> tuple[Any, tuple[Any, ...], list[str]]:
    import torch
    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(num_channels=3, embedding_size=16, hidden_sizes=[16, 32],
                          depths=[1, 1], layer_type="bottleneck")
    model = _seeded(lambda: ResNetModel(config))
    return (_Outputs.wrap(model, ("last_hidden_state", "pooler_output")),
            (torch.randn(2, 3, 32, 32),), ["pixel_values"])


def bert() -> tuple[Any, tuple[Any, ...], list[str]]:
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=64)
    model = _seeded(lambda: BertModel(config))
    ids = torch.randint(0, 100, (2, 8))
    return (_Outputs.wrap(model, ("last_hidden_state", "pooler_output"), two_inputs=True),
            (ids, torch.ones_like(ids)), ["input_ids", "attention_mask"])


def gpt2() -> tuple[Any, tuple[Any, ...], list[str]]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                        use_cache=False)
    model = _seeded(lambda: GPT2LMHeadModel(config))
    return _Outputs.wrap(model, ("logits",)), (torch.randint(0, 100, (2, 8)),), ["input_ids"]


def vit() -> tuple[Any, tuple[Any, ...], list[str]]:
    import torch
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=64)
    model = _seeded(lambda: ViTModel(config, add_pooling_layer=False))
    return (_Outputs.wrap(model, ("last_hidden_state",)), (torch.randn(2, 3, 32, 32),),
            ["pixel_values"])


ZOO: dict[str, Callable[[], tuple[Any, tuple[Any, ...], list[str]]]] = {
    "resnet": resnet, "bert": bert, "gpt2": gpt2, "vit": vit}


def export(name: str, folder: Path) -> Path:
    """Export a zoo model with a dynamic batch; the export is verified against torch."""
    import modelport

    module, example, input_names = ZOO[name]()
    path = folder / f"{name}.onnx"
    result = modelport.export.torch(module, example, path, input_names=input_names,
                                    report=False, atol=1e-4, rtol=1e-3)
    assert result.passed, result.summary()
    return path


def feeds_for(path: Path, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of ``batch`` rows: token ids within the vocabulary, masks of ones."""
    import modelport
    from modelport.model import input_specs

    specs = input_specs(modelport.load(path))
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = tuple(batch if i == 0 else d for i, d in enumerate(spec.shape or ()))
        if spec.name == "attention_mask":
            feeds[spec.name] = np.ones(shape, np.int64)
        elif spec.dtype == np.int64:
            feeds[spec.name] = rng.integers(0, 100, shape).astype(np.int64)
        else:
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
    return feeds
