"""``run_trial``: one layout, one recipe -> pretrain under budget, fine-tune, time, report.

Bad input (recipe, layout, missing or unreadable data, a budget too small for one step, an
output folder that cannot be written) raises :class:`HsearchError` before any training:
:func:`~hsearch.trial.checks.preflight` runs first. Once training starts, every failure is returned
as a ``TrialResult`` with its status and error text, keeping the numbers reached so far.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from hsearch.budget import Budget
from hsearch.cost.table import CostTable
from hsearch.errors import HsearchError
from hsearch.layout import Layout, resolve
from hsearch.trial import result as R
from hsearch.trial.hardware import hardware_info, pick_device
from hsearch.trial.checks import preflight, rung_plan
from hsearch.trial.recipe import Recipe, load_recipe
from hsearch.trial.result import TrialResult

log = logging.getLogger("hsearch.trial")

def precision_for(recipe: Recipe, device: torch.device) -> tuple[str, torch.dtype | None]:
    """The recipe's training precision on ``device``, and the autocast dtype it means."""
    wanted = recipe.pretrain.precision
    if wanted == "auto":
        wanted = "bf16" if device.type == "cuda" else "fp32"
    return wanted, (torch.bfloat16 if wanted == "bf16" else None)


def model_config(recipe: Recipe, layout: Layout, preset_opts: Mapping[str, Any], tokenizer):
    """The model a trial trains: the recipe's dimensions, the preset's options, then the recipe's own."""
    from hsearch.model import HybridBertConfig

    m = recipe.model
    model_opts = dict(preset_opts)
    for key in ("hidden_act", "ffn_bias", "attention_bias", "hidden_dropout_prob",
                "attention_probs_dropout_prob", "position_embedding"):
        if getattr(m, key) is not None:
            model_opts[key] = getattr(m, key)
    return HybridBertConfig(layout=str(layout), vocab_size=len(tokenizer), hidden_size=m.hidden_size,
                            num_attention_heads=m.num_attention_heads, intermediate_size=m.intermediate_size,
                            max_position_embeddings=m.max_position_embeddings, local_window=m.local_window,
                            pad_token_id=tokenizer.pad_token_id,
                            classifier_pooling=recipe.finetune.pooling,  # saved with the checkpoint
                            **model_opts)


def charged_steps(budget_seconds: float, step_seconds: float) -> int:
    """Optimiser steps a time budget buys on the cost model (at least one)."""
    return max(1, int(budget_seconds // step_seconds))


def _table_for(recipe: Recipe, layout: Layout, preset_opts: Mapping[str, Any], tokenizer, given: CostTable | None,
               data_dir, device: torch.device, progress: Callable[[dict], None]) -> CostTable:
    """The search's table when it was measured for this recipe shape on this kind of machine, else
    this machine's own (cached after the first trial)."""
    from hsearch.trial.costing import cost_shapes, cost_table, same_machine

    if given is not None and given.covers(layout) and given.shapes == cost_shapes(
            recipe, preset_opts, layout.num_layers, tokenizer) and same_machine(given, device):
        return given
    return cost_table(recipe, num_layers=layout.num_layers, options=preset_opts, data_dir=data_dir,
                      device=device.type, progress=lambda msg: progress({"phase": "data", "message": msg}))


def _rung_plan(recipe: Recipe, spec, rung: int | None):
    """The WSD step plan of ``recipe`` with ``spec``'s step budget, and the rung to finish."""
    plan = rung_plan(recipe, spec.budget)
    if rung is None:
        return plan, plan.top
    if not (isinstance(rung, int) and 0 <= rung <= plan.top):
        raise HsearchError(f"rung {rung!r}: recipe {recipe.name} has rungs 0..{plan.top}")
    return plan, rung


def _state_meta(lay: Layout, recipe: Recipe, plan, tokenizer) -> dict[str, Any]:
    """What a trunk state must match to be resumed: the same layout, recipe, steps and token ids."""
    from hsearch.data.tokenizer import fingerprint

    return {"layout": str(lay), "recipe_hash": recipe.hash, "total_steps": plan.total_steps,
            "tokenizer": fingerprint(tokenizer)}


def _save_state(state: dict[str, Any], path: str | Path, meta: dict[str, Any]) -> None:
    """Write a trunk state atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({**state, **meta}, tmp)
    os.replace(tmp, path)


def _load_state(path: str | Path, meta: dict[str, Any], rung: int) -> dict[str, Any]:
    """The trunk state rung ``rung`` resumes from, checked against what is being trained."""
    path = Path(path)
    if not path.is_file():
        raise HsearchError(f"resume state {path}: file not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    want = {**meta, "rung": rung - 1}
    for key, value in want.items():
        if state.get(key) != value:
            raise HsearchError(f"resume state {path}: {key} is {state.get(key)!r}, this run needs {value!r}")
    return state


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and ("out of memory" in text or isinstance(exc, MemoryError))


def run_trial(layout: str | Layout, recipe: str | Path | Recipe, *, data_dir: str | Path | None = None,
              out_dir: str | Path | None = None, budget: str | None = None, seed: int | None = None,
              device: str | None = None, progress: Callable[[dict], None] | None = None,
              should_stop: Callable[[], bool] | None = None, keep_checkpoint: bool | None = None,
              cost_table: CostTable | None = None, latency_repeats: int = 1, rung: int | None = None,
              resume_state: str | Path | None = None, save_state: str | Path | None = None) -> TrialResult:
    """Pretrain ``layout`` under ``recipe``'s budget, fine-tune, measure latency -> TrialResult.

    With ``pretrain.charge: cost-model`` a time budget becomes the number of steps the cost table's
    step time for this layout fits (``cost_table``, when it was measured for this recipe on this
    kind of machine; otherwise this machine's, measured once and cached). A table's predictions
    (step time, latency) are recorded whenever there is a table.

    ``latency_repeats``: how many times the latency protocol times the trained encoder; each
    repeat's steady latency goes to ``latency_ms_repeats``, the first one's figures to ``latency_ms``
    and its median and spread (one repeat, the default, is the plain trial).

    Multi-fidelity (``pretrain.schedule: wsd``, :mod:`hsearch.fidelity`): ``rung`` is the rung to
    finish (default: the top, every lower rung's decay branched off on the way and recorded in
    ``result.rungs``). ``resume_state``: the file ``save_state`` wrote when this layout finished
    rung ``rung - 1``; training goes on from it. Fine-tuning runs at the top rung (or at every
    rung with ``fidelity.finetune: every``); latency is measured at the top rung, and below it
    only when there is no cost table to predict it.
    """
    from hsearch.data import load_task, prepare_corpus
    from hsearch.model import HybridBertForMaskedLM
    from hsearch.trial.finetune import finetune_task
    from hsearch.trial.latency import measure_latency
    from hsearch.trial.mlm import evaluate_mlm
    from hsearch.trial.pretrain import Cancelled, Diverged, PretrainStats, pretrain, pretrain_wsd

    t_total = time.perf_counter()
    progress = progress or (lambda update: None)
    should_stop = should_stop or (lambda: False)
    overrides: dict[str, Any] = {}
    if budget is not None:
        overrides["pretrain.budget"] = str(budget)
    if seed is not None:
        overrides["pretrain.seed"] = int(seed)
    recipe = load_recipe(recipe, overrides or None)
    if not isinstance(latency_repeats, int) or latency_repeats < 1:
        raise HsearchError(f"latency_repeats={latency_repeats!r}: must be a positive integer")
    preflight(recipe, data_dir=data_dir, out_dir=out_dir)
    if isinstance(layout, Layout):
        lay, preset_opts = layout, {}
    else:
        lay, preset_opts, _ = resolve(str(layout))
    dev = pick_device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HsearchError(f"device {device!r} requested but no CUDA device is available")
    precision, autocast_dtype = precision_for(recipe, dev)
    p = recipe.pretrain

    # ---- inputs first: every data problem surfaces before training
    ft = recipe.finetune
    progress({"phase": "data", "message": "loading tasks"})
    tasks = {name: load_task(name, spec, ["train", ft.score_split, ft.report_split], data_dir)
             for name, spec in ft.tasks.items()}
    progress({"phase": "data", "message": "preparing corpus"})
    corpus = prepare_corpus(recipe.corpus, recipe.tokenizer, p.seq_len, data_dir=data_dir,
                            log=lambda msg: progress({"phase": "data", "message": msg}))
    tokenizer = corpus.tokenizer
    config = model_config(recipe, lay, preset_opts, tokenizer)

    result = TrialResult(status=R.COMPLETE, layout=str(lay), recipe_name=recipe.name, recipe_hash=recipe.hash,
                         seed=p.seed, budget=p.budget.text, data_prep_seconds=corpus.prep_seconds,
                         cache_hit=corpus.cache_hit, charge=p.charge)
    train_spec = p
    charging = p.charge == "cost-model" and p.budget.kind == "time"
    if charging or cost_table is not None:  # a table is measured only when the charge needs one
        table = _table_for(recipe, lay, preset_opts, tokenizer, cost_table, data_dir, dev, progress)
        predicted = table.predict(lay)
        result.cost_table = table.key
        result.step_seconds_predicted = predicted.step_seconds
        result.latency_ms_predicted = predicted.latency_ms
        if charging:
            steps = charged_steps(p.budget.amount, predicted.step_seconds)
            train_spec = dataclasses.replace(p, budget=Budget("steps", float(steps), f"{steps} steps"))
            result.pretrain_seconds_predicted = steps * predicted.step_seconds
    plan = resume = None
    if p.schedule == "wsd":
        plan, rung = _rung_plan(recipe, train_spec, rung)
        meta = _state_meta(lay, recipe, plan, tokenizer)
        if resume_state is not None:
            resume = _load_state(resume_state, meta, rung)
        result.rung = rung
    elif rung is not None or resume_state is not None or save_state is not None:
        raise HsearchError(f"recipe {recipe.name}: rungs need pretrain.schedule: wsd (got {p.schedule!r})")
    top = plan is None or rung == plan.top
    threads_before = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(max(1, min(recipe.resources.cpus, os.cpu_count() or 1)))
    result.hardware = hardware_info(dev, precision=precision)
    result.hardware["engine"] = p.engine
    stats = PretrainStats()
    out = Path(out_dir) if out_dir is not None else None
    model = None
    try:
        torch.manual_seed(p.seed)
        model = HybridBertForMaskedLM(config)
        if recipe.model.init_from is not None:  # the paper's §4.4: start from a pretrained BERT
            from hsearch.trial.warmstart import warm_start

            result.init_report = warm_start(model, recipe, lay)
            progress({"phase": "data", "message": f"init_from {recipe.model.init_from}: "
                                                  + result.init_report["summary"].splitlines()[0]})
        model = model.to(dev)
        result.params = sum(t.numel() for t in model.parameters())
        progress({"phase": "pretrain", "step": 0, "budget_fraction": 0.0, "params": result.params,
                  "cache_hit": corpus.cache_hit, "data_prep_seconds": corpus.prep_seconds})
        def evaluate(module):
            return evaluate_mlm(module, corpus.heldout, tokenizer, rate=p.mask_rate, batch_size=p.eval_batch_size,
                                device=dev, autocast_dtype=autocast_dtype)

        if plan is None:
            model = pretrain(model, corpus.train, tokenizer, train_spec, device=dev, autocast_dtype=autocast_dtype,
                             stats=stats, progress=progress, should_stop=should_stop)
            progress({"phase": "eval"})
            result.mlm_accuracy, result.mlm_loss = evaluate(model)
        else:
            model, records = pretrain_wsd(
                model, corpus.train, tokenizer, train_spec, plan, rung=rung, resume=resume,
                save=None if save_state is None else lambda state: _save_state(state, save_state, meta),
                evaluate=evaluate, fractions=recipe.fidelity.fractions, device=dev, autocast_dtype=autocast_dtype,
                stats=stats, progress=progress, should_stop=should_stop)
            result.rungs = [dataclasses.asdict(r) for r in records]
            result.mlm_accuracy, result.mlm_loss = records[-1].mlm_accuracy, records[-1].mlm_loss
        if out is not None and (keep_checkpoint if keep_checkpoint is not None else recipe.output.keep_checkpoint):
            ckpt = out / "checkpoint"
            model.save_pretrained(str(ckpt))
            tokenizer.save_pretrained(str(ckpt))
            result.checkpoint_dir = str(ckpt)
        t_ft = time.perf_counter()
        for name, task in (tasks if top or recipe.fidelity.finetune == "every" else {}).items():
            result.tasks[name] = finetune_task(
                model.bert, config, tokenizer, task, ft.training(name), score_split=ft.score_split, report_split=ft.report_split,
                seeds=[p.seed + i for i in range(ft.seeds)], device=dev, autocast_dtype=autocast_dtype,
                progress=progress, should_stop=should_stop)
        result.finetune_seconds = time.perf_counter() - t_ft
        if result.tasks:
            result.mean_accuracy = sum(t.score_mean for t in result.tasks.values()) / len(result.tasks)
        lat = recipe.latency
        if lat.enabled and (top or result.latency_ms_predicted is None):
            progress({"phase": "latency"})
            t_lat = time.perf_counter()
            lat_dev = dev.type if lat.device == "auto" else lat.device
            encoder = model.bert.float().eval()
            repeats = [measure_latency(encoder, seq_len=lat.seq_len, batch_size=lat.batch_size, warmup=lat.warmup,
                                       runs=lat.runs, threads=lat.threads, device=lat_dev, path=lat.path)
                       for _ in range(latency_repeats)]
            stats_l = repeats[0]
            result.latency_ms_repeats = [r.steady_ms for r in repeats]
            result.latency_ms = stats_l.steady_ms
            result.latency_ms_median, result.latency_ms_spread = stats_l.median_ms, stats_l.spread_ms
            result.latency_path = stats_l.path
            result.hardware["latency_threads"] = stats_l.threads
            result.latency_seconds = time.perf_counter() - t_lat
    except Diverged as exc:
        result.status, result.error = R.DIVERGED, str(exc)
    except Cancelled as exc:
        result.status, result.error = R.CANCELLED, str(exc)
    except HsearchError:
        raise
    except BaseException as exc:  # noqa: BLE001 - a failed trial must still report what it reached
        if isinstance(exc, KeyboardInterrupt):
            result.status, result.error = R.CANCELLED, "interrupted"
        elif _is_oom(exc):
            result.status, result.error = R.OOM, f"out of memory: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        else:
            result.status = R.FAILED
            result.error = f"{type(exc).__name__}: {exc}"
            log.debug("trial failed:\n%s", traceback.format_exc())
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    finally:
        torch.set_num_threads(threads_before)
    result.optimizer_steps = stats.steps
    result.steps_run = stats.steps_run if plan is not None else stats.steps
    if plan is not None and result.step_seconds_predicted is not None:  # what this task was charged
        result.pretrain_seconds_predicted = stats.steps_run * result.step_seconds_predicted
    result.tokens_seen = stats.tokens
    result.pretrain_seconds = stats.seconds
    result.compile_seconds = stats.compile_seconds
    result.budget_fraction_used = stats.fraction
    result.tokens_per_second = stats.tokens / stats.seconds if stats.seconds > 0 else 0.0
    result.hardware["engine"] = stats.engine
    result.total_seconds = time.perf_counter() - t_total
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(str(out / "tokenizer"))
        (out / "result.json").write_text(json.dumps(result.to_dict(), indent=1, sort_keys=True))
    progress({"phase": "done", "status": result.status})
    return result
