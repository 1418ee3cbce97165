"""Calibrated 80% intervals for any predictor: split-conformal on log-price residuals, adapted to the price level.

A calibration is learned from items the model did not learn from: out-of-fold predictions made while fitting, or a
held-out file (`pricer calibrate`). Their residuals log(true price / estimate) are grouped by the estimate's price level
into up to five bins of equal count (Mondrian conformal prediction), because a model errs differently on a $15 cable
than on a $900 television, and each bin keeps the order statistics that make an 80% interval (the 10% and 90% ones,
with the finite-sample correction) and its residuals' percentiles. An estimate's interval is its bin's residual
quantiles applied to it; the share of the bin's residuals that put the true price above an offer is the model's chance
that the offer is below the true price.
"""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pricer.errors import PricerError
from pricer.storage import atomic_write_json

LEVEL = 0.8  # the interval's coverage
FILE = "intervals.json"
MIN_PER_BIN = 100  # fewer calibration items per bin than this and the bins merge
MAX_BINS = 5
FOLDS = 5


@dataclass
class Calibration:
    edges: list[float]  # log-estimate boundaries between the bins (one fewer than the bins)
    low: list[float]  # per bin: the residual whose log-ratio makes the interval's lower end
    high: list[float]
    percentiles: list[list[float]]  # per bin: residuals at 0%, 1%, ..., 100%
    items: int
    source: str  # where the residuals came from: "5-fold out-of-fold", or a file

    @classmethod
    def fit(cls, estimates, truths, source: str) -> "Calibration":
        estimates, truths = np.asarray(estimates, dtype=float), np.asarray(truths, dtype=float)
        usable = np.isfinite(estimates) & (estimates > 0) & np.isfinite(truths) & (truths > 0)
        if usable.sum() < 20:
            raise PricerError(f"calibration needs at least 20 items with a price and an estimate, not {usable.sum()}")
        log_estimates, residuals = np.log(estimates[usable]), np.log(truths[usable] / estimates[usable])
        bins = max(1, min(MAX_BINS, len(residuals) // MIN_PER_BIN))
        edges = np.quantile(log_estimates, np.linspace(0, 1, bins + 1)[1:-1])
        which = np.searchsorted(edges, log_estimates, side="right")
        low, high, percentiles = [], [], []
        for b in range(bins):
            r = np.sort(residuals[which == b])
            n, tail = len(r), (1 - LEVEL) / 2
            # split-conformal order statistics: each end misses at most `tail` of new items, as n grows exactly `tail`
            low.append(float(r[max(math.floor((n + 1) * tail) - 1, 0)]))
            high.append(float(r[min(math.ceil((n + 1) * (1 - tail)) - 1, n - 1)]))
            percentiles.append([round(float(v), 5) for v in np.quantile(r, np.linspace(0, 1, 101))])
        return cls([float(e) for e in edges], low, high, percentiles, int(usable.sum()), source)

    def _bins(self, estimates: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.searchsorted(self.edges, np.log(estimates), side="right")

    def interval(self, estimates) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) for each estimate: NaN where the estimate is not a positive number."""
        estimates = np.asarray(estimates, dtype=float)
        which = self._bins(estimates)
        good = np.isfinite(estimates) & (estimates > 0)
        low = np.where(good, estimates * np.exp(np.take(self.low, which.clip(0, len(self.low) - 1))), np.nan)
        high = np.where(good, estimates * np.exp(np.take(self.high, which.clip(0, len(self.high) - 1))), np.nan)
        return low, high

    def chance_above(self, estimate: float, offer: float) -> float:
        """The calibrated chance that the true price is above the offer (0-1): how sure a deal is."""
        if not (estimate > 0 and offer > 0):
            return math.nan
        b = int(self._bins(np.array([estimate]))[0])
        levels = np.linspace(0, 1, 101)
        return float(1 - np.interp(math.log(offer / estimate), self.percentiles[b], levels, left=0.0, right=1.0))

    def describe(self) -> str:
        return f"80% interval calibrated on {self.items:,} items ({self.source})"

    def save(self, folder: Path) -> None:
        atomic_write_json(Path(folder) / FILE, asdict(self))

    @classmethod
    def load(cls, folder: Path) -> "Calibration | None":
        file = Path(folder) / FILE
        if not file.exists():
            return None
        try:
            return cls(**json.loads(file.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
            raise PricerError(f"{file}: not a calibration pricer wrote") from None


def out_of_fold(predictor, items, folds: int = FOLDS, seed: int = 42) -> Calibration:
    """A calibration from predictions of copies of the (unfitted) predictor, each fitted on the folds an item is not in."""
    fold_of = np.random.default_rng(seed).permutation(len(items)) % folds
    estimates = np.full(len(items), np.nan)
    for k in range(folds):
        train = [it for it, f in zip(items, fold_of) if f != k]
        copy = type(predictor)(**predictor.params()).fit(train)
        estimates[fold_of == k] = copy.predict([it.text for it, f in zip(items, fold_of) if f == k])
    return Calibration.fit(estimates, [it.price for it in items], f"{folds}-fold out-of-fold")


def calibrate_when_fitted(predictor, items) -> None:
    """What fitting does for the interval (`pricer fit`, `pricer.fit`): calibrate it out of fold, unless the predictor
    has a calibration already (an ensemble's) or costs too much to refit (calibration_folds = 0)."""
    if predictor.calibration is None and predictor.calibration_folds:
        predictor.calibration = out_of_fold(predictor, items, predictor.calibration_folds)


def held_out(predictor, items, name: str) -> Calibration:
    """A calibration from the fitted predictor's estimates on items it did not learn from."""
    return Calibration.fit(predictor.predict([it.text for it in items]), [it.price for it in items], name)
