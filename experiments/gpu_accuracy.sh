#!/usr/bin/env bash
# One GPU: train a recipe (optionally with the nearest products in every prompt) and score it on the 500
# validation items. Usage: experiments/gpu_accuracy.sh DATA_DIR OUT_DIR NAME RECIPE [INDEX_DIR] [DECODE]
set -euo pipefail
DATA=$1; OUT=$2; NAME=$3; RECIPE=$4; INDEX=${5:-}; DECODE=${6:-}
RUN=/tmp/pricer-runs/$NAME
mkdir -p "$OUT/$NAME"
start=$(date +%s)
pricer train --config "$RECIPE" ${INDEX:+"index=$INDEX" k=5} --train "$DATA/train.jsonl" --train "$DATA/dev.jsonl[:1250]" \
  --out "$RUN" 2>&1 | tr '\r' '\n' | grep -v -E "it/s\]$|s/it\]$" > "$OUT/$NAME/train.log"
echo "$NAME trained in $(( $(date +%s) - start )) s; $(grep -o "'train_loss': '[0-9.]*'" "$OUT/$NAME/train.log" | tail -1)"
cp "$RUN/train_result.json" "$RUN/train_config.json" "$OUT/$NAME/"
pricer eval --model "$RUN" ${DECODE:+--decode $DECODE} --data "$DATA/dev.jsonl[1250:]" --size 0 --batch-size 64 \
  --out "$OUT/$NAME/eval" --name "$NAME" --quiet 2>&1 | grep "95% CI"
