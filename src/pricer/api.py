"""pricer from Python, for notebooks: read items, fit or load a predictor, score it like the Tester.

    import pricer
    train = pricer.read_items("../shared/data/amazon/train.jsonl", "../shared/data/amazon/dev.jsonl[:1250]")
    model = pricer.fit("tfidf", train)
    summary = pricer.evaluate(model, "../shared/data/amazon/dev.jsonl[1250:]")
    print(summary["mae"], summary["rmsle"], summary["hit_rate"])   # the tfidf row of docs/results.md

Each function is what the `pricer` command runs (the same readers, predictors and Tester), with Python values in and out.
"""

import tempfile
from pathlib import Path

from pricer.data.items import Item, read_items_with_report
from pricer.predictors.base import Predictor


def read_items(*sources: str | Path) -> list[Item]:
    """Items from JSONL, CSV or Parquet files, each optionally sliced (`dev.jsonl[1250:]`), one list in order."""
    return [item for source in sources for item in read_items_with_report(source)[0]]


def fit(kind: str, items: list[Item] | str | Path, calibrate: bool = True, **params) -> Predictor:
    """A fitted predictor of a kind `pricer fit` offers (tfidf, embed-knn, ensemble with members=[...], ...), its 80%
    interval calibrated on out-of-fold estimates as `pricer fit` does (calibrate=False: no interval)."""
    from pricer.predictors.intervals import calibrate_when_fitted
    from pricer.predictors.registry import make_predictor

    items = read_items(items) if isinstance(items, (str, Path)) else items
    predictor = make_predictor(kind, **params).fit(items)
    if calibrate:
        calibrate_when_fitted(predictor, items)
    else:
        predictor.calibration = None
    return predictor


def load_predictor(model: str | Path, trust_model: bool = False) -> Predictor:
    """A saved model directory (`RUN@checkpoint-N` for a checkpoint), a built-in name, or `frontier[:MODEL]`.
    trust_model: also load the pickles of folders saved by older versions (they can run code)."""
    from pricer.predictors.registry import load_predictor as load

    return load(model, trust_model=trust_model)


def evaluate(model: Predictor | str | Path, data: list[Item] | str | Path, size: int = 0, out: str | Path | None = None,
             name: str | None = None, batch_size: int = 32) -> dict:
    """The Tester's summary (mae, rmsle, hit_rate, mae_ci95, by_category, ...) of a model on items or a file.

    `size` scores the first items only (0: all). With `out`, summary.json, items.jsonl and chart.png are written there
    and an interrupted evaluation resumes; without it they go to a temporary directory that is removed.
    """
    from pricer.evaluation.tester import evaluate as run

    predictor = load_predictor(model) if isinstance(model, (str, Path)) else model
    items = read_items(data) if isinstance(data, (str, Path)) else data
    items = items[:size] if size else items
    name = name or (Path(str(model).rstrip("/")).name if isinstance(model, (str, Path)) else predictor.kind)
    if out is not None:
        return run(predictor, items, out, name=name, batch_size=batch_size)
    with tempfile.TemporaryDirectory(prefix="pricer-eval-") as tmp:
        return run(predictor, items, tmp, name=name, batch_size=batch_size)
