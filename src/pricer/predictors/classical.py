"""The classical baselines of the reference: a random guess, constants, hand-made features, bag of words, TF-IDF.
"""

import json
import math
import re
import zlib
from typing import ClassVar

import numpy as np

from pricer.errors import PricerError
from pricer.predictors.base import Predictor
from pricer.predictors.model_files import load_estimator, save_estimator
from pricer.storage import atomic_write_json


class RandomPredictor(Predictor):
    """A uniform guess in [low, high] that depends only on the seed and the text, so it repeats exactly."""

    kind = "random"

    def __init__(self, low: int = 1, high: int = 999, seed: int = 42):
        self.low, self.high, self.seed = low, high, seed

    def predict(self, texts):
        return np.array(
            [np.random.default_rng([self.seed, zlib.crc32(t.encode())]).integers(self.low, self.high + 1) for t in texts],
            dtype=float,
        )


class ConstantPredictor(Predictor):
    """The training mean or median for every item."""

    kind = "constant"

    def __init__(self, statistic: str = "mean"):
        if statistic not in ("mean", "median"):
            raise PricerError(f"constant statistic must be mean or median, not {statistic!r}")
        self.statistic = statistic
        self.value: float | None = None

    def fit(self, items):
        prices = np.array([it.price for it in items])
        self.value = float(np.mean(prices) if self.statistic == "mean" else np.median(prices))
        return self

    def predict(self, texts):
        return np.full(len(texts), self.value, dtype=float)

    def save_state(self, path):
        atomic_write_json(path / "state.json", {"value": self.value})

    def load_state(self, path):
        self.value = json.loads((path / "state.json").read_text())["value"]


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


_WEIGHT = re.compile(r"(\d+(?:\.\d+)?)\s*(pounds?|lbs?|ounces?|oz)\b", re.I)


_PACK = re.compile(r"\b(?:pack|set|pcs|pieces|count)\b", re.I)


_PREMIUM = re.compile(r"\b(?:professional|pro|premium|heavy duty|commercial|stainless|kit|system)\b", re.I)


def text_features(texts: list[str]) -> np.ndarray:
    """Hand-made features, the reference's 'linear regression on features' done from the text alone."""
    rows = []
    for text in texts:
        weight = _WEIGHT.search(text)
        pounds = 0.0
        if weight:
            pounds = float(weight.group(1)) / (16 if weight.group(2).lower().startswith(("oz", "ounce")) else 1)
        numbers = [float(n) for n in _NUMBER.findall(text)[:50]]
        rows.append(
            [
                math.log1p(len(text)),
                math.log1p(len(text.split())),
                math.log1p(min(pounds, 1000)),
                float(weight is not None),
                len(_PACK.findall(text)),
                len(_PREMIUM.findall(text)),
                math.log1p(len(numbers)),
                math.log1p(min(max(numbers, default=0), 1e6)),
                sum(c.isupper() for c in text) / max(len(text), 1),
            ]
        )
    return np.array(rows, dtype=float)


class SklearnPredictor(Predictor):
    """A scikit-learn pipeline from text to price, fitted on the price or on log(1 + price)."""

    log_target: ClassVar[bool] = False

    def __init__(self):
        self.model = None

    def make_model(self):
        raise NotImplementedError

    def fit(self, items):
        y = np.array([it.price for it in items])
        self.model = self.make_model().fit([it.text for it in items], np.log1p(y) if self.log_target else y)
        return self

    def predict(self, texts):
        raw = self.model.predict(list(texts))
        return np.clip(np.expm1(raw) if self.log_target else raw, 0.0, None)

    def save_state(self, path):
        save_estimator(self.model, path / "model.skops")

    def load_state(self, path):
        self.model = load_estimator(path / "model.skops")


class FeaturesPredictor(SklearnPredictor):
    kind = "features"

    def make_model(self):
        from sklearn.linear_model import LinearRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        return make_pipeline(FunctionTransformer(text_features), StandardScaler(), LinearRegression())


class BagOfWordsPredictor(SklearnPredictor):
    """The reference's bag of words: 1,000 most common words, linear regression on the price."""

    kind = "bow"

    def make_model(self):
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LinearRegression
        from sklearn.pipeline import make_pipeline

        return make_pipeline(CountVectorizer(max_features=1000, stop_words="english"), LinearRegression())


class TfidfPredictor(SklearnPredictor):
    """Word 1-2 grams, TF-IDF, ridge regression on log(1 + price)."""

    kind = "tfidf"
    log_target = True

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def make_model(self):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline

        return make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode"),
            Ridge(alpha=self.alpha),
        )
