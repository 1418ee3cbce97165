"""Stage 2, predictors: one surface (fit, predict, save, load) for every model, from a random guess to an ensemble."""

from pricer.predictors.base import MANIFEST, Predictor
from pricer.predictors.registry import load_predictor, make_predictor

__all__ = ["MANIFEST", "Predictor", "load_predictor", "make_predictor"]
