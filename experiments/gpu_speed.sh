#!/usr/bin/env bash
# Speed figures on one GPU: LoRA training throughput at the 8B shape (batch 32 and 48, the loss on the price
# positions only), at SmolLM2-135M's shape (all linear layers, growing batches), and 4-bit against bf16 at the 8B shape.
# Usage: experiments/gpu_speed.sh DATA_DIR OUT_DIR SMOLLM2_CONFIG_DIR   (the last holds SmolLM2's config.json and tokenizer)
set -euo pipefail
DATA=$1; OUT=$2; SMOL=$3
mkdir -p "$OUT"
quiet() { grep -E "tokens_per_s|items_per_s|share|peak_memory|batch_size|rror|Killed" || true; }
bench() { echo "== $*"; python3 -m pricer.cli bench "$@" 2>&1 | quiet || true; }  # an out-of-memory size is a result too
TRAIN="$DATA/train.jsonl"; TEST="$DATA/dev.jsonl[1250:]"

if [ "${SMOL_ONLY:-0}" != 1 ]; then
for b in 32 48; do bench train --random-weights llama-3.1-8b --data "$TRAIN" --steps 10 --batch-size $b --out "$OUT/train-8b-b$b.json"; done
fi
# SmolLM2-135M: the plain loop's set-up (batch 32, LoRA dropout 0.1), then what a 135M model's step is made of: LoRA
# dropout's masks and many small element-wise kernels; drop the one, fuse the others (torch.compile, liger-kernel's
# Triton norms/rotary/SwiGLU), or train every weight instead of LoRA's extra small products (--lora-r 0, fp32 masters)
smol() { local b=$1; shift; bench train --random-weights "$SMOL/config.json" --tokenizer "$SMOL" --data "$TRAIN" --steps 40 \
  --warmup-steps 10 --batch-size $b --lora-targets all-linear "$@" --out "$OUT/train-smollm2-b$b$(echo "$@" | tr -d ' -').json"; }
smol 32 --lora-dropout 0.1
for b in 256 512; do
  for flags in "--lora-dropout 0" "--lora-dropout 0 --compile" "--lora-dropout 0 --liger" "--lora-r 0" "--lora-r 0 --liger" \
               "--lora-r 0 --compile"; do smol $b $flags; done
done
[ "${SMOL_ONLY:-0}" = 1 ] && exit 0
python3 scripts/make_llama.py /tmp/llama-8b llama-3.1-8b
bench infer --base /tmp/llama-8b --data "$TEST" --items 512 --batch-size 128 --decode topk --reference-items 8 --out "$OUT/infer-8b-bf16.json"
bench infer --base /tmp/llama-8b --quant 4bit --data "$TEST" --items 512 --batch-size 128 --decode topk --reference-items 8 --out "$OUT/infer-8b-4bit.json"
bench train --base /tmp/llama-8b --quant 4bit --data "$TRAIN" --steps 10 --batch-size 32 --out "$OUT/train-8b-4bit-b32.json"
