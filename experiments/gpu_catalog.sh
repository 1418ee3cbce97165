#!/usr/bin/env bash
# Catalog scale on a GPU machine (2 GPUs): the Qwen2.5-Coder-1.5B regression head pricing ROWS listings with
# `pricer price`, on one GPU, with --gpus 2 (a process per GPU) and through Ray (--ray, a replica per GPU).
# The head is trained for a few steps only: its accuracy does not matter here, its speed is the full recipe's (same
# base, same prompt with 5 neighbours). Prints rows/s per run. After experiments/gpu_unbundle.sh:
#   . /tmp/env.sh; cd /tmp/repo; experiments/gpu_catalog.sh /tmp/x/data /tmp/out 200000
# RUNS picks the runs (default "one-gpu gpus-2 ray-2"; on one GPU "one-gpu ray-1"), CHUNK the rows per chunk and per
# Ray block (default 10000). The head is trained and the one-GPU run made on GPU 0; the two-GPU runs wait until no
# other process holds a GPU, so another job (an accuracy run on GPU 1) may share the machine's first minutes without
# sharing the timed runs.
set -euo pipefail
DATA=$1; OUT=$2; ROWS=${3:-200000}
W=/tmp/catalog; mkdir -p "$W" "$OUT"
pricer() { python -m pricer.cli "$@"; }
python - "$DATA" "$W/catalog.parquet" "$ROWS" <<'EOF'
import sys
import pandas as pd
from pathlib import Path
from pricer.data.items import read_items
data, out, rows = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
items = [it for name in ("train.jsonl", "train-extra.jsonl", "train-more.jsonl", "dev.jsonl") for it in read_items(str(data / name))]
pd.DataFrame({"sku": [f"{n:09d}" for n in range(rows)], "title": [items[n % len(items)].title or "" for n in range(rows)],
              "description": [items[n % len(items)].text for n in range(rows)]}).to_parquet(out, index=False)
EOF
gpus_free() {  # [GPU]: until no other process holds that GPU (or any), seen free twice 15 s apart (a job between steps)
  local seen=0
  while [ $seen -lt 2 ]; do
    if [ -z "$(nvidia-smi ${1:+-i "$1"} --query-compute-apps=pid --format=csv,noheader)" ]; then seen=$((seen + 1)); else seen=0; fi
    [ $seen -ge 2 ] || sleep 15
  done
}
gpus_free 0
[ -f "$W/head/pricer.json" ] || CUDA_VISIBLE_DEVICES=0 pricer train --config recipes/qwen15-regression-rag.toml max_steps=20 save_steps=0 \
  --train "$DATA/train.jsonl" --out "$W/head" > "$OUT/catalog-train.log" 2>&1
timed() {  # NAME ARGS...
  local name=$1; shift; rm -rf "$W/out-$name"; local start; start=$(date +%s.%N)
  pricer price "$W/catalog.parquet" --model "$W/head" --out "$W/out-$name" --chunk-rows "${CHUNK:-10000}" --batch-size 256 "$@" \
    > "$OUT/catalog-$name.log" 2>&1 || echo "$name failed: $(tail -1 "$OUT/catalog-$name.log")"
  local wall; wall=$(python -c "import time; print(time.time() - $start)")
  echo "$name: $ROWS rows in $wall s, $(python -c "print(round($ROWS / $wall, 1))") rows/s; $(tail -1 "$OUT/catalog-$name.log")" | tee -a "$OUT/catalog.txt"
}
declare -A ARGS=([one-gpu]="--gpus 1" [gpus-2]="--gpus 2" [ray-2]="--ray --workers 2" [ray-1]="--ray --workers 1")
for run in ${RUNS:-one-gpu gpus-2 ray-2}; do
  if [ "$run" = one-gpu ]; then gpus_free 0; else gpus_free; fi
  # shellcheck disable=SC2086  # the arguments are words
  timed "$run" ${ARGS[$run]}
done
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 >> "$OUT/catalog.txt"
