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
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import KNeighborsRegressor
from sklearn.svm import SVR

from pricer.retrieval.embeddings import embed
from v1m import boosted, cached_member, report, split

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
    s = split(DATA)
    inputs = {"vectors": (embed([it.text for it in s.pool]), embed([it.text for it in s.held])),
              "texts": (np.array([it.text for it in s.pool], dtype=object),
                        np.array([it.text for it in s.held], dtype=object))}
    members = {n: cached_member(SWEEP, n, None, s) for n in STACK}
    for name, (source, model) in candidates().items():
        cache = SWEEP / f"v1m-{name}.npz"
        if not cache.exists():  # scikit-learn models on arrays, not predictors: their own fold loop
            start, (x_pool, x_held) = time.time(), inputs[source]
            oof = np.zeros(len(s.pool))
            for k in range(5):
                oof[s.folds == k] = model(x_pool[s.folds != k], s.y[s.folds != k], x_pool[s.folds == k])
            np.savez(cache, oof=np.expm1(oof), held=np.expm1(model(x_pool, s.y, x_held)))
            print(f"{name}: {time.time() - start:.0f} s", flush=True)
        members[name] = dict(np.load(cache))

    base = np.abs(boosted(members, STACK, s) - s.truth)
    print(f"{' + '.join(STACK):45s} ${base.mean():7.2f}  halves ${base[:625].mean():.2f} / ${base[625:].mean():.2f}")
    for name in candidates():
        report(f"+ {name:12s} (alone ${s.error(members[name]['held']):7.2f})", boosted(members, STACK + [name], s),
               base, s, width=0)


if __name__ == "__main__":
    main()
