"""Does sparse-mlp-embed gain from character n-grams beside its word n-grams? On the V1M validation split of
experiments/stacker_sweep.py (fitted on train + train-extra + train-more, scored on dev[:1250]) with its five folds:
the network's sparse input is TF-IDF of word 1-2 grams and of character 2-5 grams within words (at most 200,000 of
each, the characters' part weighted 0.7), the MiniLM vector beside them as in `sparse-mlp-embed`. Scored alone and in
the boosted stacker with embed-knn, against `recipes/cpu-stack.toml` (embed-knn + sparse-mlp-embed).
Usage: python experiments/cpu_mlp_chars.py [DATA_DIR] [SWEEP_DIR]   (run cpu_mlp_vectors.py first; about 40 minutes
on 2 cores)
"""

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer

from pricer.data.items import read_items
from pricer.evaluation.tester import bootstrap_interval
from pricer.predictors.sparse_mlp import SparseMLPPredictor

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon")
SWEEP = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/stacker-sweep")


class WordsAndCharacters:
    def __init__(self):
        self.words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200_000, sublinear_tf=True,
                                     dtype=np.float32)
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, max_features=200_000,
                                     sublinear_tf=True, dtype=np.float32)

    def fit_transform(self, texts):
        return sp.hstack([self.words.fit_transform(texts), self.chars.fit_transform(texts) * 0.7]).tocsr()

    def transform(self, texts):
        return sp.hstack([self.words.transform(texts), self.chars.transform(texts) * 0.7]).tocsr()


class CharacterMLP(SparseMLPPredictor):
    def make_vectorizer(self):
        return WordsAndCharacters()


def main():
    pool = [it for f in ("train.jsonl", "train-extra.jsonl", "train-more.jsonl") for it in read_items(str(DATA / f))]
    held = read_items(str(DATA / "dev.jsonl[:1250]"))
    y, truth = np.log1p([it.price for it in pool]), np.array([it.price for it in held])
    cache = SWEEP / "v1m-char-mlp-embed.npz"
    if not cache.exists():
        folds = np.random.default_rng(42).permutation(len(pool)) % 5  # the sweep's folds
        oof = np.zeros(len(pool))
        for k in range(5):
            inside = [it for it, f in zip(pool, folds) if f != k]
            out = [it.text for it, f in zip(pool, folds) if f == k]
            oof[folds == k] = CharacterMLP(embedder="all-MiniLM-L6-v2").fit(inside).predict(out)
            print(f"fold {k + 1}/5", flush=True)
        held_guesses = CharacterMLP(embedder="all-MiniLM-L6-v2").fit(pool).predict([it.text for it in held])
        np.savez(cache, oof=oof, held=held_guesses)
    members = {n: np.load(SWEEP / f"v1m-{n}.npz") for n in ["embed-knn", "sparse-mlp-embed", "char-mlp-embed"]}
    print(f"char-mlp-embed alone ${np.mean(np.abs(members['char-mlp-embed']['held'] - truth)):.2f}")

    def boosted(names):
        oof = np.log1p(np.clip(np.column_stack([members[n]["oof"] for n in names]), 0, None))
        test = np.log1p(np.clip(np.column_stack([members[n]["held"] for n in names]), 0, None))
        return np.expm1(HistGradientBoostingRegressor(learning_rate=0.05, random_state=42).fit(oof, y).predict(test))

    base = np.abs(boosted(["embed-knn", "sparse-mlp-embed"]) - truth)
    for names in (["embed-knn", "char-mlp-embed"], ["embed-knn", "sparse-mlp-embed", "char-mlp-embed"]):
        errors = np.abs(boosted(names) - truth)
        low, high = bootstrap_interval(base - errors)
        print(f"  {' + '.join(names):50s} ${errors.mean():7.2f}  halves ${errors[:625].mean():.2f} / "
              f"${errors[625:].mean():.2f}  gain ${(base - errors).mean():5.2f} (CI ${low:.2f} to ${high:.2f})")


if __name__ == "__main__":
    main()
