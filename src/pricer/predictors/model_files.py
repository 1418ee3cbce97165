"""The parts of a saved model in formats that hold data only, so loading a folder someone shared never runs its code.

scikit-learn estimators go through skops.io, which rebuilds only the types it trusts (scikit-learn's and numpy's own)
and those named in ESTIMATOR_TYPES; tensors go to safetensors. Folders saved by older versions of pricer hold pickles
(`*.joblib`, `*.pt`), which can run any code when loaded: they load only when the user says they trust the folder
(`--trust-model`, or PRICER_TRUST_MODELS=1), for a folder they made themselves.
"""

import contextlib
import contextvars
import json
import os
from pathlib import Path

from pricer.errors import PricerError
from pricer.storage import atomic_write_bytes, atomic_write_json

# Types beyond skops' defaults that pricer's own estimators hold: a function of pricer's and scikit-learn's tree
# structures. Anything else in a file is refused.
ESTIMATOR_TYPES = [
    "pricer.predictors.classical.text_features",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]

TRUST_ENV = "PRICER_TRUST_MODELS"

_trusted = contextvars.ContextVar("pricer_trusted_models", default=False)


@contextlib.contextmanager
def trusting_models(trust: bool):
    """Within the block, pickles of older model folders load (when trust is true)."""
    token = _trusted.set(trust or _trusted.get())
    try:
        yield
    finally:
        _trusted.reset(token)


def models_trusted() -> bool:
    return _trusted.get() or os.environ.get(TRUST_ENV, "") == "1"


def _refuse_pickle(path: Path):
    if not models_trusted():
        raise PricerError(f"{path} is a pickle, which can run code when loaded; if you made this model yourself, load "
                          f"it with --trust-model (or {TRUST_ENV}=1), or fit it again to save it in safe formats")


def save_estimator(estimator, path: Path) -> None:
    """A scikit-learn estimator as `path` (.skops), a text vectorizer's vocabulary beside it as JSON
    (`NAME.vocabulary.json`): skops checks every entry of a dict as an object of its own, so a 165,000-term
    vocabulary took 4 s to load from the .skops file and takes 0.03 s from JSON."""
    import skops.io

    steps = _steps(estimator)
    vocabularies = [getattr(step, "vocabulary_", None) for step in steps]
    vocabularies = [{term: int(index) for term, index in v.items()} if isinstance(v, dict) else None
                    for v in vocabularies]
    if any(v is not None for v in vocabularies):
        atomic_write_json(_vocabulary_file(path), {"vocabularies": vocabularies})
    else:
        _vocabulary_file(path).unlink(missing_ok=True)
    try:
        for step, vocabulary in zip(steps, vocabularies):
            if vocabulary is not None:
                step.vocabulary_ = {}
        data = skops.io.dumps(estimator)
    finally:
        for step, vocabulary in zip(steps, vocabularies):
            if vocabulary is not None:
                step.vocabulary_ = vocabulary
    atomic_write_bytes(path, data)


def _steps(estimator) -> list:
    """The estimator and, for a pipeline, its steps: where a text vectorizer can be."""
    return [estimator, *(step for _, step in getattr(estimator, "steps", []))]


def _vocabulary_file(path: Path) -> Path:
    return path.with_name(f"{path.stem}.vocabulary.json")


def _restore_vocabularies(estimator, path: Path) -> None:
    """The vocabularies save_estimator wrote beside `path` put back into the estimator's vectorizers; a file that
    does not match the estimator, or a vectorizer left without its file, is refused."""
    file, steps = _vocabulary_file(path), _steps(estimator)
    if not file.exists():
        if any(getattr(step, "vocabulary_", None) == {} for step in steps):
            raise PricerError(f"{file}: missing; the model folder is incomplete")
        return
    try:
        vocabularies = json.loads(file.read_text())["vocabularies"]
        if not isinstance(vocabularies, list) or len(vocabularies) != len(steps):
            raise ValueError("not one entry per step")
        for step, vocabulary in zip(steps, vocabularies):
            if vocabulary is None:
                continue
            if getattr(step, "vocabulary_", None) != {} or not all(isinstance(term, str) for term in vocabulary):
                raise ValueError("not a vocabulary of this estimator")
            indices = list(vocabulary.values())
            if not all(type(i) is int for i in indices) or sorted(indices) != list(range(len(indices))):
                raise ValueError("its indices are not 0 to N-1")
            step.vocabulary_ = vocabulary
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise PricerError(f"{file} is not the vocabulary of {path.name} ({type(e).__name__}: {e})") from None


def load_estimator(path: Path):
    """What save_estimator wrote; an older folder's pickle of the same name (.joblib) only when trusted."""
    path = Path(path)
    if path.exists():
        import skops.io

        data = path.read_bytes()
        try:
            unknown = sorted(set(skops.io.get_untrusted_types(data=data)) - set(ESTIMATOR_TYPES))
            if unknown:
                raise PricerError(f"{path} holds types pricer does not load: {', '.join(unknown)}")
            estimator = skops.io.loads(data, trusted=ESTIMATOR_TYPES)
        except PricerError:
            raise
        except Exception as e:
            raise PricerError(f"{path} is not a readable estimator file ({type(e).__name__}: {e})") from None
        _restore_vocabularies(estimator, path)
        return estimator
    legacy = path.with_suffix(".joblib")
    if legacy.exists():
        _refuse_pickle(legacy)
        import joblib

        return joblib.load(legacy)
    raise PricerError(f"{path}: missing; the model folder is incomplete")


def has_estimator(path: Path) -> bool:
    return Path(path).exists() or Path(path).with_suffix(".joblib").exists()


def save_tensors(tensors: dict, path: Path) -> None:
    """Named tensors as `path` (.safetensors)."""
    from safetensors.torch import save

    atomic_write_bytes(path, save({name: t.detach().cpu().contiguous() for name, t in tensors.items()}))


def load_tensors(path: Path, legacy: str) -> dict:
    """What save_tensors wrote; an older folder's torch pickle (`legacy`, beside it) only when trusted, returned
    as it was saved."""
    path = Path(path)
    if path.exists():
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            return load(path.read_bytes())
        except SafetensorError as e:
            raise PricerError(f"{path} is not a readable safetensors file ({e})") from None
    old = path.parent / legacy
    if old.exists():
        _refuse_pickle(old)
        import torch

        return torch.load(old, map_location="cpu", weights_only=True)
    raise PricerError(f"{path}: missing; the model folder is incomplete")
