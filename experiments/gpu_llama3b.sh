#!/usr/bin/env bash
# Course v2's QLoRA path at Llama 3.2 3B's shape on one GPU, with random weights (no download): the recipe
# recipes/llama32-3b-v2-lite.toml trains a few steps in 4 bits, then the run is evaluated in 4 bits with topk.
# Usage: experiments/gpu_llama3b.sh DATA_DIR OUT_DIR [STEPS]
set -euo pipefail
DATA=$1; OUT=$2; STEPS=${3:-30}
pricer() { python -m pricer.cli "$@"; }
mkdir -p "$OUT"
start=$(date +%s)
python scripts/make_llama.py "$OUT/llama-3.2-3b" llama-3.2-3b
echo "random 3B saved: $(( $(date +%s) - start )) s"; start=$(date +%s)
pricer train --config recipes/llama32-3b-v2-lite.toml --base "$OUT/llama-3.2-3b" --train "$DATA/train.jsonl" \
  --out "$OUT/run" --max-steps "$STEPS" --save-steps 10 logging_steps=10 2>&1 | tr '\r' '\n' | grep -v -E "it/s\]$|s/it\]$" | tail -15
echo "4-bit training, $STEPS steps: $(( $(date +%s) - start )) s"; start=$(date +%s)
pricer checkpoints "$OUT/run"
pricer eval --model "$OUT/run" --data "$DATA/dev.jsonl[1250:]" --size 64 --decode topk --batch-size 64 --quiet \
  --out "$OUT/eval" --name llama-3.2-3b-random-4bit 2>&1 | grep -E "footprint|95% CI"
echo "4-bit evaluation, 64 items: $(( $(date +%s) - start )) s"
nvidia-smi --query-gpu=name,memory.used --format=csv
