"""Optimiser engines for pretraining: plain torch, or DeepSpeed ZeRO (stage 2 by default).

Both expose the same four calls so the budgeted loop does not care which one runs:
``set_lr``, ``backward`` (per micro-batch), ``micro_done``, ``finish_step``.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from hsearch.errors import HsearchError
from hsearch.net import free_port
from hsearch.trial.optim import param_groups, set_lr
from hsearch.trial.recipe import PretrainSpec


def make_optimizer(model: torch.nn.Module, spec: PretrainSpec, device: torch.device) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if spec.optimizer == "adamw" else torch.optim.Adam
    kwargs: dict[str, Any] = {"lr": spec.lr, "betas": tuple(spec.betas), "eps": spec.eps}
    if device.type == "cuda":
        kwargs["fused"] = True
    # For "adam" torch applies weight_decay as an L2 term (the original Adam form).
    return cls(param_groups(model, spec.weight_decay), **kwargs)


class TorchEngine:
    def __init__(self, model: torch.nn.Module, spec: PretrainSpec, device: torch.device):
        self.model = model
        self.module = model
        self.optimizer = make_optimizer(model, spec, device)
        self.grad_clip = spec.grad_clip
        self.accum = spec.grad_accumulation
        self.name = "torch"

    def set_lr(self, lr: float) -> None:
        set_lr(self.optimizer, lr)

    def backward(self, loss: torch.Tensor) -> None:
        (loss / self.accum).backward()

    def micro_done(self) -> None:
        pass

    def finish_step(self) -> None:
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def close(self) -> None:
        pass


class DeepSpeedEngine:
    """One-process DeepSpeed: it initialises (and later destroys) a local process group if none exists."""

    def __init__(self, model: torch.nn.Module, spec: PretrainSpec, device: torch.device, bf16: bool):
        try:
            import deepspeed
        except ImportError:
            raise HsearchError("pretrain.engine: 'deepspeed' needs the deepspeed package "
                               "(pip install 'hsearch[deepspeed]')") from None
        import torch.distributed as dist

        self._own_group = not dist.is_initialized()
        if self._own_group:
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ["MASTER_PORT"] = str(free_port())
            os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_SIZE="1")
            if device.type == "cpu":
                # World size 1 needs no shared-memory collectives; skip their ~100 s JIT build.
                deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
            deepspeed.init_distributed(dist_backend="nccl" if device.type == "cuda" else "gloo",
                                       auto_mpi_discovery=False, verbose=False)
        config = {
            "train_micro_batch_size_per_gpu": spec.batch_size,
            "gradient_accumulation_steps": spec.grad_accumulation,
            "zero_optimization": {"stage": spec.deepspeed.zero_stage},
            "zero_allow_untested_optimizer": True,  # a torch optimiser: DS's CPU Adam needs a C++ build
            "bf16": {"enabled": bf16},
            "steps_per_print": 10**9,
            "wall_clock_breakdown": False,
        }
        if spec.grad_clip:
            config["gradient_clipping"] = spec.grad_clip
        config.update(spec.deepspeed.config)
        optimizer = make_optimizer(model, spec, device)
        self.model, self.optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
        self.module = self.model.module
        self.name = f"deepspeed-zero{spec.deepspeed.zero_stage}"

    def set_lr(self, lr: float) -> None:
        set_lr(self.optimizer, lr)

    def backward(self, loss: torch.Tensor) -> None:
        self.model.backward(loss)  # DeepSpeed scales by the accumulation steps itself

    def micro_done(self) -> None:
        self.model.step()  # steps the optimiser only at the accumulation boundary

    def finish_step(self) -> None:
        pass

    def close(self) -> None:
        if self._own_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def make_engine(model: torch.nn.Module, spec: PretrainSpec, device: torch.device, bf16: bool):
    if spec.engine == "deepspeed":
        return DeepSpeedEngine(model, spec, device, bf16)
    return TorchEngine(model, spec, device)
