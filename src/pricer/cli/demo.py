"""`pricer demo`: the main job behind `make demo`."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from pricer.cli.common import app, console
from pricer.cli.evaluation import show_leaderboard


@app.command()
def demo(
    data_dir: Annotated[Optional[Path], typer.Option(help="The shared data folder (holds amazon/train.jsonl, dev.jsonl).")] = None,
    out: Annotated[Path, typer.Option(help="Where models, evaluations and charts go.")] = Path("runs/demo"),
    embeddings: Annotated[bool, typer.Option(help="Include the MiniLM embedding predictors (slowest part).")] = True,
):
    """Fit every baseline, evaluate each, and print the leaderboard."""
    from pricer.demo import run_demo

    rows = run_demo(data_dir, out, with_embeddings=embeddings, console=console)
    show_leaderboard(rows)
    console.print(f"charts: {out}/leaderboard.png and {out}/evals/*/chart.png")
