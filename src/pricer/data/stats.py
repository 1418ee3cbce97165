"""Statistics of a set of items, and the charts of its prices and categories.
"""

import io
from pathlib import Path

from pricer.data.items import Item


def describe(items: list[Item]) -> dict:
    """Counts and price statistics of a set of items, overall and per category."""
    import numpy as np

    prices = np.array([it.price for it in items])
    categories: dict[str, int] = {}
    for it in items:
        categories[it.category or "unknown"] = categories.get(it.category or "unknown", 0) + 1
    return {
        "n": len(items),
        "price_mean": float(prices.mean()),
        "price_median": float(np.median(prices)),
        "price_percentiles": {str(p): float(np.percentile(prices, p)) for p in (5, 25, 75, 95)},
        "price_min": float(prices.min()),
        "price_max": float(prices.max()),
        "text_chars_mean": float(np.mean([len(it.text) for it in items])),
        "categories": dict(sorted(categories.items(), key=lambda kv: -kv[1])),
    }


def draw_stats(items: list[Item], stats: dict, out_dir: str | Path, name: str) -> list[Path]:
    """prices.png (histogram) and categories.png (bar chart) in out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pricer.storage import atomic_write_bytes

    out = Path(out_dir)
    charts = []
    for file, draw in (("prices.png", _draw_prices), ("categories.png", _draw_categories)):
        fig, ax = plt.subplots(figsize=(12, 5))
        draw(ax, items, stats, name)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        plt.close(fig)
        atomic_write_bytes(out / file, buffer.getvalue())
        charts.append(out / file)
    return charts


def _draw_prices(ax, items, stats, name):
    ax.hist([it.price for it in items], bins=100, color="darkblue")
    ax.set_title(f"{name}: {stats['n']:,} items, mean ${stats['price_mean']:,.2f}, median ${stats['price_median']:,.2f}",
                 parse_math=False)  # dollar signs, not TeX
    ax.set_xlabel("price ($)", parse_math=False)
    ax.set_ylabel("items")


def _draw_categories(ax, items, stats, name):
    cats = stats["categories"]
    ax.bar(list(cats), list(cats.values()), color="goldenrod")
    ax.set_title(f"{name}: items per category")
    ax.tick_params(axis="x", rotation=30)
