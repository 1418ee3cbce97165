#!/usr/bin/env bash
# Catalog scale on this machine: a synthetic catalog of ROWS listings (the shared items' titles and texts over and over,
# each with its own id) priced by TF-IDF with `pricer price`, in one process and on a local Ray with two replicas.
# Prints rows/s and the machine's peak memory in use above what it used before each run (MemTotal - MemAvailable,
# sampled every 0.5 s, so Ray's many processes and its object store are all counted).
# Usage: [MODES="local ray"] experiments/bench_catalog.sh DATA_DIR WORK [ROWS]     (e.g. ../shared/data/amazon /tmp/catalog 1000000)
set -euo pipefail
DATA=$1; WORK=$2; ROWS=${3:-1000000}
PRICER=${PRICER:-.venv/bin/pricer}; PY=${PY:-.venv/bin/python}
mkdir -p "$WORK"

[ -f "$WORK/catalog-$ROWS.csv" ] || $PY - "$DATA" "$WORK/catalog-$ROWS.csv" "$ROWS" <<'EOF'
import csv, sys
from pathlib import Path
from pricer.data.items import read_items
data, out, rows = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
items = [it for name in ("train.jsonl", "train-extra.jsonl", "train-more.jsonl", "dev.jsonl") for it in read_items(str(data / name))]
with open(out + ".tmp", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["sku", "title", "description"])
    for n in range(rows):
        it = items[n % len(items)]
        w.writerow([f"{n:09d}", it.title or "", it.text])
Path(out + ".tmp").replace(out)
EOF
[ -d "$WORK/tfidf" ] || $PRICER fit tfidf --train "$DATA/train.jsonl" --train "$DATA/dev.jsonl[:1250]" --out "$WORK/tfidf"

used() { awk '/MemTotal/ {t=$2} /MemAvailable/ {a=$2} END {print int((t-a)/1024)}' /proc/meminfo; }
measure() {  # NAME ARGS...: run `pricer price`, print wall time, rows/s and peak memory above the idle baseline
  local name=$1; shift
  rm -rf "$WORK/out-$name"
  local base; base=$(used); echo "$base" > "$WORK/peak"
  ( while :; do m=$(used); [ "$m" -gt "$(cat "$WORK/peak")" ] && echo "$m" > "$WORK/peak"; sleep 0.5; done ) &
  local sampler=$! start; start=$(date +%s.%N)
  $PRICER price "$WORK/catalog-$ROWS.csv" --model "$WORK/tfidf" --out "$WORK/out-$name" "$@" > "$WORK/$name.log" 2>&1 || true
  local wall; wall=$(echo "$(date +%s.%N) - $start" | bc)
  kill $sampler
  printf "%-8s %9d rows  %7.1f s  %8.0f rows/s  peak %5d MB above %d MB  (%s)\n" "$name" "$ROWS" "$wall" \
    "$(echo "$ROWS / $wall" | bc -l)" "$(( $(cat "$WORK/peak") - base ))" "$base" "$(tail -1 "$WORK/$name.log")"
}
for mode in ${MODES:-local ray}; do
  case $mode in
    local) measure local ;;
    ray) measure ray --ray --workers 2 --cpus-per-worker 0.5 ;;
  esac
done
