#!/bin/bash
# Phase (b): WSD to N for the 4 presets x 3 pretraining seeds; skips runs already in wsd.jsonl.
# usage: phase_b.sh N LR
cd /work/main
N=$1; LR=$2
for seed in 0 1 2; do for preset in bert-base addbert hbert-v1 hbert-v2; do
  if .venv/bin/python - "$preset" "$seed" "$N" "$LR" <<'PY'
import json, sys
from pathlib import Path
preset, seed, n, lr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
p = Path("analysis/cpu-recipe/wsd.jsonl")
rows = [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []
sys.exit(0 if any(r["preset"] == preset and r["seed"] == seed and r["steps"] == n and r["lr"] == lr
                  and r["schedule"] == "wsd" and r["warmup"] == n // 10 for r in rows) else 1)
PY
  then echo "skip $preset $seed"; continue; fi
  .venv/bin/python analysis/cpu-recipe/measure.py --preset $preset --steps $N --schedule wsd \
    --lr $LR --warmup $((N / 10)) --decay-frac 0.2 --eval-every 250 --seed $seed --tag b-wsd --out analysis/cpu-recipe/wsd.jsonl
done; done
