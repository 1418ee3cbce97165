#!/usr/bin/env bash
# The LLM results of docs/results.md: zero-shot, fine-tune, and every decoder, on one GPU.
# Usage: experiments/gpu_llm_results.sh DATA_DIR OUT_DIR [BASE]   (DATA_DIR holds train.jsonl and dev.jsonl)
# Environment: RECIPE (a TOML file), RUN (run directory), SIZE (items scored, 0: all), ZEROSHOT=0 to skip the untuned
# rows, DECODERS (a list).
set -euo pipefail
DATA=$1; OUT=$2; BASE=${3:-smollm2-135m}
RUN=${RUN:-/tmp/pricer-runs/$BASE}
TEST="$DATA/dev.jsonl[1250:]"
mkdir -p "$OUT"
log() { echo "[$(date +%H:%M:%S)] $*"; }

if [ "${ZEROSHOT:-1}" = 1 ]; then
log "zero-shot $BASE"
pricer eval --model "$BASE" --data "$TEST" --size "${SIZE:-0}" --decode median --batch-size 64 --out "$OUT/zeroshot-median" --name "$BASE zero-shot median" --quiet
pricer eval --model "$BASE" --data "$TEST" --size "${SIZE:-0}" --decode greedy --batch-size 64 --out "$OUT/zeroshot-greedy" --name "$BASE zero-shot greedy" --quiet
fi

log "train $BASE"
start=$(date +%s)
pricer train --base "$BASE" --config "${RECIPE:-recipes/smollm2-gpu.toml}" \
  --train "$DATA/train.jsonl" --train "$DATA/dev.jsonl[:1250]" --out "$RUN" 2>&1 | tr '\r' '\n' | grep -v "it/s\]$" | tee "$OUT/train.log" | grep -E "loss|resuming|trainable|footprint" | tail -40
log "trained in $(( $(date +%s) - start )) s"
cp "$RUN/train_result.json" "$RUN/train_config.json" "$OUT/"

for decode in ${DECODERS:-greedy topk mean median logmean}; do
  log "eval $decode"
  pricer eval --model "$RUN" --data "$TEST" --size "${SIZE:-0}" --decode "$decode" --batch-size 64 --out "$OUT/tuned-$decode" --name "$BASE LoRA $decode" --quiet
done
pricer leaderboard $(ls -d "$OUT"/zeroshot-* "$OUT"/tuned-* 2>/dev/null) --no-reference
log done
