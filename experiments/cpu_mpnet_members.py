"""Does all-mpnet-base-v2 (768 dimensions, 12 layers) make the CPU stack's members better than all-MiniLM-L6-v2? On
the V1M validation split of experiments/stacker_sweep.py (fitted on train + train-extra + train-more, scored on
dev[:1250]) with its five folds: embed-knn and sparse-mlp-embed with mpnet's vectors in MiniLM's place, alone and in
the boosted stacker, against `recipes/cpu-stack.toml` (embed-knn + sparse-mlp-embed on MiniLM).
mpnet takes 9x MiniLM's time on this CPU (about 95 minutes for the pool): embed on a lent GPU first with
experiments/embed_on_gpu.py, whose vectors this reads from pricer's cache under the model folder's path.
Usage: python experiments/cpu_mpnet_members.py MPNET_DIR [DATA_DIR] [SWEEP_DIR]   (about 40 minutes on 2 cores)
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from pricer.data.items import read_items
from pricer.evaluation.tester import bootstrap_interval
from pricer.predictors.embedding import EmbeddingKnnPredictor
from pricer.predictors.sparse_mlp import SparseMLPPredictor

MPNET = sys.argv[1]
DATA = Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/amazon")
SWEEP = Path(sys.argv[3] if len(sys.argv) > 3 else "runs/stacker-sweep")
NEW = {"mpnet-knn": lambda: EmbeddingKnnPredictor(embedder=MPNET),
       "sparse-mlp-mpnet": lambda: SparseMLPPredictor(embedder=MPNET)}
STACKS = [["embed-knn", "sparse-mlp-embed"], ["mpnet-knn", "sparse-mlp-embed"], ["mpnet-knn", "sparse-mlp-mpnet"],
          ["embed-knn", "mpnet-knn", "sparse-mlp-embed"], ["embed-knn", "mpnet-knn", "sparse-mlp-mpnet"],
          ["embed-knn", "mpnet-knn", "sparse-mlp-embed", "sparse-mlp-mpnet"]]


def main():
    pool = [it for f in ("train.jsonl", "train-extra.jsonl", "train-more.jsonl") for it in read_items(str(DATA / f))]
    held = read_items(str(DATA / "dev.jsonl[:1250]"))
    y, truth = np.log1p([it.price for it in pool]), np.array([it.price for it in held])
    folds = np.random.default_rng(42).permutation(len(pool)) % 5  # the sweep's folds
    for name, make in NEW.items():
        cache = SWEEP / f"v1m-{name}.npz"
        if cache.exists():
            continue
        oof = np.zeros(len(pool))
        for k in range(5):
            inside = [it for it, f in zip(pool, folds) if f != k]
            oof[folds == k] = make().fit(inside).predict([it.text for it, f in zip(pool, folds) if f == k])
            print(f"{name}: fold {k + 1}/5", flush=True)
        np.savez(cache, oof=oof, held=make().fit(pool).predict([it.text for it in held]))
    members = {n: np.load(SWEEP / f"v1m-{n}.npz") for n in {n for s in STACKS for n in s}}
    for name in sorted(members):
        print(f"{name:18s} alone ${np.mean(np.abs(members[name]['held'] - truth)):7.2f}")

    def boosted(names):
        oof = np.log1p(np.clip(np.column_stack([members[n]["oof"] for n in names]), 0, None))
        test = np.log1p(np.clip(np.column_stack([members[n]["held"] for n in names]), 0, None))
        return np.expm1(HistGradientBoostingRegressor(learning_rate=0.05, random_state=42).fit(oof, y).predict(test))

    base = np.abs(boosted(STACKS[0]) - truth)
    for names in STACKS:
        errors = np.abs(boosted(names) - truth)
        low, high = bootstrap_interval(base - errors)
        print(f"  {' + '.join(names):62s} ${errors.mean():7.2f}  halves ${errors[:625].mean():.2f} / "
              f"${errors[625:].mean():.2f}  gain ${(base - errors).mean():5.2f} (CI ${low:.2f} to ${high:.2f})")


if __name__ == "__main__":
    main()
