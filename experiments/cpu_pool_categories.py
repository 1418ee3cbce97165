"""Do the pool's items from outside the benchmark's eight categories (1,614 of 13,937: train-extra's Video_Games,
Handmade_Products, Health_and_Personal_Care, Software, and a few of train-more) help or hurt the CPU stack's members?
On the V1M validation split of experiments/stacker_sweep.py (fitted on train + train-extra + train-more, scored on
dev[:1250]) with its five folds: each member of `recipes/cpu-stack-mpnet.toml` fitted on its folds' items without
them (items without a category are kept), still predicting every out-of-fold item so the stacker sees the whole pool.
Usage: python experiments/cpu_pool_categories.py [DATA_DIR] [SWEEP_DIR]   (run cpu_mpnet_members.py first; about 25
minutes on 2 cores)
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from pricer.data.items import read_items
from pricer.evaluation.tester import bootstrap_interval
from pricer.predictors.registry import make_predictor

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon")
SWEEP = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/stacker-sweep")
MEMBERS = {"mpnet-knn": "embed-knn-mpnet", "sparse-mlp-mpnet": "sparse-mlp-mpnet"}  # cache name -> recipe name


def main():
    pool = [it for f in ("train.jsonl", "train-extra.jsonl", "train-more.jsonl") for it in read_items(str(DATA / f))]
    held = read_items(str(DATA / "dev.jsonl[:1250]"))
    benchmark = {it.category for it in read_items(str(DATA / "dev.jsonl"))}
    inside_benchmark = np.array([it.category is None or it.category in benchmark for it in pool])
    print(f"{(~inside_benchmark).sum():,} of {len(pool):,} pool items from other categories")
    y, truth = np.log1p([it.price for it in pool]), np.array([it.price for it in held])
    folds = np.random.default_rng(42).permutation(len(pool)) % 5  # the sweep's folds
    members = {n: np.load(SWEEP / f"v1m-{n}.npz") for n in MEMBERS}
    for name, recipe in MEMBERS.items():
        cache = SWEEP / f"v1m-{name}-benchmark-categories.npz"
        if not cache.exists():
            oof = np.zeros(len(pool))
            for k in range(5):
                train = [it for it, f, ok in zip(pool, folds, inside_benchmark) if f != k and ok]
                oof[folds == k] = make_predictor(recipe).fit(train).predict([it.text for it, f in zip(pool, folds) if f == k])
                print(f"{name}: fold {k + 1}/5", flush=True)
            train = [it for it, ok in zip(pool, inside_benchmark) if ok]
            np.savez(cache, oof=oof, held=make_predictor(recipe).fit(train).predict([it.text for it in held]))
        members[f"{name} (benchmark categories)"] = np.load(cache)
        print(f"{name}: alone ${np.mean(np.abs(members[name]['held'] - truth)):.2f}, on the benchmark's categories "
              f"${np.mean(np.abs(members[name + ' (benchmark categories)']['held'] - truth)):.2f}")

    def boosted(names):
        oof = np.log1p(np.clip(np.column_stack([members[n]["oof"] for n in names]), 0, None))
        test = np.log1p(np.clip(np.column_stack([members[n]["held"] for n in names]), 0, None))
        return np.expm1(HistGradientBoostingRegressor(learning_rate=0.05, random_state=42).fit(oof, y).predict(test))

    base = np.abs(boosted(list(MEMBERS)) - truth)
    knn, mlp = list(MEMBERS)
    for names in ([knn, mlp], [f"{knn} (benchmark categories)", mlp], [knn, f"{mlp} (benchmark categories)"],
                  [f"{knn} (benchmark categories)", f"{mlp} (benchmark categories)"]):
        errors = np.abs(boosted(names) - truth)
        low, high = bootstrap_interval(base - errors)
        print(f"  {' + '.join(names):75s} ${errors.mean():7.2f}  halves ${errors[:625].mean():.2f} / "
              f"${errors[625:].mean():.2f}  gain ${(base - errors).mean():5.2f} (CI ${low:.2f} to ${high:.2f})")


if __name__ == "__main__":
    main()
