"""Masked-language-model masking and the paper's pretraining metric (accuracy on masked tokens)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

IGNORE = -100


def mask_tokens(ids: torch.Tensor, *, rate: float, mask_id: int, vocab_size: int, special_ids: list[int],
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: ``rate`` of the non-special tokens are targets; of those 80% [MASK], 10%
    random, 10% unchanged. Returns (inputs, labels) with labels -100 off target."""
    ids = ids.long()
    labels = ids.clone()
    special = torch.zeros_like(ids, dtype=torch.bool)
    for s in special_ids:
        special |= ids == s
    probs = torch.full(ids.shape, rate)
    chosen = torch.bernoulli(probs, generator=generator).bool() & ~special
    labels[~chosen] = IGNORE
    inputs = ids.clone()
    u = torch.rand(ids.shape, generator=generator)
    inputs[chosen & (u < 0.8)] = mask_id
    rand = chosen & (u >= 0.8) & (u < 0.9)
    inputs[rand] = torch.randint(len(special_ids), vocab_size, ids.shape, generator=generator)[rand]
    return inputs, labels


def mlm_counts(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """(correct, total) over target positions.

    ``logits`` is either sparse ``[n_masked, vocab]`` (rows in row-major order of the targets)
    or dense ``[..., seq, vocab]`` aligned with ``labels``.
    """
    target = labels != IGNORE
    if logits.shape[:-1] == labels.shape:  # dense
        pred = logits.argmax(-1)[target]
    elif logits.dim() == 2 and logits.shape[0] == int(target.sum()):  # sparse
        pred = logits.argmax(-1)
    else:
        raise ValueError(f"logits {tuple(logits.shape)} match neither labels {tuple(labels.shape)} "
                         f"nor their {int(target.sum())} targets")
    gold = labels[target]
    return int((pred == gold).sum()), int(gold.numel())


def mlm_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    correct, total = mlm_counts(logits, labels)
    return correct / total if total else float("nan")


def special_ids(tokenizer: Any) -> list[int]:
    """IDs never masked; also the low end excluded from random replacements."""
    return sorted({tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id,
                   tokenizer.sep_token_id, tokenizer.mask_token_id})


@torch.no_grad()
def evaluate_mlm(model: torch.nn.Module, blocks: np.ndarray, tokenizer: Any, *, rate: float, batch_size: int,
                 device: torch.device, autocast_dtype: torch.dtype | None, seed: int = 1234) -> tuple[float, float]:
    """Held-out MLM (accuracy, mean loss) with a fixed masking seed, so every trial is scored
    on the same masked positions."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    correct = total = 0
    loss_sum = 0.0
    vocab = model.config.vocab_size
    specials = special_ids(tokenizer)
    for start in range(0, len(blocks), batch_size):
        ids = torch.from_numpy(np.asarray(blocks[start:start + batch_size], dtype=np.int64))
        inputs, labels = mask_tokens(ids, rate=rate, mask_id=tokenizer.mask_token_id, vocab_size=vocab,
                                     special_ids=specials, generator=gen)
        n = int((labels != IGNORE).sum())
        if n == 0:
            continue
        inputs, labels = inputs.to(device), labels.to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            out = model(input_ids=inputs, labels=labels)
        c, t = mlm_counts(out.logits.float(), labels)
        correct += c
        total += t
        loss_sum += float(out.loss.float()) * t
    model.train(was_training)
    if total == 0:
        return float("nan"), float("nan")
    return correct / total, loss_sum / total
