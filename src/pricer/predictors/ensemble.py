"""A stacked ensemble (the reference's week 8): members' predictions combined in log space by a stacker.

The stacker learns only from out-of-fold predictions: each member is refitted on K-1 folds of the training items and
predicts the fold it did not see. Then every member is refitted on all the items and saved inside the ensemble's
directory, so the ensemble is one self-contained predictor. With `folds = 0` there is no stacker: the members' log
prices are averaged with equal weights (their geometric mean), which is how two seeds of one recipe are combined
without training each on every fold.

The stacker is linear (positive weights on the members' log prices, as the reference's week 8 combines its agents)
or boosted: gradient-boosted trees on the same inputs, which can also bend a member's scale where it is biased (the
members learn from a pool that is cheaper than the benchmark). Boosted was about $2 better than linear for the CPU
stack on two validation slices of the pool (docs/results.md).
"""

import hashlib
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np

from pricer.errors import PricerError
from pricer.predictors.base import Predictor, read_manifest
from pricer.predictors.intervals import Calibration
from pricer.predictors.model_files import has_estimator, load_estimator, save_estimator
from pricer.predictors.registry import BUILTINS, ensemble_recipe, load_predictor, make_predictor, predictor_class
from pricer.storage import atomic_write_bytes, cache_dir

NOT_REFITTABLE = {"llm", "frontier", "ensemble"}
FIXED = "fixed"  # a member used as it is: `fixed:MODEL` (a hub adapter USER/RUN@REVISION, an adapter folder, a run)
REFERENCE = "fixed.json"
STACKERS = ("linear", "boosted")


def folder_name(text: str) -> str:
    """A member's name as one folder under the saved ensemble's members/: a path's slashes become `--`."""
    return text.rstrip("/").replace("/", "--")


def member_template(spec: str) -> tuple[str, str, dict]:
    """(name, kind, params) of a member given as a recipe name, a saved predictor directory, a training recipe file
    (.toml) for a language model, which is trained on every fold (`RECIPE.toml KEY=VALUE ...` with settings over the
    file's, as `pricer train` takes them: another seed), or `fixed:MODEL` for a model that is not refitted:
    its predictions on the training items stand in for out-of-fold ones (so it must not have been trained on them),
    and the saved ensemble keeps the reference, revision included, not a copy."""
    if spec.startswith(f"{FIXED}:"):
        from pricer.llm.checkpoints import split_revision

        local, revision = split_revision(spec.split(":", 1)[1])  # `@best`: the revision chosen now, kept as it is
        if Path(local).exists():  # a local run or adapter: found from anywhere the ensemble is loaded
            local = str(Path(local).resolve())
        model = f"{local}@{revision}" if revision else local
        name = folder_name(model)[-60:]
        return name, FIXED, {"model": model}
    if spec.endswith(".toml") or ".toml " in spec:
        from pricer.llm.training import parse_overrides

        head, with_settings, settings = spec.partition(".toml ")
        recipe, overrides = head + ".toml" if with_settings else spec, parse_overrides(settings.split())
        if ensemble_recipe(recipe) is not None:
            raise PricerError(f"member {spec!r} is an ensemble recipe; ensembles do not nest")
        suffix = "".join(f"-{key}{value}" for key, value in overrides.items())
        kind, name = "llm-recipe", folder_name(Path(recipe).stem + suffix)
        params = {"recipe": recipe, "overrides": overrides} if overrides else {"recipe": recipe}
    elif Path(spec).is_dir():
        manifest = read_manifest(spec)
        kind, params, name = manifest["kind"], manifest.get("params", {}), Path(spec).name
    elif spec in BUILTINS:
        (kind, params), name = BUILTINS[spec], spec
    else:  # a recipe name, with settings or without: `encoder-minilm epochs=1` is named encoder-minilm-epochs1
        probe = make_predictor(spec)
        kind, params, name = probe.kind, probe.params(), folder_name("-".join(spec.split()).replace("=", ""))
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


def out_of_fold_predictions(kind: str, params: dict, items, fold_of: np.ndarray, progress=None) -> np.ndarray:
    """Each item's price from the member fitted on the folds it is not in (fold_of: each item's fold); progress is
    told of each fold and its time as it ends (a fine-tuned member's fold can take an hour on a CPU)."""
    predictions, folds = np.zeros(len(items)), np.unique(fold_of)
    for k in folds:
        start = time.monotonic()
        train = [it for it, f in zip(items, fold_of) if f != k]
        held = [it.text for it, f in zip(items, fold_of) if f == k]
        predictions[fold_of == k] = fold_predictions(kind, params, train, held)
        if progress:
            progress(f"fold {k + 1} of {len(folds)} done in {time.monotonic() - start:,.0f} s")
    return predictions


class EnsemblePredictor(Predictor):
    kind = "ensemble"
    calibration_folds = 0  # calibrated in fit() from the out-of-fold predictions it makes anyway

    def __init__(self, members: list[str] | None = None, folds: int = 5, seed: int = 42, stacker: str = "linear"):
        self.members, self.folds, self.seed, self.stacker = list(members or []), folds, seed, stacker
        self.fitted: list[Predictor] = []
        self.names: list[str] = []
        self.references: dict[str, str] = {}  # fixed members: name -> model reference
        self.fills: list[float] = []
        self.stacker_model = None

    def sentence_embedders(self) -> set[str]:
        return {params["embedder"] for _, kind, params in map(member_template, self.members)
                if kind != FIXED and params.get("embedder")}

    def fit(self, items, progress=print):
        if len(self.members) < 2:
            raise PricerError("an ensemble needs at least two --members")
        if self.folds == 1 or self.folds < 0:
            raise PricerError(f"ensemble folds must be 0 (a geometric mean of the members) or at least 2, "
                              f"not {self.folds}")
        if self.stacker not in STACKERS:
            raise PricerError(f"ensemble stacker must be {' or '.join(STACKERS)}, not {self.stacker!r}")
        templates = [member_template(m) for m in self.members]
        self.names = [t[0] for t in templates]
        if len(set(self.names)) < len(self.names):
            raise PricerError(f"two members are named alike ({', '.join(self.members)}); give each its own")
        self.references = {name: params["model"] for name, kind, params in templates if kind == FIXED}
        fixed = {m: load_predictor(params["model"]) for m, (_, kind, params) in enumerate(templates) if kind == FIXED}
        if self.folds == 0:  # a blend: no out-of-fold predictions, no stacker
            self.fills, self.stacker_model = [0.0] * len(templates), None
            if len(fixed) == len(templates):  # fixed members never saw these items: their blend calibrates
                blend = np.column_stack([fixed[m].predict([it.text for it in items]) for m in fixed])
                self.calibration = Calibration.fit(self._blend(blend), [it.price for it in items],
                                                   "the fixed members on the items they were not fitted on")
            self.fitted = self._fit_on_all(templates, fixed, items, progress)
            return self
        y = np.log1p([it.price for it in items])
        fold_of = np.random.default_rng(self.seed).permutation(len(items)) % self.folds
        oof = np.zeros((len(items), len(templates)))
        for m, (name, kind, params) in enumerate(templates):
            if kind == FIXED:
                oof[:, m] = fixed[m].predict([it.text for it in items])
            else:
                oof[:, m] = out_of_fold_predictions(kind, params, items, fold_of,
                                                    progress=lambda line: progress(f"{name}: {line}"))
            progress(f"{name}: out-of-fold error ${np.nanmean(np.abs(oof[:, m] - np.expm1(y))):,.2f}"
                     + (f", no price for {np.isnan(oof[:, m]).sum():,}" if np.isnan(oof[:, m]).any() else ""))
        # a member that names no price for an item (a language model can) stands in with its median guess there
        self.fills = [float(np.nanmedian(column)) if not np.isnan(column).all() else 0.0 for column in oof.T]
        self.stacker_model = self._make_stacker().fit(self._features(oof), y)
        self.calibration = self._stacked_calibration(oof, y)
        if self.stacker == "linear":
            weights = {t[0]: round(float(c), 3) for t, c in zip(templates, self.stacker_model.coef_)}
            progress(f"stacker weights {weights}, intercept {self.stacker_model.intercept_:.3f}")
        else:
            progress(f"boosted stacker: {self.stacker_model.n_iter_} rounds of trees")
        self.fitted = self._fit_on_all(templates, fixed, items, progress)
        return self

    def _stacked_calibration(self, oof: np.ndarray, y: np.ndarray) -> Calibration:
        """The interval's calibration from estimates that saw neither the item's members' fit nor the stacker's: the
        stacker cross-validated over the members' out-of-fold predictions."""
        from sklearn.model_selection import KFold, cross_val_predict

        folds = KFold(self.folds, shuffle=True, random_state=self.seed)
        stacked = cross_val_predict(self._make_stacker(), self._features(oof), y, cv=folds)
        return Calibration.fit(np.expm1(stacked), np.expm1(y), f"{self.folds}-fold out-of-fold members and stacker")

    def _make_stacker(self):
        if self.stacker == "boosted":
            from sklearn.ensemble import HistGradientBoostingRegressor

            return HistGradientBoostingRegressor(learning_rate=0.05, random_state=self.seed)
        from sklearn.linear_model import LinearRegression

        return LinearRegression(positive=True)

    @staticmethod
    def _fit_on_all(templates, fixed: dict, items, progress) -> list[Predictor]:
        """Every member fitted on all the items (a fixed one as it is): what the saved ensemble predicts with."""
        fitted = []
        for m, (name, kind, params) in enumerate(templates):
            fitted.append(fixed[m] if kind == FIXED else predictor_class(kind)(**params).fit(items))
            # "offered": a member with categories keeps only the items of its own
            done = "kept as it was fitted" if kind == FIXED else f"final fit done ({len(items):,} items offered)"
            progress(f"{name}: {done}")
        return fitted

    def _features(self, predictions: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(predictions), np.asarray(self.fills)[None, :], predictions)
        return np.log1p(np.clip(filled, 0.0, None))

    def predict(self, texts):
        preds = np.column_stack([member.predict(texts) for member in self.fitted])
        if self.stacker_model is None:
            return self._blend(preds)
        return np.clip(np.expm1(self.stacker_model.predict(self._features(preds))), 0.0, None)

    @staticmethod
    def _blend(preds: np.ndarray) -> np.ndarray:
        """The members' geometric mean; a member that names no price is left out of that item's mean."""
        return np.expm1(np.nanmean(np.log1p(np.clip(preds, 0.0, None)), axis=1))

    def parts(self):
        return list(self.fitted)

    def save_state(self, path):
        for name, member in zip(self.names, self.fitted):
            target = path / "members" / name
            shutil.rmtree(target, ignore_errors=True)
            if name in self.references:  # a fixed member: its reference and revision, not a copy of its weights
                atomic_write_bytes(target / REFERENCE, json.dumps({"model": self.references[name]}).encode())
            else:
                member.save(target)
        if self.stacker_model is not None:
            save_estimator(self.stacker_model, path / "stacker.skops")
        (path / "members.json").write_text(json.dumps(self.names))
        (path / "fills.json").write_text(json.dumps(self.fills))

    def load_state(self, path):
        self.names = json.loads((path / "members.json").read_text())
        self.references = {name: json.loads((path / "members" / name / REFERENCE).read_text())["model"]
                           for name in self.names if (path / "members" / name / REFERENCE).exists()}
        self.fitted = [load_predictor(self.references.get(name, path / "members" / name)) for name in self.names]
        stacker = path / "stacker.skops"  # a blend has none
        self.stacker_model = load_estimator(stacker) if has_estimator(stacker) else None
        fills = path / "fills.json"  # ensembles saved before members could name no price have none
        self.fills = json.loads(fills.read_text()) if fills.exists() else [0.0] * len(self.names)
