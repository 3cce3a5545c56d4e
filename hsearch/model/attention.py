"""Attention sub-layers: ``S`` full self-attention, ``L`` local (sliding-window) attention, ``A`` additive.

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

# Queries per block of ``L`` (at least; a block is never shorter than the half window). Small
# blocks waste fewer key slots (each block reads block + window keys), large ones run fewer,
# bigger SDPA calls. On the 2-core CPU at window 128 and 4096 tokens, 64 was as fast as 32 and
# faster than 128 or 256 at the bench's "small" width; at BERT-base width 32-128 were within noise.
LOCAL_BLOCK = 64


@dataclass(frozen=True)
class LocalBlocks:
    """How ``L`` splits a sequence of ``seq_len`` tokens for a window of ``window`` tokens.

    Query ``i`` may see key ``j`` iff ``|i - j| <= window // 2`` (``local_window`` is the full,
    two-sided width, both ends inclusive). The queries are cut into ``num_blocks`` blocks of
    ``block`` (the last one padded); block ``n`` reads the ``span = block + 2·half`` keys from
    ``n·block - half`` on, which hold every key any of its queries may see. Work and memory are
    ``O(T·(block + window))`` instead of ``O(T²)``.

    When one block of the whole sequence is no dearer (``T`` at most about the block plus the
    window), the plan is a single block of ``T`` queries and ``T`` keys: plain SDPA with a band
    mask, which is then also the cheapest way (no padding, one call).
    """

    seq_len: int
    half: int
    block: int
    num_blocks: int
    span: int
    left: int  # keys before a block's first query that its span starts with

    @classmethod
    def plan(cls, seq_len: int, window: int) -> "LocalBlocks":
        half = window // 2
        block = max(LOCAL_BLOCK, half)
        num_blocks = -(-seq_len // block)
        if num_blocks * block * (block + 2 * half) >= seq_len * seq_len:
            return cls(seq_len=seq_len, half=half, block=seq_len, num_blocks=1, span=seq_len, left=0)
        return cls(seq_len=seq_len, half=half, block=block, num_blocks=num_blocks,
                   span=block + 2 * half, left=half)

    @property
    def padded_len(self) -> int:
        return self.num_blocks * self.block

    def blocks(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T, ...]`` -> ``[B, num_blocks, span, ...]`` key windows (a view of a padded copy)."""
        pad = (self.left, self.padded_len - self.seq_len + self.left)
        if pad != (0, 0):
            x = F.pad(x, (0, 0) * (x.dim() - 2) + pad)
        return x.unfold(1, self.span, self.block).movedim(-1, 2)


@dataclass(frozen=True)
class AttentionMasks:
    """Masks built once per forward and shared by every layer (None = no masking needed).

    ``real``: [B, T] bool, True at real tokens (used by ``A``).
    ``full``: [B, 1, 1, T] bool key mask for SDPA (``S``).
    ``local``: [B·num_blocks, 1, block, span] bool, band ∧ key mask of each ``L`` block
    (see :class:`LocalBlocks`, kept in ``blocks``).
    """

    real: torch.Tensor | None
    full: torch.Tensor | None
    local: torch.Tensor | None = None
    blocks: LocalBlocks | None = None

    @classmethod
    def build(cls, attention_mask: torch.Tensor | None, seq_len: int, device: torch.device,
              local_window: int | None, batch_size: int | None = None) -> "AttentionMasks":
        real = None if attention_mask is None else attention_mask.to(device=device, dtype=torch.bool)
        if real is not None and not torch.compiler.is_compiling() and bool(real.all()):
            # No padding: drop the mask so SDPA can take its fused (flash) kernel, as transformers
            # does for BERT. Under torch.compile the check would be a data-dependent branch.
            real = None
        full = None if real is None else real[:, None, None, :]
        if local_window is None:
            return cls(real=real, full=full)
        g = LocalBlocks.plan(seq_len, local_window)
        q_pos = torch.arange(g.padded_len, device=device).view(g.num_blocks, g.block, 1)
        k_pos = (torch.arange(g.num_blocks, device=device) * g.block - g.left).view(-1, 1, 1) \
            + torch.arange(g.span, device=device)
        allowed = (q_pos - k_pos).abs() <= g.half  # [nb, block, span]
        if real is None:
            allowed = allowed & (k_pos >= 0) & (k_pos < seq_len)  # the padding the blocks add
            allowed = allowed.expand(batch_size or 1, -1, -1, -1)
        else:
            allowed = allowed & g.blocks(real)[:, :, None, :]  # False at padding of either kind
        # Each token always sees itself, so a padding row far from every real token (and a
        # block's padded query rows) is never all-False: SDPA would return NaN there, and NaN
        # poisons later layers and the backward pass even where the row is discarded.
        allowed = allowed | (q_pos == k_pos)
        local = allowed.reshape(-1, 1, g.block, g.span)  # [B·nb, 1, block, span], or [nb, ...]
        return cls(real=real, full=full, local=local, blocks=g)


def _inner_norm(config: HybridBertConfig, sub: bool) -> nn.LayerNorm | None:
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if sub else None


class SelfAttention(nn.Module):
    """``S``: multi-head softmax attention over every (unpadded) key via SDPA."""

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
            q, k, v, attn_mask=masks.full,
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        ctx = ctx.transpose(1, 2).reshape(b, t, h)
        if self.norm is not None:
            ctx = self.norm(ctx)
        return self.out(ctx)


class LocalAttention(SelfAttention):
    """``L``: self-attention restricted to keys within ±local_window/2 positions.

    Computed block by block (:class:`LocalBlocks`): each block of queries attends, with SDPA
    and a block-local mask, to the keys of its own block and the half window on either side,
    so the cost grows like ``T·window``, not ``T²``. Same weights and numerics as a T×T band
    mask over full attention (the test keeps that reference).
    """

    def forward(self, x: torch.Tensor, masks: AttentionMasks) -> torch.Tensor:
        g = masks.blocks
        if g is None or g.seq_len != x.shape[1]:
            raise ValueError("LocalAttention needs AttentionMasks built with local_window for this length")
        b, t, h = x.shape
        heads, d = self.num_heads, self.head_dim
        qkv = self.qkv(x).view(b, t, 3, heads, d)
        q = qkv[:, :, 0]
        if g.padded_len != t:
            q = F.pad(q, (0, 0, 0, 0, 0, g.padded_len - t))
        q = q.reshape(b * g.num_blocks, g.block, heads, d).transpose(1, 2)  # [B·nb, heads, block, d]
        kv = g.blocks(qkv[:, :, 1:])  # [B, nb, span, 2, heads, d]
        kv = kv.reshape(b * g.num_blocks, g.span, 2, heads, d).permute(2, 0, 3, 1, 4)
        mask = masks.local
        if mask.shape[0] != b * g.num_blocks:  # built without batch_size: the same for every row
            mask = mask.repeat(b, 1, 1, 1)
        ctx = F.scaled_dot_product_attention(
            q, kv[0], kv[1], attn_mask=mask,
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        ctx = ctx.transpose(1, 2).reshape(b, g.padded_len, h)[:, :t]
        if self.norm is not None:
            ctx = self.norm(ctx)
        return self.out(ctx)


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
