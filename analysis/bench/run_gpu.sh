#!/usr/bin/env bash
# The GPU benchmark run behind analysis/bench/gpu-h100.md (one device call; writes JSON under $OUT).
#   OUT=/tmp/out PHASE=1 bash analysis/bench/run_gpu.sh
# Each step has its own time limit so one slow compile cannot lose the others' results.
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/hsearch-bench-out}; mkdir -p "$OUT"
PHASE=${PHASE:-1}
LOG=$OUT/log.txt
L4=bert-base,addbert,hbert-v1,hbert-v2

step() { local t=$1; shift; echo "### $* (limit ${t}s) $(date +%T)" | tee -a "$LOG"; timeout "$t" "$@" 2>&1 | grep -v -i warn | tee -a "$LOG"; }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())"
  python3 -c "import hsearch.trial.latency, hsearch.bench.train; print('imports ok')"
} 2>&1 | tee -a "$LOG"
if [ "$PHASE" = 1 ]; then
  step 120 python3 -m hsearch.cli bench train --device cuda --layouts $L4 --seq-len 128 --batch 128 --steps 20 --precision bf16 --out $OUT/train128.json
  step 120 python3 -m hsearch.cli bench train --device cuda --layouts bert-base,addbert --seq-len 512 --batch 32 --steps 20 --precision bf16 --out $OUT/train512.json
  step 90 python3 -m hsearch.cli bench latency --device cuda --layouts $L4 --seq-lens 128,512,1024,2048 --path bf16-eager --runs 30 --out $OUT/lat_cuda.json
  step 90 python3 analysis/bench/profile_step.py --layout bert-base --seq-len 128 --batch 128 > $OUT/profile.txt
  step 60 python3 analysis/bench/profile_step.py --reference --seq-len 128 --batch 128 >> $OUT/profile.txt
  step 330 python3 -m hsearch.cli bench train --device cuda --layouts bert-base,addbert,hbert-v1 --seq-len 128 --batch 128 --steps 20 --precision bf16 --compile --out $OUT/train128c.json
fi
if [ "$PHASE" = 2 ]; then
  step 200 python3 -m hsearch.cli bench train --device cuda --layouts bert-base,addbert --seq-len 512 --batch 32 --steps 20 --precision bf16 --compile --out $OUT/train512c.json
  step 60 python3 analysis/bench/profile_step.py --layout addbert --seq-len 512 --batch 32 > $OUT/profile_addbert.txt
  step 60 python3 analysis/bench/profile_step.py --layout bert-base --seq-len 512 --batch 32 >> $OUT/profile_addbert.txt
  step 150 python3 -m hsearch.cli bench latency --device cuda --layouts bert-base,addbert --seq-lens 128,2048 --path bf16-compile --runs 30 --out $OUT/lat_cuda_compile.json
  step 100 python3 analysis/bench/check_paths.py cuda
fi
if [ "$PHASE" = 3 ]; then
  step 240 python3 -m hsearch.cli bench train --device cuda --layouts bert-base,hbert-v2 --seq-len 128 --batch 256 --steps 20 --precision bf16 --compile --out $OUT/train128c_b256.json
  step 200 python3 -m hsearch.cli bench latency --device cuda --layouts bert-base,addbert --seq-lens 512,1024 --path bf16-compile --runs 30 --out $OUT/lat_cuda_compile2.json
fi
echo "### done $(date +%T)" | tee -a "$LOG"
