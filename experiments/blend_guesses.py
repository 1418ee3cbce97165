"""Score kept per-item guesses, alone or as their geometric mean, as `pricer eval` would have: writes OUT/items.jsonl
and OUT/summary.json, so `pricer compare` can pair a blend of runs whose models are gone (a lent GPU machine keeps
nothing) against any other evaluation of the same items.

Usage: python experiments/blend_guesses.py DATA_SPEC OUT GUESSES.csv [GUESSES.csv ...]
  DATA_SPEC: the items the guesses were made on, e.g. "../shared/data/amazon/dev.jsonl[1250:]"
  GUESSES.csv: `i,guess` rows, i the item's index within DATA_SPEC (what experiments/qwen_validation.sh writes)
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np

from pricer.data.items import read_items
from pricer.evaluation.tester import score_item, summarize
from pricer.storage import atomic_write_json, atomic_write_text


def read_guesses(path: str) -> dict[int, float]:
    with open(path, newline="") as f:
        return {int(row["i"]): float(row["guess"]) for row in csv.DictReader(f)}


def main(spec: str, out: str, files: list[str]) -> None:
    items = read_items(spec)
    runs = [read_guesses(f) for f in files]
    shared = sorted(set.intersection(*(set(r) for r in runs)))
    if len(shared) != len(items) or shared[-1] >= len(items):
        sys.exit(f"the guesses cover {len(shared)} items of {len(items)} in {spec}: not the same items")
    rows = []
    for i in shared:
        blend = float(np.expm1(np.mean([np.log1p(r[i]) for r in runs])))
        rows.append(score_item(i, items[i], blend))
    Path(out).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(out) / "items.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    summary = summarize(rows, name=Path(out).name)
    atomic_write_json(Path(out) / "summary.json", summary)
    low, high = summary["mae_ci95"]
    print(f"{Path(out).name}: ${summary['mae']:.2f} (95% CI ${low:.2f}-${high:.2f}), RMSLE {summary['rmsle']:.3f}, "
          f"hits {summary['hit_rate']:.1f}%, on {len(rows)} items")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
