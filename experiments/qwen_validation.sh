#!/usr/bin/env bash
# One validation-slice run of the Qwen2.5-Coder-1.5B regression head: `pricer train` with
# recipes/qwen15-regression-rag.toml plus FLAGS, fitted on train + train-extra + train-more (never dev), scored on
# dev[:1250]. With SPLIT=report: fitted on the whole pool (dev[:1250] too) and scored on dev[1250:], for a variant
# already chosen on the validation slice. Runs side by side on one machine each take a GPU of their own (one run holds about 76 GB: two do not
# fit on one H200). Writes OUT/NAME/{train.log,eval/summary.json,eval/items.jsonl}. No checkpoints (a lent machine
# does not outlive its run, and two 18 GB checkpoints fill its disk); the fitted model is deleted after its score
# unless KEEP=1, so runs in a row fit on a 64 GB disk.
# Usage: experiments/qwen_validation.sh DATA_DIR OUT NAME GPU [FLAGS...]
set -euo pipefail
DATA=$1; OUT=$2; NAME=$3; GPU=$4; shift 4
RUN=/tmp/pricer-runs/$NAME
mkdir -p "$OUT/$NAME"
export CUDA_VISIBLE_DEVICES=$GPU PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
pricer() { python -m pricer.cli "$@"; }
quiet() { tr '\r' '\n' | grep -v -E "it/s\]$|s/it\]$" || true; }
start=$(date +%s)
if [ "${SPLIT:-validation}" = report ]; then FIT=(--train "$DATA/dev.jsonl[:1250]"); SCORE="$DATA/dev.jsonl[1250:]"
else FIT=(); SCORE="$DATA/dev.jsonl[:1250]"; fi
pricer train --config recipes/qwen15-regression-rag.toml save_steps=0 "$@" --train "$DATA/train.jsonl" "${FIT[@]}" \
  --train "$DATA/train-extra.jsonl" --train "$DATA/train-more.jsonl" --out "$RUN" 2>&1 | quiet > "$OUT/$NAME/train.log"
echo "trained in $(( $(date +%s) - start )) s" >> "$OUT/$NAME/train.log"
pricer eval --model "$RUN" --data "$SCORE" --size 0 --batch-size 64 --quiet \
  --out "$OUT/$NAME/eval" --name "$NAME" 2>&1 | quiet > "$OUT/$NAME/eval.log"
python -c "import json, sys; print('i,guess'); [print(f\"{r['i']},{r['guess']}\") for r in map(json.loads, sys.stdin)]" \
  < "$OUT/$NAME/eval/items.jsonl" > "$OUT/$NAME/guesses.csv"  # what experiments/validation/ keeps
cp "$RUN/train_config.json" "$OUT/$NAME/" 2>/dev/null || true
[ "${KEEP:-0}" = 1 ] || rm -rf "$RUN"
echo done > "$OUT/$NAME/done"
