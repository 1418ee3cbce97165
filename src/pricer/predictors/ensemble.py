"""A stacked ensemble (the reference's week 8): members' predictions combined by a linear model in log space.

The stacker learns only from out-of-fold predictions: each member is refitted on K-1 folds of the training items and
predicts the fold it did not see. Then every member is refitted on all the items and saved inside the ensemble's
directory, so the ensemble is one self-contained predictor.
"""

import hashlib
import io
import json
import shutil
from pathlib import Path

import joblib
import numpy as np

from pricer import PricerError
from pricer.predictors.base import Predictor, read_manifest
from pricer.predictors.registry import BUILTINS, ensemble_recipe, load_predictor, make_predictor, predictor_class
from pricer.storage import atomic_write_bytes, cache_dir

NOT_REFITTABLE = {"llm", "frontier", "ensemble"}


def member_template(spec: str) -> tuple[str, str, dict]:
    """(name, kind, params) of a member given as a recipe name, a saved predictor directory, or a training recipe
    file (.toml) for a language model, which is trained on every fold."""
    if spec.endswith(".toml"):
        if ensemble_recipe(spec) is not None:
            raise PricerError(f"member {spec!r} is an ensemble recipe; ensembles do not nest")
        kind, params, name = "llm-recipe", {"recipe": spec}, Path(spec).stem
    elif Path(spec).is_dir():
        manifest = read_manifest(spec)
        kind, params, name = manifest["kind"], manifest.get("params", {}), Path(spec).name
    elif spec in BUILTINS:
        (kind, params), name = BUILTINS[spec], spec
    else:
        probe = make_predictor(spec)
        kind, params, name = probe.kind, probe.params(), spec
    if kind in NOT_REFITTABLE:
        raise PricerError(f"member {spec!r} is a {kind!r} predictor, which the ensemble cannot refit on folds")
    return name, kind, params


def fold_predictions(kind: str, params: dict, train, held: list[str]) -> np.ndarray:
    """A member fitted on one fold's training items, predicting the held-out texts.

    A language model's fold predictions are kept on disk and its fold run is deleted: a cut-short ensemble then resumes
    without training a finished fold again, and a disk holds the folds of a larger model (a run of a fully tuned 1.5B
    model is 6 GB)."""
    if not hasattr(predictor_class(kind), "discard"):
        return predictor_class(kind)(**params).fit(train).predict(held)
    recipe_text = Path(params["recipe"]).read_text() if "recipe" in params else ""
    key = json.dumps([kind, params, recipe_text, [(it.text, it.price) for it in train], held])
    path = cache_dir() / "folds" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"
    if path.exists():
        return np.load(path)
    member = predictor_class(kind)(**params).fit(train)
    predictions = np.asarray(member.predict(held), dtype=float)
    buffer = io.BytesIO()
    np.save(buffer, predictions)
    atomic_write_bytes(path, buffer.getvalue())
    member.discard()
    return predictions


class EnsemblePredictor(Predictor):
    kind = "ensemble"

    def __init__(self, members: list[str] | None = None, folds: int = 5, seed: int = 42):
        self.members, self.folds, self.seed = list(members or []), folds, seed
        self.fitted: list[Predictor] = []
        self.names: list[str] = []
        self.stacker = None

    def params(self):
        return {"members": self.members, "folds": self.folds, "seed": self.seed}

    def fit(self, items, progress=print):
        if len(self.members) < 2:
            raise PricerError("an ensemble needs at least two --members")
        templates = [member_template(m) for m in self.members]
        y = np.log1p([it.price for it in items])
        fold_of = np.random.default_rng(self.seed).permutation(len(items)) % self.folds
        oof = np.zeros((len(items), len(templates)))
        for m, (name, kind, params) in enumerate(templates):
            for k in range(self.folds):
                train = [it for it, f in zip(items, fold_of) if f != k]
                held = [it.text for it, f in zip(items, fold_of) if f == k]
                oof[fold_of == k, m] = fold_predictions(kind, params, train, held)
            progress(f"{name}: out-of-fold error ${np.mean(np.abs(oof[:, m] - np.expm1(y))):,.2f}")
        from sklearn.linear_model import LinearRegression

        self.stacker = LinearRegression(positive=True).fit(np.log1p(oof), y)
        weights = {t[0]: round(float(c), 3) for t, c in zip(templates, self.stacker.coef_)}
        progress(f"stacker weights {weights}, intercept {self.stacker.intercept_:.3f}")
        self.names = [t[0] for t in templates]
        self.fitted = [predictor_class(kind)(**params).fit(items) for _, kind, params in templates]
        return self

    def predict(self, texts):
        preds = np.column_stack([member.predict(texts) for member in self.fitted])
        return np.clip(np.expm1(self.stacker.predict(np.log1p(preds))), 0.0, None)

    def save_state(self, path):
        for name, member in zip(self.names, self.fitted):
            target = path / "members" / name
            shutil.rmtree(target, ignore_errors=True)
            member.save(target)
        joblib.dump(self.stacker, path / "stacker.joblib")
        (path / "members.json").write_text(json.dumps(self.names))

    def load_state(self, path):
        self.names = json.loads((path / "members.json").read_text())
        self.fitted = [load_predictor(path / "members" / name) for name in self.names]
        self.stacker = joblib.load(path / "stacker.joblib")
