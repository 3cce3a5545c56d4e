"""Token + position (learned | sinusoidal) + token-type embeddings, then LayerNorm and dropout."""

from __future__ import annotations

import math

import torch
from torch import nn

from hsearch.model.config import HybridBertConfig


def sinusoidal_table(num_positions: int, dim: int) -> torch.Tensor:
    """Vaswani et al.'s fixed table: sin on even, cos on odd dimensions."""
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table.float()


class HybridBertEmbeddings(nn.Module):
    def __init__(self, config: HybridBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.sinusoidal = config.position_embedding == "sinusoidal"
        if self.sinusoidal:
            # Not saved (persistent=False): rebuilt by _init_weights, also after from_pretrained.
            self.register_buffer(
                "position_table", sinusoidal_table(config.max_position_embeddings, config.hidden_size),
                persistent=False,
            )
        else:
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = (
            nn.Embedding(config.type_vocab_size, config.hidden_size) if config.type_vocab_size > 0 else None
        )
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.max_positions = config.max_position_embeddings

    def forward(self, input_ids: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        t = x.shape[1]
        if t > self.max_positions:
            raise ValueError(f"sequence length {t} exceeds max_position_embeddings={self.max_positions}")
        if position_ids is None:
            pos = self.position_table[:t] if self.sinusoidal else self.position_embeddings.weight[:t]
            x = x + pos.to(x.dtype)
        else:
            table = self.position_table if self.sinusoidal else self.position_embeddings.weight
            x = x + table[position_ids].to(x.dtype)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:  # all type 0: add one row instead of a lookup
                x = x + self.token_type_embeddings.weight[0]
            else:
                x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))
