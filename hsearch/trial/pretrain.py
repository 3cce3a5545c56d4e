"""Budgeted MLM pretraining.

The budget (time, tokens or steps) is checked before every optimiser step and the loop
stops as soon as the fraction used reaches 1, so a time budget is overrun by at most the one
step in flight. The LR follows :func:`lr_factor` of that same fraction. Only the loop is
charged: data preparation, model construction, the compile warm-up and the held-out
evaluation are timed separately.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from hsearch.trial.engine import make_engine
from hsearch.trial.mlm import IGNORE, mask_tokens, special_ids
from hsearch.trial.optim import lr_factor
from hsearch.trial.recipe import PretrainSpec


class Diverged(RuntimeError):
    """Loss became NaN or infinite."""


class Cancelled(RuntimeError):
    """The caller's should_stop() returned True."""


@dataclass
class PretrainStats:
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0  # charged wall-clock time of the loop
    compile_seconds: float = 0.0
    fraction: float = 0.0
    last_loss: float = float("nan")
    last_lr: float = 0.0
    last_lr_fraction: float = 0.0  # budget fraction the last step's LR was computed from
    max_step_seconds: float = 0.0
    engine: str = "torch"


def _batches(blocks: np.ndarray, batch_size: int, seed: int):
    """Endless shuffled batches of whole blocks (a fresh permutation every epoch)."""
    rng = np.random.default_rng(seed)
    n = len(blocks)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            idx = np.sort(order[start:start + batch_size])
            yield torch.from_numpy(np.asarray(blocks[idx], dtype=np.int64))


def pretrain(model: torch.nn.Module, blocks: np.ndarray, tokenizer: Any, spec: PretrainSpec, *,
             device: torch.device, autocast_dtype: torch.dtype | None, stats: PretrainStats,
             progress: Callable[[dict], None], should_stop: Callable[[], bool]) -> torch.nn.Module:
    """Train ``model`` in place until ``spec.budget`` is spent; fills ``stats`` as it goes (so a
    failure still leaves the numbers reached). Returns the trained module."""
    budget = spec.budget
    torch.manual_seed(spec.seed)
    mask_gen = torch.Generator().manual_seed(spec.seed + 1)
    engine = make_engine(model, spec, device, bf16=autocast_dtype is torch.bfloat16 and spec.engine == "deepspeed")
    stats.engine = engine.name
    use_autocast = autocast_dtype is not None and spec.engine != "deepspeed"
    specials = special_ids(tokenizer)
    vocab = model.config.vocab_size
    batches = _batches(blocks, spec.batch_size, spec.seed)
    tokens_per_step = spec.batch_size * spec.grad_accumulation * blocks.shape[1]
    runner = engine.model
    if spec.compile:
        runner = torch.compile(engine.model)

    def masked(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mask_tokens(ids, rate=spec.mask_rate, mask_id=tokenizer.mask_token_id,
                           vocab_size=vocab, special_ids=specials, generator=mask_gen)

    def micro_loss(ids: torch.Tensor) -> torch.Tensor:
        inputs, labels = masked(ids)
        inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=use_autocast):
            if spec.sparse_mlm_head:
                return runner(input_ids=inputs, labels=labels).loss
            logits = runner(input_ids=inputs).logits
            return torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1),
                                                     ignore_index=IGNORE)

    try:
        model.train()
        # One throw-away forward/backward outside the budget clock: it pays torch.compile's
        # compilation (or, eager, the allocator/kernel first-call cost) the same way for every trial.
        # (Not under DeepSpeed: its ZeRO gradient hooks expect every backward to be followed by a step.
        # It still draws the warm-up batch and its masks, so both engines train on the same data.)
        if spec.engine != "torch":
            masked(next(batches))
        else:
            t0 = time.perf_counter()
            progress({"phase": "compile" if spec.compile else "warm-up"})
            warm = micro_loss(next(batches))
            warm.backward()
            float(warm.detach())
            for param in model.parameters():
                param.grad = None
            stats.compile_seconds = time.perf_counter() - t0
        start = time.perf_counter()
        last_report = 0.0
        while True:
            elapsed = time.perf_counter() - start
            stats.fraction = budget.fraction(elapsed, stats.tokens, stats.steps)
            if stats.fraction >= 1.0:
                break
            if should_stop():
                stats.seconds = elapsed
                raise Cancelled("stopped by the caller")
            lr = spec.lr * lr_factor(stats.fraction, warmup=spec.warmup, schedule=spec.schedule)
            engine.set_lr(lr)
            step_start = time.perf_counter()
            loss_sum = 0.0
            for _ in range(spec.grad_accumulation):
                loss = micro_loss(next(batches))
                engine.backward(loss)
                engine.micro_done()
                loss_sum += float(loss.detach())  # syncs: keeps the time check honest on a GPU
            engine.finish_step()
            loss_value = loss_sum / spec.grad_accumulation
            stats.steps += 1
            stats.tokens += tokens_per_step
            stats.last_loss, stats.last_lr, stats.last_lr_fraction = loss_value, lr, stats.fraction
            stats.seconds = time.perf_counter() - start
            stats.max_step_seconds = max(stats.max_step_seconds, time.perf_counter() - step_start)
            if not math.isfinite(loss_value):
                raise Diverged(f"MLM loss became {loss_value} at step {stats.steps} (lr {lr:.3g})")
            if stats.seconds - last_report >= 0.5 or stats.steps == 1:
                last_report = stats.seconds
                progress({"phase": "pretrain", "step": stats.steps, "loss": loss_value, "lr": lr,
                          "tokens": stats.tokens, "tokens_per_s": stats.tokens / max(stats.seconds, 1e-9),
                          "budget_fraction": budget.fraction(stats.seconds, stats.tokens, stats.steps),
                          "seconds": stats.seconds})
        stats.seconds = time.perf_counter() - start
        stats.fraction = budget.fraction(stats.seconds, stats.tokens, stats.steps)
        progress({"phase": "pretrain", "step": stats.steps, "loss": stats.last_loss, "lr": stats.last_lr,
                  "tokens": stats.tokens, "tokens_per_s": stats.tokens / max(stats.seconds, 1e-9),
                  "budget_fraction": stats.fraction, "seconds": stats.seconds, "done": True,
                  "lr_fraction": stats.last_lr_fraction, "max_step_seconds": stats.max_step_seconds})
    finally:
        engine.close()
    return engine.module
