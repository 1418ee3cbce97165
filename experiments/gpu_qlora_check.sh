#!/usr/bin/env bash
# QLoRA end to end on a GPU: a small Llama-shaped model with random weights, loaded in 4 bits (NF4, double
# quantisation, bf16 compute) and in 8 bits, LoRA-trained a few steps, then scored; then the regression head on the
# 4-bit base (LoRA adapter + the head trained in full). Usage: experiments/gpu_qlora_check.sh DATA_DIR
set -euo pipefail
DATA=$1
quiet() { grep -v -E "it/s|Warn|warn" || true; }
python3 scripts/make_llama.py /tmp/small-llama 1024 4
for quant in 4bit 8bit; do
  python3 -m pricer.cli train --base /tmp/small-llama --quant $quant --train "$DATA/train.jsonl[:256]" --out /tmp/q-$quant \
    --max-steps 6 --batch-size 8 --save-steps 3 logging_steps=2 2>&1 | quiet | grep -E "footprint|'loss'|trainable|rror" | tail -5
  python3 -m pricer.cli eval --model /tmp/q-$quant --data "$DATA/dev.jsonl[1250:]" --size 16 --decode median --out /tmp/qe-$quant --quiet 2>&1 | quiet | grep -E "footprint|error \\$|rror"
done
python3 -m pricer.cli eval --model /tmp/q-4bit@checkpoint-3 --data "$DATA/dev.jsonl[1250:]" --size 8 --decode topk --out /tmp/qe-ckpt --quiet 2>&1 | quiet | grep -E "error \\$|rror"
python3 -m pricer.cli train --base /tmp/small-llama --quant 4bit --head regression --train "$DATA/train.jsonl[:256]" \
  --out /tmp/q-reg --max-steps 6 --batch-size 8 --save-steps 3 logging_steps=2 2>&1 | quiet | grep -E "'loss'|trainable|rror" | tail -4
python3 -c "import json; print('saved predictor:', json.load(open('/tmp/q-reg/pricer.json')))"
python3 -m pricer.cli eval --model /tmp/q-reg --data "$DATA/dev.jsonl[1250:]" --size 16 --out /tmp/qe-reg --quiet 2>&1 | quiet | grep -E "error \$|rror"
