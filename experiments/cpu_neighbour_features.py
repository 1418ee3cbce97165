"""Does the CPU stack gain from what the neighbours say beyond their weighted price? On the V1M validation split of
experiments/stacker_sweep.py (fitted on train + train-extra + train-more, scored on dev[:1250]), with that script's
cached out-of-fold member predictions and the same five folds: the boosted stacker on the members' log prices,
against the same with the MiniLM neighbours' statistics beside them (closeness of the nearest and of the ten, the
median and spread of their log prices), and against a ridge on the MiniLM vectors as a fourth member. Each neighbour
statistic of a pool item comes from the other folds' items only, as the members' predictions do.
Usage: python experiments/cpu_neighbour_features.py [DATA_DIR] [SWEEP_DIR] [MEMBERS] [EMBEDDER]   (run
stacker_sweep.py ... v1m first; MEMBERS: the stack's members, comma-separated, default tfidf,embed-knn,sparse-mlp,
each cached in SWEEP_DIR; EMBEDDER: the vectors of the neighbours and the ridge, default all-MiniLM-L6-v2)
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from pricer.evaluation.tester import bootstrap_interval
from pricer.retrieval.embeddings import embed
from v1m import split

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon")
SWEEP = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/stacker-sweep")
MEMBERS = (sys.argv[3] if len(sys.argv) > 3 else "tfidf,embed-knn,sparse-mlp").split(",")
EMBEDDER = sys.argv[4] if len(sys.argv) > 4 else "all-MiniLM-L6-v2"
K = 10


def neighbour_stats(queries, keys, log_prices):
    """Per query: closeness of the nearest key and the mean of the K nearest, their log prices' median and spread."""
    rows = []
    for start in range(0, len(queries), 1024):
        sims = queries[start : start + 1024] @ keys.T
        top = np.argpartition(-sims, K, axis=1)[:, :K]
        top_sims = np.take_along_axis(sims, top, axis=1)
        prices = log_prices[top]
        rows.append(np.column_stack([top_sims.max(1), top_sims.mean(1), np.median(prices, 1), prices.std(1)]))
    return np.vstack(rows)


def main():
    s = split(DATA)
    pool, held, y, truth, folds = s.pool, s.held, s.y, s.truth, s.folds
    x_pool, x_held = embed([it.text for it in pool], EMBEDDER), embed([it.text for it in held], EMBEDDER)

    oof_stats, oof_ridge = np.zeros((len(pool), 4)), np.zeros(len(pool))
    for fold in range(5):
        inside, out = folds != fold, folds == fold
        oof_stats[out] = neighbour_stats(x_pool[out], x_pool[inside], y[inside])
        oof_ridge[out] = Ridge(alpha=1.0).fit(x_pool[inside], y[inside]).predict(x_pool[out])
    held_stats = neighbour_stats(x_held, x_pool, y)
    held_ridge = Ridge(alpha=1.0).fit(x_pool, y).predict(x_held)

    saved = {n: np.load(SWEEP / f"v1m-{n}.npz") for n in MEMBERS}
    members_oof = np.log1p(np.clip(np.column_stack([saved[n]["oof"] for n in MEMBERS]), 0, None))
    members_held = np.log1p(np.clip(np.column_stack([saved[n]["held"] for n in MEMBERS]), 0, None))

    def boosted(train_x, test_x):
        model = HistGradientBoostingRegressor(learning_rate=0.05, random_state=42).fit(train_x, y)
        return np.expm1(model.predict(test_x))

    runs = {
        "boosted on the members": boosted(members_oof, members_held),
        "+ neighbour statistics": boosted(np.column_stack([members_oof, oof_stats]),
                                          np.column_stack([members_held, held_stats])),
        "+ ridge on the vectors": boosted(np.column_stack([members_oof, oof_ridge]),
                                     np.column_stack([members_held, held_ridge])),
        "+ both": boosted(np.column_stack([members_oof, oof_stats, oof_ridge]),
                          np.column_stack([members_held, held_stats, held_ridge])),
    }
    print(f"ridge on the vectors alone ${np.mean(np.abs(np.expm1(held_ridge) - truth)):.2f}")
    base = np.abs(runs["boosted on the members"] - truth)
    for name, guess in runs.items():
        errors = np.abs(guess - truth)
        gain = base - errors
        low, high = bootstrap_interval(gain)
        print(f"  {name:32s} ${errors.mean():7.2f}  halves ${errors[:625].mean():.2f} / ${errors[625:].mean():.2f}  "
              f"gain ${gain.mean():5.2f} (CI ${low:.2f} to ${high:.2f})")


if __name__ == "__main__":
    main()
