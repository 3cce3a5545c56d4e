"""Measure a recipe's cost table on this machine (see :mod:`hsearch.cost.table`).

Probes are whole models of one layer variant (``kind/norm``), one layer and
``num_layers`` layers deep, built exactly as a trial builds its model. Each is timed taking
the real pretraining step (:class:`~hsearch.trial.pretrain.Stepper`: forward, backward,
optimiser step, at the recipe's batch, length and threads) and the latency objective's
forward (its path, shape and threads), round-robin across probes with the latency
protocol (:mod:`hsearch.cost.protocol`). The table is cached under the data cache, keyed
by the hardware, the library versions and the recipe's cost-relevant sections, so a
machine measures it once per recipe shape.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from hsearch.cost.protocol import iqr, num_threads, steady
from hsearch.cost.table import CostTable, Probe, fit, variant
from hsearch.layout import KINDS, NORMS, Layout
from hsearch.trial.recipe import Recipe

log = logging.getLogger("hsearch.cost")

ALL_VARIANTS = tuple(variant(k, n) for k in KINDS for n in NORMS)
STEP_WARMUP, STEP_RUNS = 2, 15
MAX_PARAMS_AT_ONCE = 150_000_000  # probes timed together (round-robin) hold at most this many parameters


def cost_shapes(recipe: Recipe, options: Mapping[str, Any], num_layers: int, tokenizer: Any) -> dict[str, Any]:
    """What a layout's cost depends on: the model's shape (the tokenizer's vocabulary included) and
    the step's and the latency protocol's; not the budget, the LR or the data."""
    from hsearch.data.tokenizer import fingerprint

    p = recipe.pretrain
    return {
        "model": dataclasses.asdict(recipe.model),
        "options": dict(options),
        "vocab": {"size": len(tokenizer), "fingerprint": fingerprint(tokenizer)},
        "pretrain": {k: getattr(p, k) for k in ("batch_size", "grad_accumulation", "seq_len", "optimizer",
                                                "mask_rate", "sparse_mlm_head", "precision", "compile",
                                                "engine", "grad_clip")},
        "latency": dataclasses.asdict(recipe.latency),
        "cpus": recipe.resources.cpus,
        "num_layers": num_layers,
    }


def _fingerprint(hw: Mapping[str, Any]) -> dict[str, Any]:
    # What makes timings differ between machines; not the thread count of the moment.
    return {k: hw.get(k) for k in ("device", "device_name", "cpu", "cpu_count", "torch", "transformers", "cuda",
                                   "gemm")}


def same_machine(table: CostTable, device: torch.device) -> bool:
    """Whether ``table`` was measured on this kind of machine (its timings apply here)."""
    from hsearch.trial.hardware import hardware_info

    return _fingerprint(table.hardware) == _fingerprint(hardware_info(device))


def probe_layouts(variants: Sequence[str], num_layers: int, mixed_norms: bool = True) -> list[str]:
    """What a table is fitted to: each variant one layer deep and ``num_layers`` deep, and, where
    layers may mix norms, a stack alternating each pre/sub variant with a post one, whose many exit
    LayerNorms pin the exit term down (homogeneous stacks have at most one)."""
    depths = sorted({1, num_layers})
    out = [" ".join([v] * n) for v in variants for n in depths]
    posts = [v for v in variants if v.endswith("/post")]
    if mixed_norms and posts and num_layers >= 2:
        for v in variants:
            if not v.endswith("/post"):
                post = next((p for p in posts if p.split("/")[0] == v.split("/")[0]), posts[0])
                out.append(" ".join([v, post] * (num_layers // 2) + [v] * (num_layers % 2)))
    return out


def cost_table(recipe: Recipe, *, num_layers: int, options: Mapping[str, Any] | None = None,
               data_dir: str | Path | None = None, device: str | None = None, variants: Sequence[str] = ALL_VARIANTS,
               mixed_norms: bool = True, cache: bool = True, known: CostTable | None = None,
               progress: Callable[[str], None] | None = None) -> CostTable:
    """The cost table for ``recipe`` at ``num_layers`` layers on this machine: ``known`` when it has
    this machine's and shape's key (a study's table), else the cached one, else measured now.
    ``mixed_norms``: whether layouts may mix norm placements (then the exit term is probed)."""
    from hsearch.data import cache_root, prepare_corpus
    from hsearch.data.cache import cache_key
    from hsearch.trial.hardware import hardware_info, pick_device
    from hsearch.trial.runner import precision_for

    say = progress or (lambda msg: None)
    options = dict(options or {})
    dev = pick_device(device)
    precision, autocast_dtype = precision_for(recipe, dev)
    hardware = hardware_info(dev, precision=precision, threads=recipe.resources.cpus)
    corpus = prepare_corpus(recipe.corpus, recipe.tokenizer, recipe.pretrain.seq_len, data_dir=data_dir, log=say)
    shapes = cost_shapes(recipe, options, num_layers, corpus.tokenizer)
    key = cache_key("cost-table-v1", _fingerprint(hardware), shapes, sorted(variants), mixed_norms)
    path = cache_root() / "cost" / f"{key}.json"
    if known is not None and known.key == key:
        if cache:
            _store(path, known)
        return known
    if cache and path.is_file():
        return CostTable.from_json(path.read_text())
    t0 = time.perf_counter()
    say(f"measuring the cost table: {len(variants)} layer variants on {hardware['device_name']}")
    probes = measure_probes(recipe, probe_layouts(variants, num_layers, mixed_norms), corpus.tokenizer, corpus.train,
                            options=options, device=dev, autocast_dtype=autocast_dtype)
    table = fit(probes, variants, key=key, hardware=hardware, shapes=shapes, seconds=time.perf_counter() - t0)
    if cache:
        _store(path, table)
    log.info("cost table %s measured in %.1f s", key, table.seconds)
    return table


def _store(path: Path, table: CostTable) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(table.to_json())
    tmp.replace(path)  # atomic: concurrent writers leave one whole table


def measure_probes(recipe: Recipe, layouts: Sequence[str], tokenizer: Any, blocks, *, options: Mapping[str, Any],
                   device: torch.device, autocast_dtype: torch.dtype | None, step_runs: int = STEP_RUNS,
                   max_params_at_once: int = MAX_PARAMS_AT_ONCE,
                   clock: Callable[[], float] = time.perf_counter) -> list[Probe]:
    """Time each layout's training step and inference forward (round-robin within groups that fit
    ``max_params_at_once``); also used to check predictions against whole models."""
    from hsearch.model import HybridBertForMaskedLM
    from hsearch.model.inference import prepare_for_inference, random_inputs, time_calls
    from hsearch.trial.pretrain import Stepper
    from hsearch.trial.runner import model_config

    p, lat = recipe.pretrain, recipe.latency
    micro = [torch.from_numpy(blocks[i * p.batch_size:(i + 1) * p.batch_size].astype("int64"))
             for i in range(p.grad_accumulation)]
    lat_device = device.type if lat.device == "auto" else lat.device
    out: list[Probe] = []
    group: list[tuple[str, Any, int]] = []

    def flush() -> None:
        if not group:
            return
        with num_threads(recipe.resources.cpus if device.type == "cpu" else None):
            steppers = []
            for layout, model, _ in group:
                model.train()
                stepper = Stepper(model, tokenizer, p, device=device, autocast_dtype=autocast_dtype, mask_seed=1)
                stepper.warm_up(micro[0])
                steppers.append(stepper)
            steps = time_calls([lambda s=s: s.step(micro, p.lr) for s in steppers], [{}] * len(steppers),
                               warmup=STEP_WARMUP, runs=step_runs, device=device, clock=clock, grad=True)
            for s in steppers:
                s.close()
        with num_threads(lat.threads):
            fwds, inputs = [], []
            for _, model, _ in group:
                encoder = model.bert.float().eval()
                prepared = prepare_for_inference(encoder, lat_device, path=lat.path, seq_len=lat.seq_len,
                                                 batch_size=lat.batch_size)
                fwds.append(prepared.forward)
                inputs.append(random_inputs(encoder, lat.seq_len, lat.batch_size, lat_device))
            lats = time_calls(fwds, inputs, warmup=lat.warmup, runs=lat.runs, device=lat_device, clock=clock)
        for (layout, _, params), st, lt in zip(group, steps, lats):
            out.append(Probe(str(Layout.parse(layout)), steady(st) / 1000.0, steady(lt), params,
                             step_spread=iqr(st) / 1000.0, latency_spread=iqr(lt)))
        group.clear()

    held = 0
    for layout in layouts:
        config = model_config(recipe, Layout.parse(layout), options, tokenizer)
        torch.manual_seed(0)
        model = HybridBertForMaskedLM(config).to(device)
        params = sum(t.numel() for t in model.parameters())  # as a trial counts them (MLM model)
        # DeepSpeed engines share one process group, so they are timed one at a time.
        if group and (held + params > max_params_at_once or p.engine == "deepspeed"):
            flush()
            held = 0
        group.append((layout, model, params))
        held += params
    flush()
    return out
