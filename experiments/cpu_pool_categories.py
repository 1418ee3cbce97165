"""Do the pool's items from outside the benchmark's eight categories (1,614 of 13,937: train-extra's Video_Games,
Handmade_Products, Health_and_Personal_Care, Software, and a few of train-more) help or hurt the CPU stack's members?
On the V1M validation split of experiments/stacker_sweep.py (fitted on train + train-extra + train-more, scored on
dev[:1250]) with its five folds: each member of `recipes/cpu-stack-mpnet.toml` fitted on its folds' items without
them (items without a category are kept), still predicting every out-of-fold item so the stacker sees the whole pool.
With SECOND=1, on the second slice (V2M: the pool and dev[:625], scored on dev[625:1250]), all four members fitted anew.
Usage: [SECOND=1] python experiments/cpu_pool_categories.py [DATA_DIR] [SWEEP_DIR]   (run cpu_mpnet_members.py first;
about 25 minutes on 2 cores)
"""

import os
import sys
from pathlib import Path

import numpy as np

from pricer.data.items import read_items
from pricer.predictors.registry import make_predictor
from v1m import boosted, cached_member, report, split

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon")
SWEEP = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/stacker-sweep")
MEMBERS = {"mpnet-knn": "embed-knn-mpnet", "sparse-mlp-mpnet": "sparse-mlp-mpnet"}  # cache name -> recipe name


def main():
    s = split(DATA, second=os.environ.get("SECOND") == "1")
    benchmark = {it.category for it in read_items(str(DATA / "dev.jsonl"))}
    inside_benchmark = np.array([it.category is None or it.category in benchmark for it in s.pool])
    print(f"{(~inside_benchmark).sum():,} of {len(s.pool):,} pool items from other categories")
    members = {}
    for name, recipe in MEMBERS.items():
        members[name] = cached_member(SWEEP, name, lambda: make_predictor(recipe), s)
        members[f"{name} (benchmark categories)"] = cached_member(
            SWEEP, f"{name}-benchmark-categories", lambda: make_predictor(recipe), s, keep=inside_benchmark)
        print(f"{name}: alone ${s.error(members[name]['held']):.2f}, on the benchmark's categories "
              f"${s.error(members[name + ' (benchmark categories)']['held']):.2f}")

    knn, mlp = list(MEMBERS)
    base = np.abs(boosted(members, [knn, mlp], s) - s.truth)
    for names in ([knn, mlp], [f"{knn} (benchmark categories)", mlp], [knn, f"{mlp} (benchmark categories)"],
                  [f"{knn} (benchmark categories)", f"{mlp} (benchmark categories)"]):
        report(" + ".join(names), boosted(members, names, s), base, s, width=75)


if __name__ == "__main__":
    main()
