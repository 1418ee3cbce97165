"""The parts of a saved model in formats that hold data only, so loading a folder someone shared never runs its code.

scikit-learn estimators go through skops.io, which rebuilds only the types it trusts (scikit-learn's and numpy's own)
and those named in ESTIMATOR_TYPES; tensors go to safetensors. Folders saved by older versions of pricer hold pickles
(`*.joblib`, `*.pt`), which can run any code when loaded: they load only when the user says they trust the folder
(`--trust-model`, or PRICER_TRUST_MODELS=1), for a folder they made themselves.
"""

import contextlib
import contextvars
import os
from pathlib import Path

from pricer.errors import PricerError
from pricer.storage import atomic_write_bytes

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
    """A scikit-learn estimator as `path` (.skops)."""
    import skops.io

    _plain_vocabularies(estimator)
    atomic_write_bytes(path, skops.io.dumps(estimator))


def _plain_vocabularies(estimator) -> None:
    """A text vectorizer's vocabulary with Python ints for numpy ones. skops writes every numpy scalar as a file of its
    own in its zip and lists the zip's files for each new one: 20,000 terms took 18 s, and the time grows with the
    square of the count (the CPU stack's sparse-mlp has 140,000). Python ints are written inline. The vectorizer works
    the same with either."""
    for step in [estimator, *(step for _, step in getattr(estimator, "steps", []))]:
        vocabulary = getattr(step, "vocabulary_", None)
        if isinstance(vocabulary, dict):
            step.vocabulary_ = {term: int(index) for term, index in vocabulary.items()}


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
            return skops.io.loads(data, trusted=ESTIMATOR_TYPES)
        except PricerError:
            raise
        except Exception as e:
            raise PricerError(f"{path} is not a readable estimator file ({type(e).__name__}: {e})") from None
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
