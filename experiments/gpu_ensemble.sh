#!/usr/bin/env bash
# One GPU: the stacked ensemble with a language model trained on every fold, then its score on the 500
# validation items. Usage: experiments/gpu_ensemble.sh DATA_DIR OUT_DIR RECIPE [FOLDS]
# Fold runs are cached under $PRICER_CACHE/runs: if a call is cut short, the same command reuses the finished runs
# and resumes the interrupted one from its last checkpoint.
set -euo pipefail
DATA=$1; OUT=$2; RECIPE=$3; FOLDS=${4:-3}
NAME=ensemble-$(basename "$RECIPE" .toml)
mkdir -p "$OUT"
start=$(date +%s)
pricer fit ensemble --members tfidf --members embed-knn --members "$RECIPE" --folds "$FOLDS" \
  --train "$DATA/train.jsonl" --train "$DATA/dev.jsonl[:1250]" --out "$OUT/$NAME" 2>&1 \
  | tr '\r' '\n' | grep -v -E "it/s\]$|s/it\]$" > "$OUT/$NAME.log"
echo "$NAME fitted in $(( $(date +%s) - start )) s"; grep -E "out-of-fold|stacker" "$OUT/$NAME.log"
pricer eval --model "$OUT/$NAME" --data "$DATA/dev.jsonl[1250:]" --size 0 --batch-size 64 --out "$OUT/$NAME-eval" \
  --name "$NAME" --quiet 2>&1 | grep "95% CI"
