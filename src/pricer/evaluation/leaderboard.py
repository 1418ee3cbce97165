"""Runs side by side with the reference system's published results (shared/docs/reference.md, test[:250])."""

import io
from pathlib import Path

from pricer.evaluation.tester import read_summary
from pricer.storage import atomic_write_bytes

# (name, average error $, RMSLE, hit rate %) as published by the reference, scored on its test[:250].
REFERENCE_RESULTS = [
    ("random guess 1-999", 340.74, 1.72, 11.6),
    ("constant = train mean", 145.51, 1.22, 16.8),
    ("linear regression on features", 139.34, 1.17, 15.6),
    ("bag of words + linear regression", 113.60, 0.99, 24.8),
    ("word2vec + linear regression", 115.47, 1.01, 27.6),
    ("word2vec + linear SVR", 112.52, 0.93, 26.4),
    ("word2vec + random forest", 97.11, 0.88, 34.0),
    ("human (course author)", 126.55, 1.00, 32.0),
    ("GPT-4o-mini zero-shot", 79.58, 0.59, 52.0),
    ("GPT-4o zero-shot", 75.92, 0.75, 58.0),
    ("Claude 3.5 Sonnet", 100.83, 0.60, 50.8),
    ("GPT-4o-mini fine-tuned on 500 items", 91.45, 0.68, 44.0),
    ("Llama 3.1 8B base, 4-bit", 395.72, 1.49, 28.0),
    ("Llama 3.1 8B QLoRA, 400K items", 46.67, 0.38, 70.8),
]


def collect(run_dirs: list[str | Path], with_reference: bool = True) -> list[dict]:
    """One row per run and per reference result, best average error first."""
    rows = []
    for run in run_dirs:
        s = read_summary(run)
        rows.append(
            {
                "name": s.get("name") or Path(run).name,
                "mae": s["mae"],
                "rmsle": s["rmsle"],
                "hit_rate": s["hit_rate"],
                "n": s["n"],
                "ci": s.get("mae_ci95"),
                "source": "pricer",
            }
        )
    if with_reference:
        rows += [
            {"name": n, "mae": e, "rmsle": r, "hit_rate": h, "n": 250, "ci": None, "source": "reference"}
            for n, e, r, h in REFERENCE_RESULTS
        ]
    return sorted(rows, key=lambda r: r["mae"])


def draw_bars(rows: list[dict], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.5))
    names = [f"{r['name']} ({r['source']})" for r in rows][::-1]
    values = [r["mae"] for r in rows][::-1]
    colours = ["tab:blue" if r["source"] == "pricer" else "lightgray" for r in rows][::-1]
    ax.barh(names, values, color=colours)
    for y, v in enumerate(values):
        ax.text(v, y, f" ${v:,.0f}", va="center", fontsize=8)
    ax.set_xlabel("average absolute error ($), lower is better", parse_math=False)
    ax.set_title("pricer runs (blue) beside the reference's published results (grey)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
