"""Budgeted MLM pretraining.

The budget (time, tokens or steps) is checked before every optimiser step and the loop
stops as soon as the fraction used reaches 1, so a time budget is overrun by at most the one
step in flight. The LR follows :func:`lr_factor` of that same fraction. Only the loop is
charged: data preparation, model construction, the compile warm-up and the held-out
evaluation are timed separately.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from hsearch.fidelity import RungPlan
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
    steps_run: int = 0  # optimiser steps this process ran (wsd: with decay branches, without resumed ones)


class Batches:
    """Shuffled batches of whole blocks, indexed by position: batch ``i`` is the same whatever ran
    before it (epoch ``e`` is a permutation seeded by ``(seed, e)``), so a run resumed at step k
    sees exactly the data a run that never stopped sees from step k on."""

    def __init__(self, blocks: np.ndarray, batch_size: int, seed: int) -> None:
        self.blocks, self.batch_size, self.seed = blocks, batch_size, seed
        n = len(blocks)
        self.per_epoch = n // batch_size if n >= batch_size else 1
        self._epoch, self._order = -1, np.arange(0)

    def at(self, index: int) -> torch.Tensor:
        epoch, pos = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.blocks))
        idx = np.sort(self._order[pos * self.batch_size:(pos + 1) * self.batch_size])
        return torch.from_numpy(np.asarray(self.blocks[idx], dtype=np.int64))

    def step(self, step: int, accumulation: int) -> list[torch.Tensor]:
        """The micro-batches of optimiser step ``step``."""
        return [self.at(step * accumulation + m) for m in range(accumulation)]


class Stepper:
    """One optimiser step of masked-LM pretraining, as the budgeted loop takes it.

    The cost model times this same object on its probes, so a predicted step is the step a
    trial takes. ``mask_seed`` seeds the masking generator (the loop's: ``spec.seed + 1``); the
    loop reseeds it for every step (:meth:`seed_step`), so step k's masks do not depend on how
    many steps this process took before it.
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
        self.mask_seed = mask_seed
        self.mask_gen = torch.Generator().manual_seed(mask_seed)
        self.runner = torch.compile(self.engine.model) if spec.compile else self.engine.model

    def seed_step(self, step: int) -> None:
        self.mask_gen.manual_seed(self.mask_seed * 2**32 + step)

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


def _start(model: torch.nn.Module, blocks: np.ndarray, tokenizer: Any, spec: PretrainSpec, device: torch.device,
           autocast_dtype: torch.dtype | None, stats: PretrainStats) -> tuple[Stepper, Batches, int]:
    """What both loops start from: the seeded stepper, the batches, the tokens one step sees."""
    torch.manual_seed(spec.seed)
    stepper = Stepper(model, tokenizer, spec, device=device, autocast_dtype=autocast_dtype, mask_seed=spec.seed + 1)
    stats.engine = stepper.engine.name
    return stepper, Batches(blocks, spec.batch_size, spec.seed), spec.batch_size * spec.grad_accumulation * blocks.shape[1]


def _warm_up(model: torch.nn.Module, stepper: Stepper, batches: Batches, spec: PretrainSpec, stats: PretrainStats,
             progress: Callable[[dict], None]) -> None:
    """Pay compilation and first-call costs outside the charged clock (timed apart)."""
    model.train()
    t0 = time.perf_counter()
    progress({"phase": "compile" if spec.compile else "warm-up"})
    stepper.warm_up(batches.at(0))
    stats.compile_seconds = time.perf_counter() - t0


def pretrain(model: torch.nn.Module, blocks: np.ndarray, tokenizer: Any, spec: PretrainSpec, *,
             device: torch.device, autocast_dtype: torch.dtype | None, stats: PretrainStats,
             progress: Callable[[dict], None], should_stop: Callable[[], bool]) -> torch.nn.Module:
    """Train ``model`` in place until ``spec.budget`` is spent; fills ``stats`` as it goes (so a
    failure still leaves the numbers reached). Returns the trained module."""
    budget = spec.budget
    stepper, batches, tokens_per_step = _start(model, blocks, tokenizer, spec, device, autocast_dtype, stats)
    try:
        _warm_up(model, stepper, batches, spec, stats, progress)
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
            stepper.seed_step(stats.steps)
            loss_value = stepper.step(batches.step(stats.steps, spec.grad_accumulation), lr)
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


# -- warmup-stable-decay over fidelity rungs ------------------------------------------------


@dataclass
class RungRecord:
    """One rung's result: the decayed model's held-out MLM after ``steps`` optimiser steps."""

    rung: int
    fraction: float
    steps: int  # steps the model has had when the rung's decay ends
    stable_steps: int  # the trunk step the decay branched from
    mlm_accuracy: float
    mlm_loss: float
    seconds: float  # wall clock of the steps this task ran for the rung (trunk part and decay)
    steps_run: int  # optimiser steps this task ran for the rung


def _snapshot(stepper: Stepper, step: int, rung: int) -> dict[str, Any]:
    """The trunk's full training state: weights, optimiser, RNG and data position (the step)."""
    state = {"step": step, "rung": rung,
             "model": {k: v.detach().clone() for k, v in stepper.engine.module.state_dict().items()},
             "optimizer": copy.deepcopy(stepper.engine.optimizer.state_dict()),
             "torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def _restore(stepper: Stepper, state: dict[str, Any]) -> None:
    stepper.engine.module.load_state_dict(state["model"])
    stepper.engine.optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def pretrain_wsd(model: torch.nn.Module, blocks: np.ndarray, tokenizer: Any, spec: PretrainSpec, plan: RungPlan, *,
                 rung: int, resume: dict[str, Any] | None, save: Callable[[dict[str, Any]], None] | None,
                 evaluate: Callable[[torch.nn.Module], tuple[float, float]], fractions: list[float],
                 device: torch.device, autocast_dtype: torch.dtype | None, stats: PretrainStats,
                 progress: Callable[[dict], None], should_stop: Callable[[], bool]
                 ) -> tuple[torch.nn.Module, list[RungRecord]]:
    """Train ``model`` up to the end of rung ``rung`` of ``plan``; returns the decayed module and a
    record per rung evaluated.

    From scratch (``resume`` None) every lower rung's decay is a branch: the trunk state is
    copied, the branch decays and is scored, and the trunk goes on from the copy. ``resume``: the
    state :func:`_snapshot` took at the branch point of rung ``resume["rung"]``; training goes on
    from there. ``save`` gets the trunk state at rung ``rung``'s branch point (below the top), so a
    promotion can resume it. Data order and masks depend only on the step (:class:`Batches`,
    :meth:`Stepper.seed_step`), hence the same steps in either case.
    """
    stepper, batches, tokens_per_step = _start(model, blocks, tokenizer, spec, device, autocast_dtype, stats)
    records: list[RungRecord] = []
    try:
        _warm_up(model, stepper, batches, spec, stats, progress)
        step, first = 0, 0
        if resume is not None:
            _restore(stepper, resume)
            step, first = int(resume["step"]), int(resume["rung"]) + 1
        clock = time.perf_counter()
        last_report = [0.0]

        def run(start: int, end: int, factor: Callable[[int], float]) -> None:
            for k in range(start, end):
                if should_stop():
                    stats.seconds = time.perf_counter() - clock
                    raise Cancelled("stopped by the caller")
                lr = spec.lr * factor(k)
                stepper.seed_step(k)
                t_step = time.perf_counter()
                loss = stepper.step(batches.step(k, spec.grad_accumulation), lr)
                stats.steps_run += 1
                stats.steps, stats.tokens = k + 1, (k + 1) * tokens_per_step  # the model's, as it stands
                stats.last_loss, stats.last_lr = loss, lr
                stats.seconds = time.perf_counter() - clock
                stats.max_step_seconds = max(stats.max_step_seconds, time.perf_counter() - t_step)
                if not math.isfinite(loss):
                    raise Diverged(f"MLM loss became {loss} at step {k + 1} (lr {lr:.3g})")
                if stats.seconds - last_report[0] >= 0.5 or k == start:
                    last_report[0] = stats.seconds
                    progress({"phase": "pretrain", "step": k + 1, "loss": loss, "lr": lr, "rung": rung,
                              "budget_fraction": (k + 1) / plan.total_steps, "seconds": stats.seconds})

        for r in range(first, rung + 1):
            t_rung, ran = time.perf_counter(), stats.steps_run
            run(step, plan.stable_ends[r], plan.trunk_factor)
            step = plan.stable_ends[r]
            trunk = None
            if r < rung:
                trunk = _snapshot(stepper, step, r)
            elif save is not None and r < plan.top:
                save(_snapshot(stepper, step, r))
            run(step, plan.ends[r], lambda k, r=r: plan.decay_factor(k, r))
            progress({"phase": "eval", "rung": r})
            acc, loss = evaluate(stepper.engine.module)
            model.train()
            records.append(RungRecord(r, fractions[r], plan.ends[r], step, acc, loss,
                                      time.perf_counter() - t_rung, stats.steps_run - ran))
            if trunk is not None:
                _restore(stepper, trunk)
        stats.steps = plan.ends[rung]
        stats.tokens = stats.steps * tokens_per_step
        stats.fraction = stats.steps / plan.total_steps
        stats.last_lr_fraction = stats.fraction
        stats.seconds = time.perf_counter() - clock
        progress({"phase": "pretrain", "step": stats.steps, "loss": stats.last_loss, "lr": stats.last_lr,
                  "budget_fraction": stats.fraction, "seconds": stats.seconds, "done": True, "rung": rung,
                  "max_step_seconds": stats.max_step_seconds})
    finally:
        module = stepper.close()
    return module, records
