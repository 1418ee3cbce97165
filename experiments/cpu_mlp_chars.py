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
from sklearn.feature_extraction.text import TfidfVectorizer

from pricer.predictors.sparse_mlp import SparseMLPPredictor
from v1m import boosted, cached_member, report, split

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
    s = split(DATA)
    members = {n: cached_member(SWEEP, n, None, s) for n in ["embed-knn", "sparse-mlp-embed"]}
    members["char-mlp-embed"] = cached_member(SWEEP, "char-mlp-embed", lambda: CharacterMLP(embedder="all-MiniLM-L6-v2"), s)
    print(f"char-mlp-embed alone ${s.error(members['char-mlp-embed']['held']):.2f}")
    base = np.abs(boosted(members, ["embed-knn", "sparse-mlp-embed"], s) - s.truth)
    for names in (["embed-knn", "char-mlp-embed"], ["embed-knn", "sparse-mlp-embed", "char-mlp-embed"]):
        report(" + ".join(names), boosted(members, names, s), base, s)


if __name__ == "__main__":
    main()
