"""How many WSD pretraining steps does `cpu-small` need to lift every seed preset off the MLM plateau?

One run = one preset, one pretraining seed, a fixed step count and an LR schedule, trained with
the package's own pieces (recipe, corpus cache, model config, Stepper, evaluate_mlm) and this
script's own step loop, LR function and seeded batch order. Appends one JSON line per run to
``--out`` (held-out MLM accuracy/loss at every ``--eval-every`` steps and at the end, wall times).

    python analysis/cpu-recipe/measure.py --preset hbert-v1 --steps 2000 --schedule constant \
        --lr 2e-3 --warmup 100 --eval-every 250 --seed 0 --out analysis/cpu-recipe/constant.jsonl

Run one process at a time: it uses one thread (torch.set_num_threads(1)).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from hsearch.data import prepare_corpus
from hsearch.layout import resolve
from hsearch.model import HybridBertForMaskedLM
from hsearch.trial import load_recipe
from hsearch.trial.mlm import evaluate_mlm
from hsearch.trial.pretrain import Stepper
from hsearch.trial.runner import model_config

DATA_DIR = "/work/shared/data"


def wsd_lr(step: int, total: int, peak: float, warmup: int, decay_frac: float) -> float:
    """Warmup-stable-decay LR for optimiser step ``step`` (0-based) of ``total``: linear warm-up
    over ``warmup`` steps to ``peak``, constant, then linear decay to ~0 over the last
    ``decay_frac`` of the steps (the last step's LR is peak / decay_steps, not exactly 0)."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    decay_steps = int(round(decay_frac * total))
    decay_start = total - decay_steps
    if decay_steps > 0 and step >= decay_start:
        return peak * (total - step) / decay_steps
    return peak


def batches(blocks: np.ndarray, batch_size: int, seed: int):
    """Endless shuffled batches of whole blocks, a fresh permutation per epoch, seeded."""
    rng = np.random.default_rng(seed)
    n = len(blocks)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = np.sort(order[start:start + batch_size])
            yield torch.from_numpy(np.asarray(blocks[idx], dtype=np.int64))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--schedule", choices=["constant", "wsd"], default="wsd")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100, help="warm-up steps")
    ap.add_argument("--decay-frac", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0, help="pretraining seed: init, batch order (seed), masks (seed+1)")
    ap.add_argument("--eval-every", type=int, default=0, help="held-out eval every N steps (0: only at the end)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="recipe override, e.g. pretrain.batch_size=32 (YAML value)")
    ap.add_argument("--big-eval-blocks", type=int, default=1024,
                    help="also score the final model on this many held-out blocks (0: off); the recipe's "
                         "eval_blocks (128) give ~2.4k masked tokens, a +-0.005 standard error")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import yaml
    overrides = {"pretrain.seed": args.seed}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    recipe = load_recipe("cpu-small", overrides)
    p = recipe.pretrain
    torch.set_num_threads(1)
    dev = torch.device("cpu")

    t_prep = time.perf_counter()
    corpus = prepare_corpus(recipe.corpus, recipe.tokenizer, p.seq_len, data_dir=DATA_DIR)
    prep_s = time.perf_counter() - t_prep
    tok = corpus.tokenizer
    big = None
    if args.big_eval_blocks:
        big_recipe = load_recipe("cpu-small", {**overrides, "corpus.eval_blocks": args.big_eval_blocks})
        big = prepare_corpus(big_recipe.corpus, big_recipe.tokenizer, p.seq_len, data_dir=DATA_DIR)
        assert np.array_equal(np.asarray(big.train), np.asarray(corpus.train)), "train blocks differ"
        assert np.array_equal(np.asarray(big.heldout[:len(corpus.heldout)]), np.asarray(corpus.heldout))
    layout, opts, name = resolve(args.preset)
    config = model_config(recipe, layout, opts, tok)

    torch.manual_seed(p.seed)
    model = HybridBertForMaskedLM(config).to(dev)
    params = sum(t.numel() for t in model.parameters())
    stepper = Stepper(model, tok, p, device=dev, autocast_dtype=None, mask_seed=p.seed + 1)
    feed = batches(corpus.train, p.batch_size, p.seed)
    model.train()

    def lr_at(step: int) -> float:
        if args.schedule == "constant":
            return wsd_lr(step, args.steps, args.lr, args.warmup, 0.0)
        return wsd_lr(step, args.steps, args.lr, args.warmup, args.decay_frac)

    def evaluate() -> tuple[float, float, float]:
        t = time.perf_counter()
        acc, loss = evaluate_mlm(model, corpus.heldout, tok, rate=p.mask_rate, batch_size=p.eval_batch_size,
                                 device=dev, autocast_dtype=None)
        return acc, loss, time.perf_counter() - t

    curve = []
    train_s = 0.0
    eval_s = 0.0
    losses = []
    diverged = False
    for step in range(args.steps):
        lr = lr_at(step)
        t = time.perf_counter()
        loss = stepper.step([next(feed)], lr)
        train_s += time.perf_counter() - t
        losses.append(loss)
        if not math.isfinite(loss):
            diverged = True
            break
        done = step + 1
        if args.eval_every and done % args.eval_every == 0 and done != args.steps:
            acc, eloss, es = evaluate()
            eval_s += es
            curve.append({"step": done, "mlm_accuracy": acc, "mlm_loss": eloss, "lr": lr,
                          "train_loss_last50": float(np.mean(losses[-50:])), "train_seconds": train_s})
            print(f"{args.preset} seed {args.seed} step {done} lr {lr:.2e} acc {acc:.4f} loss {eloss:.3f} "
                  f"train {train_s:.0f}s", flush=True)
    acc, eloss, es = evaluate() if not diverged else (float("nan"), float("nan"), 0.0)
    eval_s += es
    steps_done = len(losses)
    curve.append({"step": steps_done, "mlm_accuracy": acc, "mlm_loss": eloss, "lr": lr_at(steps_done - 1),
                  "train_loss_last50": float(np.mean(losses[-50:])), "train_seconds": train_s})
    big_acc = big_loss = float("nan")
    if big is not None and not diverged:
        big_acc, big_loss = evaluate_mlm(model, big.heldout, tok, rate=p.mask_rate, batch_size=p.eval_batch_size,
                                         device=dev, autocast_dtype=None)
    stepper.close()
    row = {
        "tag": args.tag, "preset": name or args.preset, "layout": str(layout), "seed": args.seed,
        "schedule": args.schedule, "lr": args.lr, "warmup": args.warmup,
        "decay_frac": args.decay_frac if args.schedule == "wsd" else 0.0,
        "steps_planned": args.steps, "steps": steps_done, "diverged": diverged,
        "batch_size": p.batch_size, "seq_len": p.seq_len, "mask_rate": p.mask_rate,
        "vocab_size": len(tok), "overrides": {k: v for k, v in overrides.items()}, "params": params,
        "mlm_accuracy": acc, "mlm_loss": eloss, "curve": curve,
        "mlm_accuracy_big": big_acc, "mlm_loss_big": big_loss,
        "big_heldout_blocks": int(len(big.heldout)) if big is not None else 0,
        "train_seconds": train_s, "step_seconds": train_s / max(steps_done, 1),
        "eval_seconds": eval_s, "prep_seconds": prep_s, "heldout_blocks": int(len(corpus.heldout)),
        "train_blocks": int(len(corpus.train)), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    print(f"DONE {args.preset} seed {args.seed} {args.schedule} lr {args.lr} steps {steps_done} "
          f"acc {acc:.4f} loss {eloss:.3f} big {big_acc:.4f} train {train_s:.0f}s ({row['step_seconds']:.3f}s/step)", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
