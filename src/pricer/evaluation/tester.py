"""The Tester, improved: the reference's error, RMSLE and hit rate, plus a median, a bootstrap interval for the
average error and a per-category breakdown; results are appended item by item so an interrupted run resumes.

Out directory:
    items.jsonl   one line per scored item (truth, guess, error, ...), appended batch by batch
    summary.json  the metrics
    chart.png     truth against guess, titled like the reference
    chart.html    the same, interactive (plotly, as course v2): hover shows title, guess, truth and error; works offline
"""

import io
import json
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from pricer.errors import PricerError
from pricer.data.items import Item
from pricer.storage import atomic_write_bytes, atomic_write_json

GREEN, ORANGE, RED = "green", "orange", "red"
RICH_COLOUR = {GREEN: "green", ORANGE: "dark_orange", RED: "red"}


def colour_for(error: float, truth: float) -> str:
    """The reference's rule: green within $40 or 20%, orange within $80 or 40%, red beyond."""
    if error < 40 or error / truth < 0.2:
        return GREEN
    if error < 80 or error / truth < 0.4:
        return ORANGE
    return RED


def score_item(index: int, item: Item, guess: float | None, extra: dict | None = None) -> dict:
    """One line of items.jsonl. A guess of None (the model gave no number) is scored as $0 and flagged."""
    no_price = guess is None or not math.isfinite(guess)
    value = 0.0 if no_price else max(float(guess), 0.0)
    error = abs(value - item.price)
    row = {
        "i": index,
        "title": item.title[:80],
        "category": item.category,
        "truth": item.price,
        "guess": round(value, 4),
        "error": round(error, 4),
        "sle": (math.log1p(item.price) - math.log1p(value)) ** 2,
        "colour": colour_for(error, item.price),
    }
    if no_price:
        row["no_price"] = True
    return {**row, **(extra or {})}


def _metrics(rows: list[dict]) -> dict:
    errors = np.array([r["error"] for r in rows])
    return {
        "n": len(rows),
        "mae": float(errors.mean()),
        "rmsle": float(math.sqrt(np.mean([r["sle"] for r in rows]))),
        "hit_rate": 100.0 * sum(r["colour"] == GREEN for r in rows) / len(rows),
    }


def bootstrap_interval(values: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarize(rows: list[dict], name: str = "") -> dict:
    if not rows:
        raise PricerError("nothing to summarize: no item was scored")
    summary = {"name": name, **_metrics(rows)}
    errors = np.array([r["error"] for r in rows])
    summary["median_error"] = float(np.median(errors))
    summary["mae_ci95"] = list(bootstrap_interval(errors))
    summary["colours"] = {c: sum(r["colour"] == c for r in rows) for c in (GREEN, ORANGE, RED)}
    summary["no_price"] = sum(bool(r.get("no_price")) for r in rows)
    summary["by_category"] = {cat: _metrics(rs) for cat, rs in by_category(rows).items()}
    summary.update(interval_summary(rows))
    return summary


def by_category(rows: list[dict]) -> dict[str, list[dict]]:
    """The rows of each category, categories in order; rows without one under "unknown"."""
    groups = defaultdict(list)
    for r in rows:
        groups[r.get("category") or "unknown"].append(r)
    return dict(sorted(groups.items()))


PRICE_BANDS = (("under $50", 0, 50), ("$50-200", 50, 200), ("$200-500", 200, 500), ("over $500", 500, math.inf))


def interval_summary(rows: list[dict]) -> dict:
    """For a model that gives an 80% interval (low, high on its rows): the share of items whose true price lies in
    it (interval_coverage, 0-1), the median of high/low (interval_width), and the coverage per price band and per
    category. Nothing for a model without intervals."""
    judged = [r for r in rows if r.get("low") is not None and r.get("high") is not None]
    if not judged:
        return {}

    def coverage(subset):
        return {"n": len(subset), "coverage": sum(r["low"] <= r["truth"] <= r["high"] for r in subset) / len(subset)}

    bands = {name: [r for r in judged if low <= r["truth"] < high] for name, low, high in PRICE_BANDS}
    return {
        "interval_coverage": coverage(judged)["coverage"],
        "interval_width": float(np.median([r["high"] / r["low"] for r in judged if r["low"] > 0] or [math.inf])),
        "interval_items": len(judged),
        "interval_coverage_by_band": {name: coverage(rs) for name, rs in bands.items() if rs},
        "interval_coverage_by_category": {cat: coverage(rs) for cat, rs in by_category(judged).items()},
    }


def chart_title(name: str, summary: dict) -> str:
    return f"{name} Error=${summary['mae']:,.2f} RMSLE={summary['rmsle']:,.2f} Hits={summary['hit_rate']:.1f}%"


def draw_chart(rows: list[dict], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truths = [r["truth"] for r in rows]
    guesses = [r["guess"] for r in rows]
    top = max(max(truths), max(guesses)) * 1.02  # the axes show the prices; an interval reaching past them is cut
    fig, ax = plt.subplots(figsize=(12, 8))
    ax.plot([0, top], [0, top], color="deepskyblue", lw=2, alpha=0.6)
    ranged = [r for r in rows if r.get("low") is not None and r.get("high") is not None]
    if ranged:  # each estimate's 80% interval, a faint vertical line behind its dot
        ax.vlines([r["truth"] for r in ranged], [r["low"] for r in ranged], [r["high"] for r in ranged],
                  color="grey", lw=0.6, alpha=0.35, label="80% interval")
    ax.scatter(truths, guesses, s=3, c=[{GREEN: "green", ORANGE: "orange", RED: "red"}[r["colour"]] for r in rows])
    ax.set_xlabel("Ground Truth")
    ax.set_ylabel("Model Estimate")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_title(title, parse_math=False)  # dollar signs, not TeX
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def draw_interactive_chart(rows: list[dict], title: str, path: Path) -> None:
    """chart.png's scatter as one self-contained HTML file (plotly.js inside it, so it opens without a network)."""
    import plotly.graph_objects as go

    colours = {GREEN: "green", ORANGE: "orange", RED: "red"}
    top = max(max(r["truth"] for r in rows), max(r["guess"] for r in rows)) * 1.02
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", line={"color": "deepskyblue"}, hoverinfo="skip",
                                name="guess = truth"))
    for colour in (GREEN, ORANGE, RED):
        mine = [r for r in rows if r["colour"] == colour]
        ranged = all(r.get("low") is not None and r.get("high") is not None for r in mine)
        figure.add_trace(go.Scatter(
            x=[r["truth"] for r in mine], y=[r["guess"] for r in mine], mode="markers", name=colour,
            marker={"color": colours[colour], "size": 5},
            error_y={"type": "data", "symmetric": False, "array": [r["high"] - r["guess"] for r in mine],
                     "arrayminus": [r["guess"] - r["low"] for r in mine], "thickness": 0.6, "width": 0,
                     "color": "rgba(128,128,128,0.35)"} if ranged and mine else None,
            customdata=[[r["title"][:80], r["error"]] for r in mine],
            hovertemplate="%{customdata[0]}<br>guess $%{y:,.2f}, truth $%{x:,.2f}<br>error $%{customdata[1]:,.2f}"
                          "<extra></extra>"))
    figure.update_layout(title=title, xaxis_title="Ground Truth", yaxis_title="Model Estimate", width=1000, height=700,
                         xaxis_range=[0, top], yaxis_range=[0, top], template="plotly_white")
    atomic_write_bytes(path, figure.to_html(include_plotlyjs=True, full_html=True).encode("utf-8"))


def _read_done(items_file: Path, items: list[Item]) -> list[dict]:
    """Rows already scored by an earlier run; a torn last line is dropped and rewritten."""
    if not items_file.exists():
        return []
    rows = []
    data = items_file.read_bytes()
    good_end = data.rfind(b"\n") + 1
    if good_end < len(data):
        with open(items_file, "r+b") as f:
            f.truncate(good_end)
    for line in data[:good_end].decode("utf-8").splitlines():
        row = json.loads(line)
        i = row["i"]
        if i != len(rows) or i >= len(items) or abs(row["truth"] - items[i].price) > 1e-6:
            raise PricerError(f"{items_file} holds another evaluation (item {i} differs); use a new --out")
        rows.append(row)
    return rows


def evaluate(
    predictor,
    items: list[Item],
    out_dir: str | Path,
    name: str = "model",
    batch_size: int = 32,
    on_row=None,
) -> dict:
    """Score predictor on items, appending to out_dir/items.jsonl; resumes from what is already there."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items_file = out / "items.jsonl"
    rows = _read_done(items_file, items)
    for row in rows:
        if on_row:
            on_row(row, resumed=True)
    with open(items_file, "a", encoding="utf-8") as f:
        for start in range(len(rows), len(items), batch_size):
            batch = items[start : start + batch_size]
            guesses, extras = _predict_batch(predictor, [it.text for it in batch])
            for offset, (item, guess, extra) in enumerate(zip(batch, guesses, extras)):
                row = score_item(start + offset, item, guess, extra)
                f.write(json.dumps(row) + "\n")
                rows.append(row)
                if on_row:
                    on_row(row, resumed=False)
            f.flush()
            os.fsync(f.fileno())
    summary = summarize(rows, name)
    if getattr(predictor, "usage", None):
        summary["usage"] = predictor.usage  # tokens and cost of a paid endpoint, this run only (cached answers are free)
    atomic_write_json(out / "summary.json", summary)
    draw_chart(rows, chart_title(name, summary), out / "chart.png")
    draw_interactive_chart(rows, chart_title(name, summary), out / "chart.html")
    return summary


def _predict_batch(predictor, texts: list[str]) -> tuple[list, list[dict]]:
    details = predictor.estimate(texts)
    return [d.get("price") for d in details], [{k: v for k, v in d.items() if k != "price"} for d in details]


def read_summary(run_dir: str | Path) -> dict:
    file = Path(run_dir) / "summary.json"
    if not file.exists():
        raise PricerError(f"{run_dir}: no summary.json (run `pricer eval --out {run_dir}` first)")
    return json.loads(file.read_text())
