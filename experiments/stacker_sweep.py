"""The CPU stacker sweep of docs/results.md (2026-11-27). The CPU members' 5-fold out-of-fold predictions on
a validation split of the pool are computed once and kept in OUT_DIR; then stackers are fitted on them and compared on
the split's held items, each against the linear stacker with a paired bootstrap interval.
  V1: fitted on train + train-extra, scored on dev[:1250].
  V2: fitted on train + train-extra + dev[:625], scored on dev[625:1250] (dev[:625] stands for the benchmark-like
      part of the final pool, so weights toward it can be tried).
  V1M: V1 with train-more in the pool (train + train-extra + train-more), scored on dev[:1250].
Usage: python experiments/stacker_sweep.py [DATA_DIR] [OUT_DIR] [SPLITS]   (SPLITS: comma-separated, default v1,v2;
about 25 minutes a split on 2 cores, MiniLM cached)
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression

from pricer.data.items import read_items
from pricer.evaluation.tester import bootstrap_interval
from pricer.predictors.ensemble import member_template, out_of_fold_predictions
from pricer.predictors.registry import predictor_class

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon")
OUT = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/stacker-sweep")
MEMBERS = ["tfidf", "embed-knn", "sparse-mlp"]
EXTRA = ["features", "bow"]
BENCHMARK_CATEGORIES = {"Automotive", "Electronics", "Office_Products", "Tools_and_Home_Improvement",
                        "Cell_Phones_and_Accessories", "Toys_and_Games", "Appliances", "Musical_Instruments"}
SPLITS = {"v1": (["train.jsonl", "train-extra.jsonl"], "dev.jsonl[:1250]"),
          "v2": (["train.jsonl", "train-extra.jsonl", "dev.jsonl[:625]"], "dev.jsonl[625:1250]"),
          "v1m": (["train.jsonl", "train-extra.jsonl", "train-more.jsonl"], "dev.jsonl[:1250]")}


def member_predictions(name, pool, held, split):
    """Out-of-fold predictions on the pool and predictions on the held items (fitted on the whole pool), cached."""
    path = OUT / f"{split}-{name}.npz"
    if not path.exists():
        _, kind, params = member_template(name)
        oof = out_of_fold_predictions(kind, params, pool, np.random.default_rng(42).permutation(len(pool)) % 5)
        held_guesses = predictor_class(kind)(**params).fit(pool).predict([it.text for it in held])
        OUT.mkdir(parents=True, exist_ok=True)
        np.savez(path, oof=oof, held=held_guesses)
    saved = np.load(path)
    return saved["oof"], saved["held"]


def label_shift_weights(y, reference):
    """Each pool item's price band: its share among the reference items over its share in the pool."""
    edges = np.array([0, 10, 25, 50, 100, 150, 200, 300, 400, 600, 1000, 1e9])
    band = np.clip(np.searchsorted(edges, np.expm1(y), side="right") - 1, 0, len(edges) - 2)
    want = np.bincount(band[reference], minlength=len(edges) - 1) / reference.sum()
    have = np.bincount(band, minlength=len(edges) - 1) / len(band)
    return want[band] / np.maximum(have[band], 1e-9)


def sweep(split):
    files, held_file = SPLITS[split]
    parts = [read_items(str(DATA / f)) for f in files]
    pool, held = [it for p in parts for it in p], read_items(str(DATA / held_file))
    y, truth = np.log1p([it.price for it in pool]), np.array([it.price for it in held])
    guesses = {n: member_predictions(n, pool, held, split) for n in MEMBERS + EXTRA}

    def stack(model, names=MEMBERS, weights=None):
        x = np.log1p(np.clip(np.column_stack([guesses[n][0] for n in names]), 0, None))
        t = np.log1p(np.clip(np.column_stack([guesses[n][1] for n in names]), 0, None))
        return np.expm1(model.fit(x, y, sample_weight=weights).predict(t))

    boosted = dict(learning_rate=0.05, random_state=42)
    runs = {
        "linear": stack(LinearRegression(positive=True)),
        "boosted": stack(HistGradientBoostingRegressor(**boosted)),
        "boosted, 300 rounds of 15 leaves": stack(HistGradientBoostingRegressor(
            **boosted, max_iter=300, max_leaf_nodes=15, early_stopping=False)),
        "boosted on absolute error": stack(HistGradientBoostingRegressor(**boosted, loss="absolute_error")),
        "boosted + features": stack(HistGradientBoostingRegressor(**boosted), MEMBERS + ["features"]),
        "boosted + bow": stack(HistGradientBoostingRegressor(**boosted), MEMBERS + ["bow"]),
        "boosted + features + bow": stack(HistGradientBoostingRegressor(**boosted), MEMBERS + EXTRA),
    }
    off = np.array([it.category is not None and it.category not in BENCHMARK_CATEGORIES for it in pool])
    runs["linear, off-benchmark categories x0.3"] = stack(LinearRegression(positive=True),
                                                          weights=np.where(off, 0.3, 1.0))
    if split == "v2":  # the pool holds benchmark-like items (dev[:625]) to weight toward
        benchmark_like = np.r_[np.zeros(len(pool) - len(parts[-1]), bool), np.ones(len(parts[-1]), bool)]
        shift = label_shift_weights(y, benchmark_like)
        for power in (0.5, 1):
            runs[f"linear, label shift ^{power}"] = stack(LinearRegression(positive=True), weights=shift**power)
        for times in (3, 10):
            runs[f"linear, dev items x{times}"] = stack(LinearRegression(positive=True),
                                                        weights=np.where(benchmark_like, times, 1.0))
    print(f"\n{split}: pool {len(pool):,}, held {len(held):,}; members alone "
          + ", ".join(f"{n} ${np.mean(np.abs(guesses[n][1] - truth)):.2f}" for n in MEMBERS + EXTRA))
    linear_errors = np.abs(runs["linear"] - truth)
    for name, guess in runs.items():
        gain = linear_errors - np.abs(guess - truth)
        low, high = bootstrap_interval(gain)
        print(f"  {name:40s} ${np.mean(np.abs(guess - truth)):7.2f}   gain on linear ${gain.mean():5.2f} "
              f"(CI ${low:.2f} to ${high:.2f})")


if __name__ == "__main__":
    for split in (sys.argv[3] if len(sys.argv) > 3 else "v1,v2").split(","):
        sweep(split)
