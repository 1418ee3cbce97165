#!/usr/bin/env bash
# The 8B speed figures of docs/performance.md (2026-11-27) at Llama 3.1 8B's shape with random weights: topk with and
# without liger's kernels (each twice, after a warm-up run: a fresh machine's first comes out slower), the digit
# search at batch 64 and 128, LoRA training with and without liger and batches grouped by length, and, on a machine
# with several GPUs, a process per GPU against one.
# Usage: experiments/gpu_speed_8b_liger.sh DATA_DIR OUT_DIR   (the Llama 3 tokenizer from llama-models; liger-kernel installed)
set -uo pipefail
DATA=$1; OUT=$2
mkdir -p "$OUT"
run() { local name=$1; shift; echo "== $name"; python3 -m pricer.cli bench "$@" --out "$OUT/$name.json" 2>&1 \
  | grep -E "items_per_s|tokens_per_s|share_of_peak|peak_memory|rror" | grep -v _ascend; }
TOPK=(infer --random-weights llama-3.1-8b --data "$DATA/dev.jsonl[1250:]" --items 2000 --batch-size 128 --decode topk --reference-items 8)
DIGITS=(infer --random-weights llama-3.1-8b --data "$DATA/dev.jsonl[1250:]" --items 512 --decode median --reference-items 4)
TRAIN=(train --random-weights llama-3.1-8b --data "$DATA/train.jsonl" --steps 12 --lora-dropout 0)
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
run warm-up "${TOPK[@]}"  # a fresh machine's first benchmark runs about 17% slow (docs/performance.md): not a figure
for round in 1 2; do run "topk-$round" "${TOPK[@]}"; run "topk-liger-$round" "${TOPK[@]}" --liger; done
run digits-b64 "${DIGITS[@]}" --batch-size 64
run digits-b128 "${DIGITS[@]}" --batch-size 128
run digits-b128-liger "${DIGITS[@]}" --batch-size 128 --liger
run train-b48 "${TRAIN[@]}" --batch-size 48
run train-b48-liger "${TRAIN[@]}" --batch-size 48 --liger
run train-b48-liger-grouped "${TRAIN[@]}" --batch-size 48 --liger --group-by-length
run train-b48-grouped "${TRAIN[@]}" --batch-size 48 --group-by-length
run train-b64-liger-grouped "${TRAIN[@]}" --batch-size 64 --liger --group-by-length
unset CUDA_VISIBLE_DEVICES
if [ "$(nvidia-smi -L | wc -l)" -gt 1 ]; then
  python3 experiments/gpu_replicas.py "$DATA/dev.jsonl[1250:]" "$OUT/replicas.json" 2000 128 llama-3.1-8b | tail -3
fi
