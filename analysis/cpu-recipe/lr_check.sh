#!/bin/bash
# LR check at the candidate N=1000 with WSD (warm-up 100, decay over the last 20%), seed 0:
# the slowest presets (sub-LN hbert-v1) and the post-LN bert-base (most likely to diverge) at 4e-3 and 2e-3.
cd /work/main
for lr in 4e-3 2e-3; do for preset in hbert-v1 bert-base; do
  .venv/bin/python analysis/cpu-recipe/measure.py --preset $preset --steps 1000 --schedule wsd \
    --lr $lr --warmup 100 --decay-frac 0.2 --eval-every 250 --seed 0 --tag lr-check --out analysis/cpu-recipe/wsd.jsonl
done; done
