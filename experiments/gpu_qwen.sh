#!/usr/bin/env bash
# One GPU: the Qwen2.5-Coder-1.5B regression head with retrieval (recipes/qwen15-regression-rag.toml),
# alone and stacked with tfidf and embed-knn (recipes/qwen15-stack.toml), all on train + dev[:1250] + train-extra; the
# CPU-member stack (recipes/cpu-stack.toml) last. Each is scored on dev[1250:]. Usage: experiments/gpu_qwen.sh DATA_DIR OUT_DIR
# One H100, 2026-11-27: the single fit 625 s, the stack's folds 660 s more.
# The single model is fitted first through the same cached run the ensemble refits at its end, so the stack reuses it;
# a cut-short call resumes (fold runs are kept under $PRICER_CACHE/runs until they finish).
set -euo pipefail
DATA=$1; OUT=$2
RECIPE=recipes/qwen15-regression-rag.toml
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}  # varying prompt lengths fragment the cache
TRAIN=(--train "$DATA/train.jsonl" --train "$DATA/dev.jsonl[:1250]" --train "$DATA/train-extra.jsonl")
TEST="$DATA/dev.jsonl[1250:]"
pricer() { python -m pricer.cli "$@"; }
quiet() { tr '\r' '\n' | grep -v -E "it/s\]$|s/it\]$" || true; }
timed() { local name=$1 start; shift; start=$(date +%s); "$@" 2>&1 | quiet > "$OUT/$name.log"; echo "$name: $(( $(date +%s) - start )) s"; }
mkdir -p "$OUT"

timed qwen pricer fit "$RECIPE" "${TRAIN[@]}" --out "$OUT/qwen"
pricer eval --model "$OUT/qwen" --data "$TEST" --size 0 --batch-size 64 --quiet --out "$OUT/qwen-eval" --name qwen15-head-rag 2>&1 | grep "95% CI"
timed stack pricer fit recipes/qwen15-stack.toml "${TRAIN[@]}" --out "$OUT/stack"
grep -E "out-of-fold|stacker" "$OUT/stack.log"
pricer eval --model "$OUT/stack" --data "$TEST" --size 0 --batch-size 64 --quiet --out "$OUT/stack-eval" --name qwen-stack 2>&1 | grep "95% CI"
timed cpu-stack pricer fit recipes/cpu-stack.toml "${TRAIN[@]}" --out "$OUT/cpu-stack"
pricer eval --model "$OUT/cpu-stack" --data "$TEST" --size 0 --quiet --out "$OUT/cpu-stack-eval" --name cpu-stack 2>&1 | grep "95% CI"
