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


class Stepper:
    """One optimiser step of masked-LM pretraining, as the budgeted loop takes it.

    The cost model times this same object on its probes, so a predicted step is the step a
    trial takes. ``mask_seed`` seeds the masking generator (the loop's: ``spec.seed + 1``).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, spec: PretrainSpec, *, device: torch.device,
                 autocast_dtype: torch.dtype | None, mask_seed: int) -> None:
        self.spec, self.device, self.tokenizer = spec, device, tokenizer
        self.engine = make_engine(model, spec, device,
                                  bf16=autocast_dtype is torch.bfloat16 and spec.engine == "deepspeed")
        self.autocast_dtype = autocast_dtype
        self.use_autocast = autocast_dtype is not None and spec.engine != "deepspeed"
        self.specials = special_ids(tokenizer)
        self.vocab = model.config.vocab_size
        self.mask_gen = torch.Generator().manual_seed(mask_seed)
        self.runner = torch.compile(self.engine.model) if spec.compile else self.engine.model

    def masked(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mask_tokens(ids, rate=self.spec.mask_rate, mask_id=self.tokenizer.mask_token_id,
                           vocab_size=self.vocab, special_ids=self.specials, generator=self.mask_gen)

    def micro_loss(self, ids: torch.Tensor) -> torch.Tensor:
        inputs, labels = self.masked(ids)
        inputs, labels = inputs.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.use_autocast):
            if self.spec.sparse_mlm_head:
                return self.runner(input_ids=inputs, labels=labels).loss
            logits = self.runner(input_ids=inputs).logits
            return torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1),
                                                     ignore_index=IGNORE)

    def warm_up(self, ids: torch.Tensor) -> None:
        """A throw-away forward/backward that pays torch.compile's compilation (or, eager, the
        allocator and first-call costs) outside any clock. Under DeepSpeed only the batch's masks
        are drawn (its ZeRO hooks expect every backward to be followed by a step), so both
        engines train on the same data afterwards."""
        if self.spec.engine != "torch":
            self.masked(ids)
            return
        warm = self.micro_loss(ids)
        warm.backward()
        float(warm.detach())
        for param in self.engine.model.parameters():
            param.grad = None

    def step(self, micro_batches: list[torch.Tensor], lr: float) -> float:
        """One optimiser step over ``grad_accumulation`` micro-batches; returns the mean loss."""
        self.engine.set_lr(lr)
        loss_sum = 0.0
        for ids in micro_batches:
            loss = self.micro_loss(ids)
            self.engine.backward(loss)
            self.engine.micro_done()
            loss_sum += float(loss.detach())  # syncs: keeps a clock honest on a GPU
        self.engine.finish_step()
        return loss_sum / len(micro_batches)

    def close(self) -> torch.nn.Module:
        self.engine.close()
        return self.engine.module


def pretrain(model: torch.nn.Module, blocks: np.ndarray, tokenizer: Any, spec: PretrainSpec, *,
             device: torch.device, autocast_dtype: torch.dtype | None, stats: PretrainStats,
             progress: Callable[[dict], None], should_stop: Callable[[], bool]) -> torch.nn.Module:
    """Train ``model`` in place until ``spec.budget`` is spent; fills ``stats`` as it goes (so a
    failure still leaves the numbers reached). Returns the trained module."""
    budget = spec.budget
    torch.manual_seed(spec.seed)
    stepper = Stepper(model, tokenizer, spec, device=device, autocast_dtype=autocast_dtype, mask_seed=spec.seed + 1)
    stats.engine = stepper.engine.name
    batches = _batches(blocks, spec.batch_size, spec.seed)
    tokens_per_step = spec.batch_size * spec.grad_accumulation * blocks.shape[1]
    try:
        model.train()
        t0 = time.perf_counter()
        progress({"phase": "compile" if spec.compile else "warm-up"})
        stepper.warm_up(next(batches))
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
            step_start = time.perf_counter()
            loss_value = stepper.step([next(batches) for _ in range(spec.grad_accumulation)], lr)
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
        module = stepper.close()
    return module
