"""Four variants of the mpnet sparse MLP. Two settings chosen for TF-IDF alone, before the sentence vector joined it: how
loud the vector speaks in the first layer (the vector times 3, so its map starts three times as strong against the
TF-IDF row's) and the length of training (five epochs, the batch doubling to 512, instead of four). And the Mercari
winners' separate vectorizer for the product's name: TF-IDF of the title line's 1-2 grams beside the whole text's, so
a word in the title is a feature of its own. And single characters as words (scikit-learn's default pattern keeps
words of two or more, so the 2 of "2-Light" or "Pack of 4" is dropped). On the V1M validation split (fitted on train +
train-extra + train-more, scored on dev[:1250]) with its five folds, each alone and in the boosted stacker beside the
mpnet kNN, paired against `recipes/cpu-stack-mpnet.toml` (the mpnet kNN and the MLP as it is). With SECOND=1, on the
second validation slice (V2M: the pool and dev[:625], scored on dev[625:1250]); VARIANTS=a,b fits only those variants.
Usage: [SECOND=1] [VARIANTS=epochs5] python experiments/cpu_mlp_mpnet_settings.py [DATA_DIR] [SWEEP_DIR] (about 7
minutes a variant on 2 cores, the mpnet vectors cached)
"""

import os
import sys
from pathlib import Path

import numpy as np

from pricer.predictors.embedding import EmbeddingKnnPredictor
from pricer.predictors.sparse_mlp import SparseMLPPredictor
from v1m import boosted, cached_member, report, split

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon")
SWEEP = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/stacker-sweep")
MPNET = "all-mpnet-base-v2"


class LouderVector(SparseMLPPredictor):
    def sentence_vectors(self, texts):
        return super().sentence_vectors(texts) * 3.0


def title_line(text: str) -> str:
    return text.split("\n", 1)[0].lower()


class TitleFeatures(SparseMLPPredictor):
    def make_vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion

        title = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, preprocessor=title_line,
                                dtype=np.float32)
        return FeatureUnion([("text", super().make_vectorizer()), ("title", title)])


MEMBERS = {"mpnet-knn": lambda: EmbeddingKnnPredictor(embedder=MPNET),
           "sparse-mlp-mpnet": lambda: SparseMLPPredictor(embedder=MPNET),  # as it was: words of two characters or more
           "sparse-mlp-mpnet-vector3": lambda: LouderVector(embedder=MPNET),
           "sparse-mlp-mpnet-epochs5": lambda: SparseMLPPredictor(embedder=MPNET, epochs=5),
           "sparse-mlp-mpnet-title": lambda: TitleFeatures(embedder=MPNET),
           "sparse-mlp-mpnet-chars1": lambda: SparseMLPPredictor(embedder=MPNET, single_characters=True)}


def main():
    s = split(DATA, second=os.environ.get("SECOND") == "1")
    chosen = os.environ.get("VARIANTS")
    wanted = [n for n in MEMBERS if not chosen or n in ("mpnet-knn", "sparse-mlp-mpnet")
              or n.removeprefix("sparse-mlp-mpnet-") in chosen.split(",")]
    members = {name: cached_member(SWEEP, name, MEMBERS[name], s) for name in wanted}
    for name in members:
        print(f"{name:26s} alone ${s.error(members[name]['held']):7.2f}")
    base = abs(boosted(members, ["mpnet-knn", "sparse-mlp-mpnet"], s) - s.truth)
    for mlp in [name for name in members if name.startswith("sparse-mlp")]:
        report(f"mpnet-knn + {mlp}", boosted(members, ["mpnet-knn", mlp], s), base, s, width=44)


if __name__ == "__main__":
    main()
