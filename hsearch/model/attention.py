"""Attention sub-layers: ``S`` full self-attention, ``L`` banded local attention, ``A`` additive.

Each module maps ``x [B, T, H]`` to the sub-layer output (before dropout and residual):
projections -> mixing -> (sub-LN: LayerNorm) -> output projection. Heads are a tensor
dimension everywhere; projections are fused into one matmul.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hsearch.model.config import HybridBertConfig


@dataclass(frozen=True)
class AttentionMasks:
    """Masks built once per forward and shared by every layer (None = no masking needed).

    ``real``: [B, T] bool, True at real tokens (used by ``A``).
    ``full``: [B, 1, 1, T] bool key mask for SDPA (``S``).
    ``band``: [B|1, 1, T, T] bool band ∧ key mask for SDPA (``L``).
    """

    real: torch.Tensor | None
    full: torch.Tensor | None
    band: torch.Tensor | None

    @classmethod
    def build(cls, attention_mask: torch.Tensor | None, seq_len: int, device: torch.device,
              local_window: int | None) -> "AttentionMasks":
        real = None if attention_mask is None else attention_mask.to(device=device, dtype=torch.bool)
        if real is not None and not torch.compiler.is_compiling() and bool(real.all()):
            # No padding: drop the mask so SDPA can take its fused (flash) kernel, as transformers
            # does for BERT. Under torch.compile the check would be a data-dependent branch.
            real = None
        full = None if real is None else real[:, None, None, :]
        band = None
        if local_window is not None:
            pos = torch.arange(seq_len, device=device)
            band = ((pos[None, :] - pos[:, None]).abs() <= local_window // 2)[None, None]
            if full is not None:
                # Each token always sees itself, so a padding row far from every real token is
                # never all-False (SDPA would return NaN there and poison later layers).
                band = (band & full) | torch.eye(seq_len, dtype=torch.bool, device=device)
        return cls(real=real, full=full, band=band)


def _inner_norm(config: HybridBertConfig, sub: bool) -> nn.LayerNorm | None:
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if sub else None


class SelfAttention(nn.Module):
    """``S``: multi-head softmax attention over every (unpadded) key via SDPA."""

    mask_name = "full"

    def __init__(self, config: HybridBertConfig, sub: bool = False) -> None:
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = h // self.num_heads
        self.dropout_p = config.attention_probs_dropout_prob
        self.qkv = nn.Linear(h, 3 * h, bias=config.attention_bias)
        self.norm = _inner_norm(config, sub)
        self.out = nn.Linear(h, h, bias=config.attention_bias)

    def forward(self, x: torch.Tensor, masks: AttentionMasks) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        ctx = F.scaled_dot_product_attention(
            q, k, v, attn_mask=getattr(masks, self.mask_name),
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        ctx = ctx.transpose(1, 2).reshape(b, t, h)
        if self.norm is not None:
            ctx = self.norm(ctx)
        return self.out(ctx)


class LocalAttention(SelfAttention):
    """``L``: self-attention restricted to keys within ±local_window/2 positions (band mask)."""

    mask_name = "band"


class AdditiveAttention(nn.Module):
    """``A``: multi-head additive attention (Fastformer; HybridBERT §3.1), linear in T.

    Per head h with d = head_dim:
      alpha_i = softmax_i(w_q·q_i / √d)      Q = Σ alpha_i q_i
      p_i = Q ⊙ k_i                          beta_i = softmax_i(w_k·p_i / √d)
      K = Σ beta_i p_i = Q ⊙ Σ beta_i k_i     u_i = K ⊙ v_i
      r_i = transform(u_i) + q_i             output = out(r_i)  (sub-LN: out(LN(r_i)))
    Since Q is constant over positions, w_k·p_i = (w_k ⊙ Q)·k_i: p is never materialised.
    Padding gets exactly zero weight (masked softmax in at least fp32). No dropout on the
    pooling weights: alpha/beta are global summaries, not per-pair probabilities.
    """

    def __init__(self, config: HybridBertConfig, sub: bool = False) -> None:
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = h // self.num_heads
        self.qkv = nn.Linear(h, 3 * h, bias=config.attention_bias)
        self.query_score = nn.Parameter(torch.empty(self.num_heads, self.head_dim))  # w_q per head
        self.key_score = nn.Parameter(torch.empty(self.num_heads, self.head_dim))  # w_k per head
        self.transform = nn.Linear(h, h, bias=config.attention_bias)
        self.norm = _inner_norm(config, sub)
        self.out = nn.Linear(h, h, bias=config.attention_bias)

    @staticmethod
    def _pool_weights(scores: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        """Softmax over positions (dim 1) of [B, T, heads] scores; padding gets weight 0."""
        scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
        if real is not None:
            # finfo.min rather than -inf: exp underflows to exactly 0 at padding, and an
            # all-padding row stays finite instead of NaN.
            scores = scores.masked_fill(~real[:, :, None], torch.finfo(scores.dtype).min)
        return scores.softmax(dim=1)

    def forward(self, x: torch.Tensor, masks: AttentionMasks) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim).unbind(2)  # [B, T, heads, d]
        scale = 1.0 / math.sqrt(self.head_dim)
        alpha = self._pool_weights(torch.einsum("bthd,hd->bth", q, self.query_score) * scale, masks.real)
        global_q = torch.einsum("bth,bthd->bhd", alpha.to(q.dtype), q)
        key_w = global_q * self.key_score  # [B, heads, d]
        beta = self._pool_weights(torch.einsum("bthd,bhd->bth", k, key_w) * scale, masks.real)
        global_k = global_q * torch.einsum("bth,bthd->bhd", beta.to(k.dtype), k)
        u = (v * global_k[:, None]).reshape(b, t, h)
        r = self.transform(u) + q.reshape(b, t, h)
        if self.norm is not None:
            r = self.norm(r)
        return self.out(r)


ATTENTION_CLASSES: dict[str, type[nn.Module]] = {
    "S": SelfAttention,
    "L": LocalAttention,
    "A": AdditiveAttention,
}
