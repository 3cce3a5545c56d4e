"""Tiny model configs shared by the model tests (tests/ is on sys.path under pytest)."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from hsearch.model import HybridBertConfig

VOCAB = 97
NORM_LAYOUTS = ["SAL:post", "SAL:pre", "SAL:sub", "S/post A/pre L/sub S/sub A/post L/pre"]


def tiny_config(layout: str = "SAL:sub", **overrides) -> HybridBertConfig:
    options = dict(
        layout=layout, vocab_size=VOCAB, hidden_size=32, num_attention_heads=4, intermediate_size=48,
        max_position_embeddings=64, local_window=4, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    options.update(overrides)
    return HybridBertConfig(**options)


def randomise_(model: torch.nn.Module, std: float = 0.1, seed: int = 0) -> torch.nn.Module:
    """Perturb every parameter (biases, LN gains too) so no test passes on zeros and ones."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
    return model


def batch(b: int = 3, t: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids (never the pad id 0) and a mask with different real lengths per row."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (b, t), generator=gen)
    mask = torch.ones(b, t, dtype=torch.long)
    for row in range(1, b):
        mask[row, t - 3 * row:] = 0
    return ids, mask


class ShapeRecorder(TorchDispatchMode):
    """Records the shape of every tensor an operator returns (to prove one was never built)."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out
