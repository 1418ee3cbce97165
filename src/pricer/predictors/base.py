"""The surface every predictor has: fit, predict, save, load; a saved predictor is a directory with pricer.json.

Every predictor can also carry a calibration (intervals.py): then `estimate` gives each price its 80% interval.
"""

import inspect
import json
import math
import re
import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

import numpy as np

from pricer import __version__
from pricer.errors import PricerError
from pricer.data.items import Item
from pricer.predictors.intervals import FILE as INTERVALS, Calibration
from pricer.storage import atomic_write_json

FORMAT_VERSION = 1


MANIFEST = "pricer.json"


class Predictor:
    kind: ClassVar[str] = ""
    # `pricer fit` calibrates the interval on this many copies fitted on folds of the items (intervals.out_of_fold); 0
    # where that costs too much (a language model): such a model is calibrated on a held-out file instead.
    calibration_folds: ClassVar[int] = 5
    calibration: Calibration | None = None

    def params(self) -> dict:
        """Constructor arguments, saved in the manifest and passed back on load: as scikit-learn's get_params, each
        argument of __init__ read from the attribute of the same name."""
        return constructor_params(self, type(self))

    def fit(self, items: list[Item]) -> "Predictor":
        return self

    def sentence_embedders(self) -> set[str]:
        """The sentence embedders fitting embeds the training texts with (their vectors are cached, so a caller can
        embed them first with a progress bar)."""
        embedder = getattr(self, "embedder", None)
        return {embedder} if embedder else set()

    def predict(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def predict_details(self, texts: list[str]) -> list[dict]:
        """Per text a dict with `price` (None: no number), and `low`/`high` where the predictor gives an interval."""
        return [{"price": float(price)} for price in self.predict(texts)]

    def estimate(self, texts: list[str]) -> list[dict]:
        """predict_details with the calibrated 80% interval (`low`, `high`) where this predictor has a calibration; the
        model's own interval, if it gives one, where it has none."""
        details = self.predict_details(texts)
        if self.calibration is None:
            return details
        prices = [math.nan if d.get("price") is None else d["price"] for d in details]
        for detail, low, high in zip(details, *self.calibration.interval(prices)):
            detail.pop("low", None), detail.pop("high", None)
            if math.isfinite(low) and math.isfinite(high):
                detail["low"], detail["high"] = float(low), float(high)
        return details

    def parts(self) -> list["Predictor"]:
        """The predictors this one is made of (an ensemble's members, a recipe's trained run): none by default."""
        return []

    def save_state(self, path: Path) -> None:
        """Write whatever fit() learned into the directory (nothing by default)."""

    def load_state(self, path: Path) -> None:
        """Read back what save_state wrote."""

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.save_state(path)
        (path / INTERVALS).unlink(missing_ok=True)
        if self.calibration is not None:
            self.calibration.save(path)
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
        params = manifest.get("params", {})
        accepted = inspect.signature(cls.__init__).parameters.values()
        if not any(a.kind == a.VAR_KEYWORD for a in accepted):
            if unknown := sorted(set(params) - {a.name for a in accepted}):
                raise PricerError(f"{path}: saved with setting(s) this version of pricer does not know: "
                                  f"{', '.join(unknown)}; fit it again, or load it with the version that saved it")
        predictor = cls(**params)
        predictor.load_state(Path(path))
        predictor.calibration = Calibration.load(Path(path))
        return predictor


def constructor_defaults(cls: type) -> dict:
    """The arguments of cls.__init__ (not *args or **kwargs) and their defaults."""
    arguments = inspect.signature(cls.__init__).parameters.values()
    return {a.name: a.default for a in arguments if a.name != "self" and a.kind not in (a.VAR_POSITIONAL, a.VAR_KEYWORD)}


def constructor_params(predictor: "Predictor", cls: type) -> dict:
    """The arguments of cls.__init__, each read from predictor's attribute of that name."""
    return {name: getattr(predictor, name) for name in constructor_defaults(cls)}


def parse_settings(pairs: list[str], defaults: dict, what: str) -> dict:
    """`KEY=VALUE` pairs as settings of `what`, checked against `defaults` (each known key and its default value). A
    value is read as TOML (3, 2e-5, true, ["q_proj"]) and otherwise kept as text; a key whose default is a number or a
    flag takes only a number or a flag (an integer for an integer), a key whose default is text keeps the text given."""
    settings = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PricerError(f"{pair!r}: give a {what} as KEY=VALUE")
        if key not in defaults:
            raise PricerError(f"{key}: not a {what}; known: {', '.join(sorted(defaults))}")
        try:
            value = tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError:
            value = text
        default, number = defaults[key], isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, str) and not isinstance(value, str):
            value = text  # a text setting keeps what was given: revision=2 is "2"
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise PricerError(f"{pair}: {key} takes true or false")
        elif isinstance(default, int) and not isinstance(default, bool) and not (number and isinstance(value, int)):
            raise PricerError(f"{pair}: {key} takes an integer")
        elif isinstance(default, float) and not number:
            raise PricerError(f"{pair}: {key} takes a number")
        settings[key] = value
    return settings


NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def first_number(text: str) -> float | None:
    """The first number in a reply, `$1,299.99` -> 1299.99; None where there is none."""
    match = NUMBER.search(text)
    return float(match.group().replace(",", "")) if match else None


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
    if not isinstance(manifest.get("params", {}), dict):
        raise PricerError(f"{file}: its params are not a table of settings")
    return manifest
