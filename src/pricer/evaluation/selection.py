"""Choosing a run's checkpoint by measurement: every revision scored on a validation slice with the Tester, the best
recorded so that `RUN@best` loads it. The course pushed every checkpoint to the hub and picked one by eye from the
loss curves."""

from datetime import datetime, timezone
from pathlib import Path

from pricer.errors import PricerError
from pricer.evaluation.tester import evaluate
from pricer.llm.checkpoints import list_checkpoints, record_best

METRICS = {"mae": min, "rmsle": min, "hit_rate": max}  # which end of each metric is best


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise PricerError(f"--metric must be one of {', '.join(METRICS)}, not {metric!r}")
    return metric


def choose(rows: list[dict], metric: str) -> dict:
    """The row with the best value of metric (lowest error or RMSLE, highest hit rate)."""
    return METRICS[check_metric(metric)](rows, key=lambda r: r[metric])


def score_checkpoints(run: str, items, out_root: Path, metric: str = "mae", load=None, progress=None) -> tuple[list, dict]:
    """Every checkpoint of run evaluated on items (each under out_root/REVISION, so an interrupted selection resumes),
    and the best by metric, recorded for `RUN@best`."""
    from pricer.predictors.registry import load_predictor

    load = load or load_predictor
    check_metric(metric)  # before any scoring
    rows = []
    for checkpoint in list_checkpoints(run):
        revision = checkpoint["revision"]
        summary = evaluate(load(f"{run}@{revision}"), items, out_root / revision[:40], name=revision[:12])
        rows.append({**checkpoint, **{k: summary[k] for k in ("mae", "rmsle", "hit_rate", "mae_ci95", "no_price")}})
        if progress:
            progress(rows[-1])
    best = choose(rows, metric)
    record_best(run, {"revision": best["revision"], "metric": metric, metric: best[metric], "n": len(items),
                      "chosen": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return rows, best
