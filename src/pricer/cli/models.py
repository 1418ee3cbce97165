"""`pricer fit`, `predict`, `train`, `checkpoints` and `select`: models made, used and chosen."""

import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from pricer.cli.common import (
    CalibrateOpt, DecodeOpt, OntoBaseOpt, PriceCol, QuantOpt, TextCol, TrustOpt, _read, app, check_out_folder, console, dollars,
    embedding_progress, err,
)
from pricer.errors import PricerError
from pricer.predictors.registry import load_predictor


@app.command()
def fit(
    kind: Annotated[str, typer.Argument(help="random, constant-mean, constant-median, features, bow, tfidf, embed-rf, embed-knn, dnn, dnn-small, sparse-mlp, sparse-mlp-embed, embed-knn-mpnet, sparse-mlp-mpnet, encoder-minilm, encoder-mpnet, ensemble, or a recipe file (.toml: training, or [ensemble]); a name can take settings of its kind in the same argument: 'encoder-minilm epochs=1'")],
    train: Annotated[list[str], typer.Option(metavar="FILE", help="Training file(s), optionally sliced: dev.jsonl[:1250].")],
    out: Annotated[Path, typer.Option(help="Directory to save the fitted predictor in.")],
    members: Annotated[Optional[list[str]], typer.Option(metavar="MEMBER", help="Ensemble members: recipe names (with settings of their kind after one: 'encoder-minilm epochs=1'), model directories, language-model recipe files (with settings after one: 'x.toml seed=7'), or fixed:MODEL for a model used as it is (its guesses on the training items stand in for out-of-fold ones: give items it did not learn from).")] = None,
    folds: Annotated[int, typer.Option(help="Ensemble: folds for the out-of-fold predictions (0: no stacker, the members' geometric mean).")] = 5,
    stacker: Annotated[str, typer.Option(help="Ensemble: linear (weights on the members' log prices) or boosted (trees on them).")] = "linear",
    calibrate: Annotated[str, typer.Option(metavar="auto|none|FILE", help="The 80% interval: auto calibrates it on out-of-fold estimates of the training items (5 more fits; a language model or dnn gets none), FILE on items the model does not learn from, none leaves it out.")] = "auto",
    text_col: TextCol = "text",
    price_col: PriceCol = "price",
):
    """Fit a predictor on training items and save it, with its calibrated 80% interval."""
    from pricer.predictors.registry import make_predictor

    check_out_folder(out)
    items = [it for spec in train for it in _read(spec, text_col, price_col)]
    if kind != "ensemble" and members:
        raise PricerError("--members goes with `pricer fit ensemble`")
    if kind == "ensemble":
        predictor = make_predictor(kind, members=members or [], folds=folds, stacker=stacker)
    else:
        predictor = make_predictor(kind)
    embed_first(predictor, items)
    if predictor.kind == "ensemble":
        predictor.fit(items, progress=console.print)
    else:
        with console.status(f"fitting {kind} on {len(items):,} items"):
            if "progress" in inspect.signature(predictor.fit).parameters:  # a network's epochs, say
                predictor.fit(items, progress=console.print)
            else:
                predictor.fit(items)
    set_calibration(predictor, calibrate, items, text_col, price_col)
    predictor.save(out)
    console.print(f"saved {kind} fitted on {len(items):,} items to {out}")
    console.print(predictor.calibration.describe() if predictor.calibration else
                  f"no interval: calibrate it on held-out items with `pricer calibrate --model {out} --data FILE`, or "
                  f"on an evaluation of the same recipe fitted without them (`--from-eval DIR`)")


def embed_first(predictor, items) -> None:
    """The training texts embedded before the fit, with the time left shown: the fit (and each fold's) then reads
    the vectors from the cache instead of embedding silently for minutes."""
    from pricer.retrieval.embeddings import embed

    for embedder in sorted(predictor.sentence_embedders()):
        with embedding_progress() as (on_progress, _):
            embed([it.text for it in items], embedder, on_progress=on_progress)


def set_calibration(predictor, calibrate: str, items, text_col: str, price_col: str) -> None:
    from pricer.predictors.intervals import calibrate_when_fitted, held_out

    if calibrate == "none":
        predictor.calibration = None
    elif calibrate != "auto":
        held = _read(calibrate, text_col, price_col)
        with console.status(f"calibrating the interval on {len(held):,} held-out items"):
            predictor.calibration = held_out(predictor, held, Path(calibrate).name)
    else:
        with console.status(f"calibrating the interval: {predictor.calibration_folds} fits on folds of the items"):
            calibrate_when_fitted(predictor, items)


@app.command()
def calibrate(
    model: Annotated[Path, typer.Option(help="A saved model directory.")],
    data: Annotated[Optional[str], typer.Option(help="Items the model did not learn from, optionally sliced: dev.jsonl[:1250].")] = None,
    from_eval: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Or the residuals of an evaluation (`pricer eval --out DIR`) on items that the model, or the same recipe fitted without them, did not learn from; nothing is priced again.")] = None,
    trust_model: TrustOpt = False,
    text_col: TextCol = "text",
    price_col: PriceCol = "price",
):
    """Calibrate a saved model's 80% interval on held-out items (a language model, or any model anew); written into
    the model directory. A model fitted on every item there is (the best recipes) takes its calibration from an
    evaluation of the same recipe fitted without the evaluated items: `--from-eval`."""
    from pricer.predictors.base import read_manifest
    from pricer.predictors.intervals import Calibration, held_out

    if (data is None) == (from_eval is None):
        raise PricerError("calibrate needs either --data (items to price) or --from-eval (an evaluation's folder)")
    read_manifest(model)  # a model directory of pricer's, not a built-in name or a hub id
    if from_eval is not None:
        from pricer.evaluation.compare import read_rows

        rows = read_rows(from_eval).values()  # a row without a price has guess 0, which Calibration.fit leaves out
        calibration = Calibration.fit([r["guess"] for r in rows], [r["truth"] for r in rows], f"evaluation {from_eval.name}")
    else:
        predictor = load_predictor(model, trust_model=trust_model)
        items = _read(data, text_col, price_col)
        with console.status(f"pricing {len(items):,} items"):
            calibration = held_out(predictor, items, Path(data).name)
    calibration.save(model)
    low, high = calibration.interval([100.0])
    console.print(f"{calibration.describe()}, written to {model}; a $100 estimate: {dollars(low[0])}-{dollars(high[0])}")


@app.command()
def predict(
    texts: Annotated[list[str], typer.Argument(metavar="TEXT...", help="Product text(s).")],
    model: Annotated[str, typer.Option(help="A saved model directory (RUN_DIR@checkpoint-N) or a built-in name.")],
    decode: DecodeOpt = None,
    base: OntoBaseOpt = None,
    quant: QuantOpt = None,
    trust_model: TrustOpt = False,
    calibrate: CalibrateOpt = None,
):
    """Print the estimated price of each text, one per line (with the 80% interval where the model has one)."""
    predictor = load_predictor(model, decode=decode, base=base, quant=quant, trust_model=trust_model, calibrate=calibrate)
    for d in predictor.estimate(texts):
        interval = f"  (80%: {dollars(d['low'])}-{dollars(d['high'])})" if "low" in d else ""
        console.print("no price" if d["price"] is None else f"{dollars(d['price'])}{interval}")


@app.command(context_settings={"allow_extra_args": True}, options_metavar="[OPTIONS] [KEY=VALUE]...")
def train(
    ctx: typer.Context,
    train: Annotated[list[str], typer.Option(metavar="FILE", help="Training file(s), optionally sliced: dev.jsonl[:1250].")],
    out: Annotated[Path, typer.Option(help="Run directory: checkpoints, adapter, logs. Rerun to resume.")],
    base: Annotated[Optional[str], typer.Option(help="smollm2-135m, gemma3-270m, a model directory or a hub id.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Recipe file (TOML) with training settings.")] = None,
    quant: Annotated[Optional[str], typer.Option(help="4bit, 8bit (CUDA only) or none.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps (overrides epochs).")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="Passes over the training items (recipe default: 1).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Examples per device per step.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Peak learning rate (cosine schedule after warm-up).")] = None,
    head: Annotated[Optional[str], typer.Option(help="lm (the price read from the digits) or regression (a head on the last token).")] = None,
    lora_r: Annotated[Optional[int], typer.Option(help="LoRA rank; 0 trains every weight (full fine-tuning).")] = None,
    save_steps: Annotated[Optional[int], typer.Option(help="A checkpoint every this many steps (0: none); a rerun resumes from the newest.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the data order and the new weights.")] = None,
    push_to_hub: Annotated[Optional[str], typer.Option(help="USER/RUN: push every checkpoint to the hub as a commit (token: HF_TOKEN or `hf auth login`).")] = None,
    text_col: TextCol = "text",
    price_col: PriceCol = "price",
):
    """Fine-tune a causal LM with LoRA (QLoRA with --quant 4bit), or every weight, to price products: it completes
    `Price is $`, or a regression head (--head regression) learns the log price.

    The flags are the everyday recipe keys. KEY=VALUE sets any other key of TrainConfig (llm/training.py), over the
    recipe and the flags, its value read as TOML, else as text: prompt=v2 retrieval=true k=10 index=DIR
    padding_free=true liger=true group_by_length=true logging_steps=1 report_to=tensorboard lora_alpha=16
    target_modules='["q_proj", "v_proj"]' pooling=mean loss=huber head_lr_scale=50."""
    from pricer.llm.training import TrainConfig, parse_overrides, read_recipe
    from pricer.llm.training import train as run_training

    settings = read_recipe(config) if config else {}
    flags = dict(base=base, quant=quant, max_steps=max_steps, epochs=epochs, batch_size=batch_size,
                 learning_rate=learning_rate, head=head, lora_r=lora_r, save_steps=save_steps, seed=seed,
                 push_to_hub=push_to_hub)
    settings.update({k: v for k, v in flags.items() if v is not None})
    settings.update(parse_overrides(ctx.args))
    check_out_folder(out)
    items = [it for spec in train for it in _read(spec, text_col, price_col)]
    run_dir = run_training(items, out, TrainConfig(**settings))
    console.print(f"trained on {len(items):,} items; evaluate with: pricer eval --model {run_dir} --data FILE")


def refuse_recipe_keys_as_flags(argv: list[str]) -> None:
    """`pricer train --padding-free`: a recipe key without a flag of its own is named with the way to give it."""
    if not argv or argv[0] != "train":
        return
    import inspect
    from dataclasses import fields

    from pricer.llm.training import TrainConfig

    keys, flags = {f.name for f in fields(TrainConfig)}, set(inspect.signature(train).parameters)
    for arg in argv[1:]:
        name = arg[2:].split("=")[0].removeprefix("no-").replace("-", "_") if arg.startswith("--") else None
        if name in keys and name not in flags:
            raise PricerError(f"{arg}: not a flag of pricer train; give it as a recipe setting, e.g. {name}=VALUE")


@app.command()
def checkpoints(run: Annotated[str, typer.Argument(help="A training run directory, or a hub run USER/RUN.")]):
    """The revisions of a run: checkpoint folders (step, training loss) or hub commits (offline: those cached)."""
    from pricer.llm.checkpoints import list_checkpoints

    table = Table("revision", "step", "training loss", "time")
    for row in list_checkpoints(run):
        loss = "" if row["loss"] is None else f"{row['loss']:.4f}"
        table.add_row(row["revision"], "" if row["step"] is None else str(row["step"]), loss, row["time"])
    console.print(table)


@app.command()
def select(
    run: Annotated[str, typer.Argument(help="A training run directory, or a hub run USER/RUN.")],
    data: Annotated[str, typer.Option(help="Validation items, e.g. train.jsonl[-500:] (never the test slice).")],
    size: Annotated[int, typer.Option(help="Score the first SIZE items; 0 for all.")] = 0,
    metric: Annotated[str, typer.Option(help="mae, rmsle or hit_rate.")] = "mae",
    out: Annotated[Optional[Path], typer.Option(help="Where each checkpoint's evaluation goes (rerun to resume).")] = None,
    batch_size: int = 32,
    decode: DecodeOpt = None,
    base: OntoBaseOpt = None,
    quant: QuantOpt = None,
    trust_model: TrustOpt = False,
):
    """Score every checkpoint of a run on a validation slice and record the best: RUN@best then loads it."""
    from pricer.evaluation.selection import score_checkpoints
    from pricer.llm.checkpoints import best_file

    items = _read(data)
    items = items[:size] if size else items
    out = out or Path("runs") / "select" / Path(run.rstrip("/")).name
    table = Table("revision", "step", "error", "95% CI", "RMSLE", "hits")

    def shown(row):
        low, high = row["mae_ci95"]
        table.add_row(row["revision"], "" if row["step"] is None else str(row["step"]), f"${row['mae']:,.2f}",
                      f"${low:,.2f}-${high:,.2f}", f"{row['rmsle']:.3f}", f"{row['hit_rate']:.1f}%")
        err.print(f"{row['revision']}: ${row['mae']:,.2f}")

    rows, best = score_checkpoints(run, items, out, metric,
                                   load=lambda spec: load_predictor(spec, decode=decode, batch_size=batch_size, base=base, quant=quant,
                                                                      trust_model=trust_model),
                                   progress=shown)
    console.print(table)
    console.print(f"best by {metric} on {len(items):,} items: {best['revision']} (${best['mae']:,.2f}); "
                  f"`--model {run}@best` loads it (recorded in {best_file(run)})")
