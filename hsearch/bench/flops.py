"""Analytic FLOP counts per layout, for MFU.

Only matrix products are counted, each ``[m,k]x[k,n]`` as ``2·m·k·n`` FLOPs — the same
convention as :mod:`torch.utils.flop_counter`, which the tests compare against.
Element-wise work, softmax and LayerNorm are left out (a few % at BERT sizes).

Notation: ``B`` batch, ``T`` sequence length, ``N = B·T`` tokens, ``h`` hidden size,
``f`` intermediate size, ``V`` vocabulary, ``M`` tokens at which MLM logits are computed.

Forward FLOPs of one encoder layer (as implemented in :mod:`hsearch.model.attention`):

* ``S`` self-attention: fused QKV ``6Nh²`` + output ``2Nh²`` + scores ``QKᵀ`` and ``PV``
  ``2·2·B·T²·h``                                   → ``8Nh² + 4BT²h``
* ``L`` local attention runs SDPA block by block (:class:`hsearch.model.attention.LocalBlocks`):
  ``T_pad`` = T rounded up to the block, each query scores ``span = block + 2·(w//2)`` keys
  (``w`` = window), so it *executes* ``8Nh² + 4·B·T_pad·span·h``; only ``~4·B·T·min(T, w+1)·h``
  of the score FLOPs are useful. A short sequence is one dense block (``T_pad = span = T``,
  ``S``'s count), and so is ``window=None``. :func:`layer_flops` counts executed FLOPs,
  ``useful=True`` the banded count.
* ``A`` additive attention (Fastformer): fused QKV ``6Nh²`` + transform ``2Nh²`` + output
  ``2Nh²`` + four per-head reductions over positions (query score, query pooling, key
  score, key pooling) ``4·2Nh``                    → ``10Nh² + 8Nh``
* every layer's feed-forward: ``2·2Nhf`` = ``4Nhf``.

Heads: MLM head transform ``2Mh²`` + decoder ``2MhV`` (the sparse head computes logits only
at the ``M`` masked positions; ``M = N`` without labels). Embedding look-ups are free.

A training step (forward + backward) costs 3× the forward FLOPs: the backward pass does two
products (input and weight gradients) for every forward product.
"""

from __future__ import annotations

from hsearch.layout import Layout


def layer_flops(kind: str, *, batch: int, seq_len: int, hidden: int, intermediate: int,
                window: int | None = None, useful: bool = False) -> int:
    """Forward matmul FLOPs of one encoder layer of attention ``kind`` (see module doc)."""
    n = batch * seq_len
    ffn = 4 * n * hidden * intermediate
    if kind == "A":
        return 10 * n * hidden**2 + 8 * n * hidden + ffn
    if kind in ("S", "L"):
        queries, keys = seq_len, seq_len
        if kind == "L" and useful:
            keys = min(seq_len, (window or seq_len) + 1)
        elif kind == "L" and window is not None:
            from hsearch.model.attention import LocalBlocks  # torch; only where L is counted

            plan = LocalBlocks.plan(seq_len, window)
            queries, keys = plan.padded_len, plan.span
        return 8 * n * hidden**2 + 4 * batch * queries * keys * hidden + ffn
    raise ValueError(f"unknown attention kind {kind!r} (allowed: S, A, L)")


def encoder_flops(layout: Layout | str, *, batch: int, seq_len: int, hidden: int, intermediate: int,
                  window: int | None = None, useful: bool = False) -> int:
    """Forward FLOPs of all encoder layers of ``layout``."""
    layout = Layout.parse(layout) if isinstance(layout, str) else layout
    return sum(
        layer_flops(k, batch=batch, seq_len=seq_len, hidden=hidden, intermediate=intermediate,
                    window=window, useful=useful)
        for k in layout.kinds
    )


def mlm_head_flops(*, tokens: int, hidden: int, vocab: int) -> int:
    """Forward FLOPs of the MLM head at ``tokens`` positions (transform + decoder)."""
    return 2 * tokens * hidden * hidden + 2 * tokens * hidden * vocab


def mlm_forward_flops(layout: Layout | str, *, batch: int, seq_len: int, hidden: int, intermediate: int,
                      vocab: int, masked_tokens: int | None = None, window: int | None = None) -> int:
    """Forward FLOPs of an MLM model; ``masked_tokens`` = positions with logits (default all)."""
    m = batch * seq_len if masked_tokens is None else masked_tokens
    return encoder_flops(layout, batch=batch, seq_len=seq_len, hidden=hidden, intermediate=intermediate,
                         window=window) + mlm_head_flops(tokens=m, hidden=hidden, vocab=vocab)


def train_step_flops(forward_flops: int) -> int:
    """Forward + backward FLOPs of one training step (3× forward)."""
    return 3 * forward_flops


# Dense bf16 tensor-core peaks (FLOP/s, no sparsity) used for MFU; matched on the device name.
PEAK_BF16 = {
    "H100 SXM": 989e12,
    "H100 80GB HBM3": 989e12,
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H200": 989e12,
    "A100": 312e12,
    "L4": 121e12,
}


def peak_flops(device_name: str, precision: str) -> float | None:
    """The device's dense peak for ``precision`` (bf16; fp32 as TF32 is not used), if known."""
    if precision != "bf16":
        return None
    for key, value in PEAK_BF16.items():
        if key in device_name:
            return value
    return None
