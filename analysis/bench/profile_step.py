"""Profile MLM training steps of one layout (and the HF reference) on the GPU: where the time goes.

    PYTHONPATH=. python3 analysis/bench/profile_step.py --layout bert-base --seq-len 128 --batch 128

Prints torch.profiler's kernel table (top ops by device time) for a few steps after warm-up.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from hsearch.bench.models import DIMS, build_hybrid, build_reference, parse_layouts
from hsearch.bench.train import mlm_batches, train_one


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layout", default="bert-base")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--reference", action="store_true", help="profile transformers.BertForMaskedLM instead")
    args = ap.parse_args()
    dev = torch.device("cuda")
    dims = DIMS["base"]
    entry = parse_layouts(args.layout)[0]
    model = (build_reference(12, dims, args.seq_len, mlm=True) if args.reference
             else build_hybrid(entry, dims, args.seq_len, mlm=True))
    batches = mlm_batches(4, batch=args.batch, seq_len=args.seq_len, vocab=dims["vocab_size"],
                          mask_prob=0.15, device=dev)
    train_one(model, batches, steps=3, warmup_steps=5, precision="bf16", compile=args.compile, device=dev)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        train_one(model, batches, steps=5, warmup_steps=0, precision="bf16", compile=False, device=dev)
    name = "BertForMaskedLM" if args.reference else args.layout
    print(f"=== {name} seq {args.seq_len} batch {args.batch} compile={args.compile}: 5 steps ===")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=60))


if __name__ == "__main__":
    main()
