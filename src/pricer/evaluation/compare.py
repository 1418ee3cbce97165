"""Two evaluations of the same items side by side: is one model's lower error real or noise?

Each item's error under A minus its error under B, averaged, with a paired bootstrap interval (the same items are
resampled for both, so what the items have in common cancels out). With about $12 of noise in one model's average error
on 500 items, a $3 gain can still be real when the two models err on the same items.
"""

import json
from pathlib import Path

import numpy as np

from pricer.errors import PricerError
from pricer.evaluation.tester import bootstrap_interval, read_summary


def read_rows(run_dir: str | Path) -> dict[int, dict]:
    path = Path(run_dir) / "items.jsonl"
    if not path.exists():
        raise PricerError(f"{run_dir}: no items.jsonl (run `pricer eval --out {run_dir}` first)")
    rows = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                rows[int(row["i"])] = row
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise PricerError(f"{path}, line {number}: not an item line `pricer eval` writes") from None
    return rows


def compare(run_a: str | Path, run_b: str | Path, resamples: int = 2000, seed: int = 0) -> dict:
    """Mean of (error A - error B) over the items both scored, its 95% paired bootstrap interval, and who wins more."""
    a, b = read_rows(run_a), read_rows(run_b)
    shared = sorted(set(a) & set(b))
    if not shared:
        raise PricerError(f"{run_a} and {run_b} share no scored item")
    for i in shared:
        if abs(a[i]["truth"] - b[i]["truth"]) > 1e-6 or a[i]["title"] != b[i]["title"]:
            raise PricerError(f"{run_a} and {run_b} scored different items (item {i} differs); compare runs on the same data")
    errors_a = np.array([a[i]["error"] for i in shared])
    errors_b = np.array([b[i]["error"] for i in shared])
    difference = errors_a - errors_b
    low, high = bootstrap_interval(difference, resamples, seed)
    names = [read_summary(r).get("name") or Path(r).name for r in (run_a, run_b)]
    return {
        "a": names[0], "b": names[1], "n": len(shared),
        "mae_a": float(errors_a.mean()), "mae_b": float(errors_b.mean()),
        "difference": float(difference.mean()), "ci95": (low, high),
        "b_closer_share": float(np.mean(errors_b < errors_a)),
        "verdict": "B is better" if low > 0 else "A is better" if high < 0 else "no difference the items can show",
    }
