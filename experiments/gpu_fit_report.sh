#!/usr/bin/env bash
# One saved predictor as a user makes it: `pricer fit RECIPE` on the whole pool (train + dev[:1250] + train-extra +
# train-more), scored on dev[1250:] with `pricer eval --size 0`. For recipes whose variants were chosen on the
# validation slice (experiments/qwen_validation.sh), e.g. recipes/qwen15-seeds.toml. Writes
# OUT/NAME/{fit.log,eval.log,eval/summary.json,eval/items.jsonl,guesses.csv}; the fitted model is deleted after its
# score unless KEEP=1. Run after experiments/gpu_unbundle.sh and `. /tmp/env.sh; cd /tmp/repo`.
# Usage: experiments/gpu_fit_report.sh DATA_DIR OUT NAME RECIPE [GPU]
set -euo pipefail
DATA=$1; OUT=$2; NAME=$3; RECIPE=$4; export CUDA_VISIBLE_DEVICES=${5:-0} PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
RUN=/tmp/pricer-runs/$NAME
mkdir -p "$OUT/$NAME"
pricer() { python -m pricer.cli "$@"; }
quiet() { tr '\r' '\n' | grep -v -E "it/s\]$|s/it\]$" || true; }
start=$(date +%s)
pricer fit "$RECIPE" --train "$DATA/train.jsonl" --train "$DATA/dev.jsonl[:1250]" --train "$DATA/train-extra.jsonl" \
  --train "$DATA/train-more.jsonl" --out "$RUN" 2>&1 | quiet > "$OUT/$NAME/fit.log"
echo "fitted in $(( $(date +%s) - start )) s" >> "$OUT/$NAME/fit.log"
pricer eval --model "$RUN" --data "$DATA/dev.jsonl[1250:]" --size 0 --batch-size 64 --quiet \
  --out "$OUT/$NAME/eval" --name "$NAME" 2>&1 | quiet > "$OUT/$NAME/eval.log"
python -c "import json, sys; print('i,guess'); [print(f\"{r['i']},{r['guess']}\") for r in map(json.loads, sys.stdin)]" \
  < "$OUT/$NAME/eval/items.jsonl" > "$OUT/$NAME/guesses.csv"
[ "${KEEP:-0}" = 1 ] || rm -rf "$RUN"
echo done > "$OUT/$NAME/done"
