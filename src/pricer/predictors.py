"""Every predictor has the same small surface: fit(items), predict(texts), save(dir), load(dir).

A saved predictor is a directory with `pricer.json` (its kind, the format version and its parameters) beside whatever
state it needs. `load_predictor` reads that file and hands the directory to the right class, so the harness never needs
to know which predictor it holds.
"""

import importlib
import json
import math
import re
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

import joblib
import numpy as np

from pricer import PricerError, __version__
from pricer.data import Item
from pricer.storage import atomic_write_json

FORMAT_VERSION = 1
MANIFEST = "pricer.json"


class Predictor:
    kind: ClassVar[str] = ""

    def params(self) -> dict:
        """Constructor arguments, saved in the manifest and passed back on load."""
        return {}

    def fit(self, items: list[Item]) -> "Predictor":
        return self

    def predict(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def save_state(self, path: Path) -> None:
        """Write whatever fit() learned into the directory (nothing by default)."""

    def load_state(self, path: Path) -> None:
        """Read back what save_state wrote."""

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.save_state(path)
        manifest = {
            "kind": self.kind,
            "format": FORMAT_VERSION,
            "params": self.params(),
            "pricer_version": __version__,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_json(path / MANIFEST, manifest)  # last, so a directory with a manifest is complete

    @classmethod
    def load(cls, path: str | Path) -> "Predictor":
        manifest = read_manifest(path)
        if manifest["kind"] != cls.kind:
            raise PricerError(f"{path} holds a {manifest['kind']!r} predictor, not a {cls.kind!r} one")
        predictor = cls(**manifest.get("params", {}))
        predictor.load_state(Path(path))
        return predictor


def prices_from_details(details: list[dict]) -> np.ndarray:
    """predict() for predictors whose predict_details may say `price: None` (no number): NaN there."""
    return np.array([math.nan if d["price"] is None else d["price"] for d in details], dtype=float)


def read_manifest(path: str | Path) -> dict:
    path = Path(path)
    file = path / MANIFEST
    if not file.exists():
        raise PricerError(f"{path}: not a pricer model directory (no {MANIFEST})")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PricerError(f"{file}: not valid JSON") from None
    if not isinstance(manifest, dict) or "kind" not in manifest:
        raise PricerError(f"{file}: has no predictor kind")
    version = manifest.get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise PricerError(f"{path}: saved in format {version}, this pricer {__version__} reads format {FORMAT_VERSION}")
    return manifest


# ---------------------------------------------------------------------------------------------------------- baselines


class RandomPredictor(Predictor):
    """A uniform guess in [low, high] that depends only on the seed and the text, so it repeats exactly."""

    kind = "random"

    def __init__(self, low: int = 1, high: int = 999, seed: int = 42):
        self.low, self.high, self.seed = low, high, seed

    def params(self):
        return {"low": self.low, "high": self.high, "seed": self.seed}

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

    def params(self):
        return {"statistic": self.statistic}

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
        joblib.dump(self.model, path / "model.joblib")

    def load_state(self, path):
        self.model = joblib.load(path / "model.joblib")


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

    def params(self):
        return {"alpha": self.alpha}

    def make_model(self):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline

        return make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode"),
            Ridge(alpha=self.alpha),
        )


# ----------------------------------------------------------------------------------------------------------- registry

KINDS = {
    "random": "pricer.predictors:RandomPredictor",
    "constant": "pricer.predictors:ConstantPredictor",
    "features": "pricer.predictors:FeaturesPredictor",
    "bow": "pricer.predictors:BagOfWordsPredictor",
    "tfidf": "pricer.predictors:TfidfPredictor",
    "embed-rf": "pricer.embeddings:EmbeddingForestPredictor",
    "embed-knn": "pricer.embeddings:EmbeddingKnnPredictor",
    "llm": "pricer.llm:LLMPredictor",
    "llm-regressor": "pricer.llm_head:LLMRegressor",
    "llm-recipe": "pricer.training:RecipePredictor",
    "frontier": "pricer.frontier:FrontierPredictor",
    "ensemble": "pricer.ensemble:EnsemblePredictor",
}

# What `pricer fit KIND` offers: a kind with fixed parameters under a name of its own.
RECIPES = {
    "random": ("random", {}),
    "constant-mean": ("constant", {"statistic": "mean"}),
    "constant-median": ("constant", {"statistic": "median"}),
    "features": ("features", {}),
    "bow": ("bow", {}),
    "tfidf": ("tfidf", {}),
    "embed-rf": ("embed-rf", {}),
    "embed-knn": ("embed-knn", {}),
    "ensemble": ("ensemble", {}),  # with --members
}

# Usable as --model without training: the random guess, and the bundled language models zero-shot.
BUILTINS = {
    "random": ("random", {}),
    "smollm2-135m": ("llm", {"base": "smollm2-135m"}),
    "gemma3-270m": ("llm", {"base": "gemma3-270m"}),
}


def predictor_class(kind: str) -> type[Predictor]:
    if kind not in KINDS:
        raise PricerError(f"unknown predictor kind {kind!r}; known: {', '.join(KINDS)}")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def make_predictor(recipe: str, **overrides) -> Predictor:
    if recipe not in RECIPES:
        raise PricerError(f"unknown predictor {recipe!r}; choose one of: {', '.join(RECIPES)}")
    kind, params = RECIPES[recipe]
    return predictor_class(kind)(**{**params, **overrides})


def load_predictor(spec: str | Path) -> Predictor:
    """A saved model directory (`RUN_DIR@checkpoint-N` for a training checkpoint), or a built-in name."""
    path = Path(spec)
    if not path.exists() and (str(spec) == "frontier" or str(spec).startswith("frontier:")):
        from pricer.frontier import frontier_from_spec

        return frontier_from_spec(str(spec))
    if not path.is_dir() and "@" in str(spec):
        run_dir, checkpoint = str(spec).rsplit("@", 1)
        predictor = load_predictor(run_dir)
        if not hasattr(predictor, "with_checkpoint"):
            raise PricerError(f"{run_dir}: a {predictor.kind!r} predictor has no checkpoints")
        return predictor.with_checkpoint(checkpoint)
    if path.is_dir() and not (path / MANIFEST).exists() and (path / "config.json").exists():
        return predictor_class("llm")(base=str(path))  # a plain transformers model directory: the LLM zero-shot
    if path.is_dir():
        return predictor_class(read_manifest(path)["kind"]).load(path)
    if str(spec) in BUILTINS:
        kind, params = BUILTINS[str(spec)]
        return predictor_class(kind)(**params)
    raise PricerError(f"{spec}: neither a model directory nor a built-in model ({', '.join(BUILTINS)}, frontier[:MODEL])")
