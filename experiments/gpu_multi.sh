#!/usr/bin/env bash
# Data-parallel training on several GPUs through `accelerate launch`, against one GPU in the same lease.
# Usage: experiments/gpu_multi.sh DATA_DIR OUT_DIR   (DATA_DIR holds train.jsonl)
set -euo pipefail
DATA=$1; OUT=$2; N=$(python3 -c "import torch; print(torch.cuda.device_count())")
mkdir -p "$OUT"
quiet() { grep -v -E "it/s|Warn|warn" || true; }

if [ "${INFER_ONLY:-0}" != 1 ]; then
# 1. `pricer train` end to end under accelerate launch, on a small Llama-shaped model with random weights
python3 scripts/make_llama.py /tmp/tiny-llama 256 2
accelerate launch --num_processes "$N" -m pricer.cli train --base /tmp/tiny-llama --train "$DATA/train.jsonl[:512]" \
  --out /tmp/ddp-run --max-steps 8 --batch-size 8 --save-steps 4 logging_steps=4 2>&1 | quiet | tail -5
ls /tmp/ddp-run && cat /tmp/ddp-run/train_result.json

# 2. 8B-shaped LoRA training throughput: one GPU, then all of them
python3 -m pricer.cli bench train --random-weights llama-3.1-8b --data "$DATA/train.jsonl" --steps 10 --batch-size 32 \
  --out "$OUT/train-8b-1gpu.json" 2>&1 | quiet | grep -E "tokens_per|share|processes"
accelerate launch --num_processes "$N" -m pricer.cli bench train --random-weights llama-3.1-8b --data "$DATA/train.jsonl" \
  --steps 10 --batch-size 32 --out "$OUT/train-8b-${N}gpu.json" 2>&1 | quiet | grep -E "tokens_per|share|processes"
fi

# 3. 8B-shaped batched inference (topk), one replica on one GPU, then one replica on each GPU, same process set-up
for g in 1 "$N"; do
  python3 -m pricer.cli bench infer --random-weights llama-3.1-8b --data "$DATA/dev.jsonl[1250:]" --items 2000 \
    --batch-size 128 --decode topk --reference-items 8 --gpus "$g" --out "$OUT/infer-8b-${g}gpu.json" 2>&1 | quiet | grep -E "items_per_s|gpus|share"
done
