"""Does the CPU stack gain from another member on the MiniLM vectors or on TF-IDF, one that errs unlike the kNN? On
the V1M validation split of experiments/stacker_sweep.py (fitted on train + train-extra + train-more, scored on
dev[:1250]) with its five folds and cached member predictions: a support-vector regressor with an RBF kernel on the
MiniLM vectors (log price), the kNN with 5 and 20 neighbours, and a kNN on TF-IDF (word 1-2 grams, cosine, 10
neighbours weighted by closeness), each alone and as a third member of the boosted stacker beside embed-knn and
sparse-mlp-embed (`recipes/cpu-stack.toml`).
Usage: python experiments/cpu_embedding_members.py [DATA_DIR] [SWEEP_DIR]   (run cpu_mlp_vectors.py first; the
vectors come from pricer's cache)
"""

import sys
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import KNeighborsRegressor
from sklearn.svm import SVR

from pricer.data.items import read_items
from pricer.evaluation.tester import bootstrap_interval
from pricer.retrieval.embeddings import embed

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon")
SWEEP = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/stacker-sweep")
STACK = ["embed-knn", "sparse-mlp-embed"]


def candidates():
    """name -> a function (train inputs, train log prices, test inputs) -> test log prices, and which inputs it reads."""
    def knn(k):
        return lambda x, y, t: KNeighborsRegressor(n_neighbors=k, metric="cosine", weights="distance").fit(x, y).predict(t)

    return {
        "embed-svr": ("vectors", lambda x, y, t: SVR(C=3.0, epsilon=0.1, cache_size=2000).fit(x, y).predict(t)),
        "embed-knn5": ("vectors", knn(5)),
        "embed-knn20": ("vectors", knn(20)),
        "tfidf-knn": ("texts", lambda x, y, t: knn(10)(*_tfidf(x, t, y))),
    }


def _tfidf(train_texts, test_texts, y):
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200_000, sublinear_tf=True)
    return vectorizer.fit_transform(train_texts), y, vectorizer.transform(test_texts)


def main():
    pool = [it for f in ("train.jsonl", "train-extra.jsonl", "train-more.jsonl") for it in read_items(str(DATA / f))]
    held = read_items(str(DATA / "dev.jsonl[:1250]"))
    y, truth = np.log1p([it.price for it in pool]), np.array([it.price for it in held])
    folds = np.random.default_rng(42).permutation(len(pool)) % 5  # the sweep's folds
    inputs = {"vectors": (embed([it.text for it in pool]), embed([it.text for it in held])),
              "texts": (np.array([it.text for it in pool], dtype=object), np.array([it.text for it in held], dtype=object))}
    members = {n: np.load(SWEEP / f"v1m-{n}.npz") for n in STACK}
    for name, (source, model) in candidates().items():
        cache = SWEEP / f"v1m-{name}.npz"
        if not cache.exists():
            start, (x_pool, x_held) = time.time(), inputs[source]
            oof = np.zeros(len(pool))
            for k in range(5):
                oof[folds == k] = model(x_pool[folds != k], y[folds != k], x_pool[folds == k])
            np.savez(cache, oof=np.expm1(oof), held=np.expm1(model(x_pool, y, x_held)))
            print(f"{name}: {time.time() - start:.0f} s", flush=True)
        members[name] = np.load(cache)

    def boosted(names):
        oof = np.log1p(np.clip(np.column_stack([members[n]["oof"] for n in names]), 0, None))
        test = np.log1p(np.clip(np.column_stack([members[n]["held"] for n in names]), 0, None))
        return np.expm1(HistGradientBoostingRegressor(learning_rate=0.05, random_state=42).fit(oof, y).predict(test))

    base = np.abs(boosted(STACK) - truth)
    print(f"{' + '.join(STACK):45s} ${base.mean():7.2f}  halves ${base[:625].mean():.2f} / ${base[625:].mean():.2f}")
    for name in candidates():
        alone = np.abs(members[name]["held"] - truth).mean()
        errors = np.abs(boosted(STACK + [name]) - truth)
        low, high = bootstrap_interval(base - errors)
        print(f"  + {name:12s} (alone ${alone:7.2f})  ${errors.mean():7.2f}  halves ${errors[:625].mean():.2f} / "
              f"${errors[625:].mean():.2f}  gain ${(base - errors).mean():5.2f} (CI ${low:.2f} to ${high:.2f})")


if __name__ == "__main__":
    main()
