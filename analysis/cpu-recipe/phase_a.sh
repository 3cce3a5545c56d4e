#!/bin/bash
# Phase (a): constant LR (after a 100-step warm-up) to 2000 steps, held-out MLM every 250 steps.
cd /work/main
for preset in hbert-v1 hbert-v2 addbert bert-base; do
  .venv/bin/python analysis/cpu-recipe/measure.py --preset $preset --steps 2000 --schedule constant \
    --lr 2e-3 --warmup 100 --eval-every 250 --seed 0 --tag a-constant --out analysis/cpu-recipe/phase_a.jsonl
done
