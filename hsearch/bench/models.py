"""Models a benchmark compares: hybrid layouts and the Hugging Face BERT reference, same dims."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hsearch.errors import HsearchError
from hsearch.layout import Layout, resolve

# Model dimensions by name; "small" keeps tests and smoke runs in seconds on a CPU.
DIMS: dict[str, dict[str, int]] = {
    "base": {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072, "vocab_size": 30522},
    "small": {"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 256, "vocab_size": 1000},
}
REFERENCE_NAME = "transformers.Bert"


class BenchError(HsearchError, ValueError):
    """Bad benchmark arguments."""


@dataclass(frozen=True)
class BenchModel:
    name: str  # preset name or layout string
    layout: str


def dims_for(name: str) -> dict[str, int]:
    if name not in DIMS:
        raise BenchError(f"--dims {name!r} is not known (allowed: {', '.join(DIMS)})")
    return dict(DIMS[name])


def parse_layouts(text: str | list[str]) -> list[BenchModel]:
    """Comma-separated presets/layout strings -> bench entries (errors name the bad one)."""
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if not items:
        raise BenchError("--layouts is empty (give preset names or layout strings, comma-separated)")
    out = []
    for item in items:
        layout, _, preset = resolve(item)  # raises LayoutError (an HsearchError) naming the item
        out.append(BenchModel(name=preset or str(layout), layout=item))
    return out


def parse_ints(text: str | list[int], flag: str) -> list[int]:
    if isinstance(text, list):
        values = text
    else:
        try:
            values = [int(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise BenchError(f"{flag} {text!r}: expected comma-separated positive integers") from None
    if not values or any(v < 1 for v in values):
        raise BenchError(f"{flag} {text!r}: expected comma-separated positive integers")
    return values


def num_layers(entry: BenchModel) -> int:
    return resolve(entry.layout)[0].num_layers


def build_hybrid(entry: BenchModel, dims: dict[str, int], max_positions: int, *, mlm: bool = False,
                 seed: int = 0) -> torch.nn.Module:
    from hsearch.model import HybridBertConfig, HybridBertForMaskedLM, HybridBertModel

    torch.manual_seed(seed)
    config = HybridBertConfig.from_layout(entry.layout, max_position_embeddings=max(512, max_positions), **dims)
    return HybridBertForMaskedLM(config) if mlm else HybridBertModel(config, add_pooling_layer=False)


def build_reference(layers: int, dims: dict[str, int], max_positions: int, *, mlm: bool = False,
                    seed: int = 0, attn_implementation: str = "sdpa") -> torch.nn.Module:
    """``transformers`` BERT of the same dims (BERT-base options: GELU, biases, post-LN)."""
    from transformers import BertConfig, BertForMaskedLM, BertModel

    torch.manual_seed(seed)
    config = BertConfig(num_hidden_layers=layers, max_position_embeddings=max(512, max_positions), **dims)
    config._attn_implementation = attn_implementation
    if mlm:
        return BertForMaskedLM(config)
    return BertModel(config, add_pooling_layer=False)


def layout_of(entry: BenchModel) -> Layout:
    return resolve(entry.layout)[0]


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

