"""Encoder layer: one attention kind + one norm placement, and the feed-forward sub-layer.

Norm placements (x = residual stream, f = sub-layer):
  post  x = LN(x + f(x))                       BERT
  pre   x = x + f(LN(x))                       GPT-2 / cramming
  sub   x = x + f(LN(x)), f with an inner LN   Foundation Transformers (torchscale sub-LN):
        before the attention output projection and before the FFN's second linear.
A pre/sub layer leaves the stream un-normalised, so it gets an ``exit_norm`` when it is the
last layer or the next layer is ``post`` (a post layer expects a normalised input, like the
output of a BERT layer). That makes mixed layouts compose and ends every model on an LN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hsearch.model.attention import ATTENTION_CLASSES, AttentionMasks
from hsearch.model.config import HybridBertConfig

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


def subln_init_gain(num_layers: int) -> float:
    """torchscale's sub-LN (Magneto) weight gain sqrt(ln(2N)).

    N is the number of encoder layers (torchscale's ``encoder_layers`` for an encoder-only
    model, where 2N counts its attention + FFN sub-layers), not the number of sub-LN layers:
    the bound is on the whole residual stack's update, whatever norm the other layers use.
    A one-layer model gives sqrt(ln 2) < 1, as in torchscale.
    """
    return math.sqrt(math.log(2 * num_layers))


class FeedForward(nn.Module):
    def __init__(self, config: HybridBertConfig, sub: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.ffn_bias)
        self.act = ACTIVATIONS[config.hidden_act]
        self.norm = nn.LayerNorm(config.intermediate_size, eps=config.layer_norm_eps) if sub else None
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.ffn_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1(x))
        if self.norm is not None:
            x = self.norm(x)
        return self.fc2(x)


class HybridBertLayer(nn.Module):
    def __init__(self, config: HybridBertConfig, kind: str, norm: str, exit_norm: bool) -> None:
        super().__init__()
        self.kind, self.norm_placement = kind, norm
        self.post = norm == "post"
        sub = norm == "sub"
        self.attention = ATTENTION_CLASSES[kind](config, sub=sub)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config, sub=sub)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.exit_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if exit_norm else None
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, masks: AttentionMasks) -> torch.Tensor:
        if self.post:
            x = self.attention_norm(x + self.dropout(self.attention(x, masks)))
            return self.ffn_norm(x + self.dropout(self.ffn(x)))
        x = x + self.dropout(self.attention(self.attention_norm(x), masks))
        x = x + self.dropout(self.ffn(self.ffn_norm(x)))
        return self.exit_norm(x) if self.exit_norm is not None else x


def subln_scaled_rows(layer: HybridBertLayer) -> list[tuple[str, slice]]:
    """Weight rows that sub-LN initialisation scales by :func:`subln_init_gain`, as
    (parameter name within the layer, output-row slice); empty for a post or pre layer.

    torchscale's sub-LN init scales the maps on the value path and never the query/key ones:
    ``S``/``L`` the value rows of the fused q|k|v projection and the output projection; ``A``
    the same plus its ``transform`` (its q also feeds the pooling scores, so like torchscale's
    q/k it stays unscaled); every FFN both linears.
    """
    if layer.norm_placement != "sub":
        return []
    h = layer.attention.out.in_features
    rows = [("attention.qkv.weight", slice(2 * h, 3 * h)), ("attention.out.weight", slice(None))]
    if hasattr(layer.attention, "transform"):
        rows.append(("attention.transform.weight", slice(None)))
    return rows + [("ffn.fc1.weight", slice(None)), ("ffn.fc2.weight", slice(None))]


class HybridBertEncoder(nn.Module):
    def __init__(self, config: HybridBertConfig) -> None:
        super().__init__()
        layout = config.parsed_layout
        norms = layout.norms
        self.layer = nn.ModuleList(
            HybridBertLayer(
                config, kind, norm,
                exit_norm=norm != "post" and (i == len(norms) - 1 or norms[i + 1] == "post"),
            )
            for i, (kind, norm) in enumerate(zip(layout.kinds, norms))
        )
        # Only build the local blocks' masks when some layer needs them.
        self.local_window = config.local_window if "L" in layout.kinds else None

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None,
                output_hidden_states: bool = False) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        masks = AttentionMasks.build(attention_mask, x.shape[1], x.device, self.local_window,
                                     batch_size=x.shape[0])
        states = (x,) if output_hidden_states else None
        for layer in self.layer:
            x = layer(x, masks)
            if states is not None:
                states = states + (x,)
        return x, states
