"""Regressors on sentence embeddings (all-MiniLM-L6-v2): a random forest and k nearest neighbours.
"""

from typing import ClassVar

import numpy as np

from pricer.predictors.base import Predictor
from pricer.predictors.model_files import load_estimator, save_estimator
from pricer.retrieval.embeddings import DEFAULT_EMBEDDER, embed


class EmbeddingPredictor(Predictor):
    """A scikit-learn regressor on sentence embeddings, fitted on log(1 + price)."""

    kind: ClassVar[str] = ""

    def __init__(self, embedder: str = DEFAULT_EMBEDDER):
        self.embedder = embedder
        self.regressor = None

    def make_regressor(self, n_items: int):
        raise NotImplementedError

    def fit(self, items):
        x = embed([it.text for it in items], self.embedder)
        self.regressor = self.make_regressor(len(items)).fit(x, np.log1p([it.price for it in items]))
        return self

    def predict(self, texts):
        return np.clip(np.expm1(self.regressor.predict(embed(list(texts), self.embedder))), 0.0, None)

    def save_state(self, path):
        save_estimator(self.regressor, path / "regressor.skops")

    def load_state(self, path):
        self.regressor = load_estimator(path / "regressor.skops")


class EmbeddingForestPredictor(EmbeddingPredictor):
    kind = "embed-rf"

    def __init__(self, embedder: str = DEFAULT_EMBEDDER, trees: int = 300, seed: int = 42):
        super().__init__(embedder)
        self.trees, self.seed = trees, seed

    def make_regressor(self, n_items):
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=self.trees, min_samples_leaf=2, max_features=0.33, n_jobs=-1, random_state=self.seed
        )


class EmbeddingKnnPredictor(EmbeddingPredictor):
    """The prices of the k most similar training items, weighted by closeness."""

    kind = "embed-knn"

    def __init__(self, embedder: str = DEFAULT_EMBEDDER, k: int = 10):
        super().__init__(embedder)
        self.k = k

    def make_regressor(self, n_items):
        from sklearn.neighbors import KNeighborsRegressor

        return KNeighborsRegressor(n_neighbors=min(self.k, n_items), metric="cosine", weights="distance")
