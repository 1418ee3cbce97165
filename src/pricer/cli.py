"""pricer: estimate a product's price from its text, and judge offers against it.

Curate product data, fit a baseline or fine-tune a language model, evaluate it, serve it with a web page, and scan
offers for deals. An error you can fix prints as one line and exits with code 2.
"""

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from pricer.errors import PricerError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help=__doc__,
                  rich_markup_mode=None)  # help text as written: [ensemble] and [default: ...] are not markup
data_app = typer.Typer(no_args_is_help=True, help="Curate raw product data and describe data sets.")
app.add_typer(data_app, name="data")
console = Console()


def dollars(value: float) -> str:
    """$1,234.56, and -$271.93 for a negative amount."""
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"
err = Console(stderr=True)

DecodeOpt = Annotated[
    Optional[str], typer.Option(help="LLM decoder: greedy, topk, mean, median or logmean (default: the model's).")
]
GpusOpt = Annotated[int, typer.Option(help="Language models, also inside an ensemble: GPUs to share the work (a process and a replica on each); 0 for all.")]
OntoBaseOpt = Annotated[Optional[str], typer.Option("--base", help="Language models: load the adapter onto this base instead of its own.")]
QuantOpt = Annotated[Optional[str], typer.Option("--quant", help="Language models: 4bit, 8bit (CUDA) or none.")]
LigerOpt = Annotated[bool, typer.Option(help="Language models: liger-kernel's fused norms, rotary and SwiGLU (CUDA only; pays with topk).")]
TextCol = Annotated[str, typer.Option("--text-col", "--text", help="Column holding the product text (course v2 files: summary by default, or full, prompt).")]
PriceCol = Annotated[str, typer.Option(help="Column holding the price.")]


def _columns(text_col: str, price_col: str):
    from pricer.data.items import ColumnMap

    return ColumnMap(text=text_col, price=price_col)


def _load_model(model: str, decode: str | None, gpus: int = 1, batch_size: int | None = None,
                base: str | None = None, quant: str | None = None, liger: bool = False):
    from pricer.predictors.registry import load_predictor

    predictor = load_predictor(model)
    for name, value in (("base", base), ("quant", quant)):
        if value is not None:
            if not hasattr(predictor, name):
                raise PricerError(f"--{name} applies to language models, not to a {predictor.kind!r} predictor")
            if name == "quant":
                from pricer.llm.models import check_quant

                check_quant(value)
            setattr(predictor, name, value)
    if decode is not None:
        if not hasattr(predictor, "decode"):
            raise PricerError(f"--decode applies to language models, not to a {predictor.kind!r} predictor")
        from pricer.llm.decoding import check_decode

        predictor.decode = check_decode(decode)
    for model in _language_models(predictor):  # also those inside an ensemble or a recipe's run
        model.gpus = gpus
        model.batch_size = batch_size or model.batch_size  # forward passes as large as the batches handed over
        model.liger = liger or model.liger
    return predictor


def _language_models(predictor):
    if hasattr(predictor, "gpus"):
        yield predictor
    for part in predictor.parts():
        yield from _language_models(part)


def _read(spec: str, text_col: str = "text", price_col: str = "price"):
    from pricer.data.items import read_items_with_report

    items, report = read_items_with_report(spec, _columns(text_col, price_col))
    if report.skipped or report.truncated:
        err.print(f"[yellow]{report.summary()}[/]", soft_wrap=True)
    return items


# -------------------------------------------------------------------------------------------------------------- data


@data_app.command("curate")
def data_curate(
    raw: Annotated[list[str], typer.Argument(metavar="RAW...", help="Raw metadata files (.jsonl/.jsonl.gz), hub:CATEGORY, or tables of listings (.csv/.tsv/.parquet).")],
    out: Annotated[Path, typer.Option(help="Directory for train.jsonl, test.jsonl and report.json.")],
    tokenizer: Annotated[str, typer.Option(help="llama3, words, or a transformers tokenizer id/dir.")] = "llama3",
    test_size: Annotated[float, typer.Option(help="Test items: a count, or a fraction below 1.")] = 0.05,
    seed: int = 42,
    balance: Annotated[bool, typer.Option(help="Sample price slots down as the reference did.")] = True,
    slot_cap: Annotated[int, typer.Option(help="Most items kept per whole-dollar price slot.")] = 1200,
    map_: Annotated[Optional[list[str]], typer.Option("--map", metavar="FIELD=COLUMN", help="FIELD=COLUMN for a table in another layout (fields: title, description, features, details, price, category).")] = None,
):
    """Turn raw listings (Amazon Reviews 2023 metadata, or a table in another layout) into curated, balanced train
    and test items; rows that cannot be priced are counted, not guessed."""
    from collections import Counter

    from pricer.data import curation
    from pricer.data.items import write_items
    from pricer.storage import atomic_write_json

    bad = [m for m in map_ or [] if "=" not in m]
    if bad:
        raise PricerError(f"--map {bad[0]!r}: give FIELD=COLUMN, e.g. --map price='Selling Price'")
    columns = dict(m.split("=", 1) for m in map_ or []) or None
    tok = curation.load_tokenizer(tokenizer)
    items, dropped = [], Counter()
    for source in raw:
        path = curation.download_category(source[4:]) if source.startswith("hub:") else Path(source)
        got, why = curation.curate_file(path, tok, category=source[4:] if source.startswith("hub:") else None,
                                        columns=columns)
        console.print(f"{source}: kept {len(got):,}, dropped {sum(why.values()):,} {dict(why)}")
        items += got
        dropped += why
    if balance:
        items = curation.balance(items, curation.BalanceRules(slot_cap=slot_cap), seed=seed)
    train, test = curation.split(items, int(test_size) if test_size >= 1 else test_size, seed=seed)
    write_items(train, out / "train.jsonl")
    write_items(test, out / "test.jsonl")
    atomic_write_json(out / "report.json", {"kept": len(items), "train": len(train), "test": len(test), "dropped": dropped})
    console.print(f"{len(train):,} train and {len(test):,} test items in {out}")


@data_app.command("stats")
def data_stats(
    file: Annotated[str, typer.Argument(help="Items file (.jsonl, .csv, .parquet), optionally sliced: f.jsonl[:100].")],
    out: Annotated[Path, typer.Option(help="Directory for stats.json, prices.png, categories.png.")],
    text_col: TextCol = "text",
    price_col: PriceCol = "price",
):
    """Counts, price distribution and categories of a data set, with charts."""
    from pricer.data.stats import describe, draw_stats
    from pricer.storage import atomic_write_json

    items = _read(file, text_col, price_col)
    stats = describe(items)
    atomic_write_json(out / "stats.json", stats)
    charts = draw_stats(items, stats, out, Path(file).name)
    console.print(
        f"{stats['n']:,} items, price mean ${stats['price_mean']:,.2f}, median ${stats['price_median']:,.2f}, "
        f"{len(stats['categories'])} categories; wrote {out / 'stats.json'}, {', '.join(str(c) for c in charts)}"
    )


# -------------------------------------------------------------------------------------------------- fit and predict


@app.command()
def fit(
    kind: Annotated[str, typer.Argument(help="random, constant-mean, constant-median, features, bow, tfidf, embed-rf, embed-knn, dnn, dnn-small, sparse-mlp, ensemble, or a recipe file (.toml: training, or [ensemble])")],
    train: Annotated[list[str], typer.Option(metavar="FILE", help="Training file(s), optionally sliced: dev.jsonl[:1250].")],
    out: Annotated[Path, typer.Option(help="Directory to save the fitted predictor in.")],
    members: Annotated[Optional[list[str]], typer.Option(metavar="MEMBER", help="Ensemble members: recipe names or model directories.")] = None,
    folds: Annotated[int, typer.Option(help="Ensemble: folds for the out-of-fold predictions (0: no stacker, the members' geometric mean).")] = 5,
    stacker: Annotated[str, typer.Option(help="Ensemble: linear (weights on the members' log prices) or boosted (trees on them).")] = "linear",
    text_col: TextCol = "text",
    price_col: PriceCol = "price",
):
    """Fit a predictor on training items and save it."""
    from pricer.predictors.registry import make_predictor

    items = [it for spec in train for it in _read(spec, text_col, price_col)]
    if kind != "ensemble" and members:
        raise PricerError("--members goes with `pricer fit ensemble`")
    if kind == "ensemble":
        predictor = make_predictor(kind, members=members or [], folds=folds, stacker=stacker)
    else:
        predictor = make_predictor(kind)
    if predictor.kind == "ensemble":
        predictor.fit(items, progress=console.print)
    else:
        with console.status(f"fitting {kind} on {len(items):,} items"):
            predictor.fit(items)
    predictor.save(out)
    console.print(f"saved {kind} fitted on {len(items):,} items to {out}")


@app.command()
def predict(
    texts: Annotated[list[str], typer.Argument(metavar="TEXT...", help="Product text(s).")],
    model: Annotated[str, typer.Option(help="A saved model directory (RUN_DIR@checkpoint-N) or a built-in name.")],
    decode: DecodeOpt = None,
    base: OntoBaseOpt = None,
    quant: QuantOpt = None,
):
    """Print the estimated price of each text, one per line (with the 80% interval where the model has one)."""
    for d in _load_model(model, decode, base=base, quant=quant).predict_details(texts):
        interval = f"  (80%: {dollars(d['low'])}-{dollars(d['high'])})" if "low" in d else ""
        console.print("no price" if d["price"] is None else f"{dollars(d['price'])}{interval}")


@app.command()
def train(
    train: Annotated[list[str], typer.Option(metavar="FILE", help="Training file(s), optionally sliced: dev.jsonl[:1250].")],
    out: Annotated[Path, typer.Option(help="Run directory: checkpoints, adapter, logs. Rerun to resume.")],
    base: Annotated[Optional[str], typer.Option(help="smollm2-135m, gemma3-270m, a model directory or a hub id.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Recipe file (TOML) with training settings.")] = None,
    quant: Annotated[Optional[str], typer.Option(help="4bit, 8bit (CUDA only) or none.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps (overrides epochs).")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="Passes over the training items (recipe default: 1).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Examples per device per step.")] = None,
    grad_accum: Annotated[Optional[int], typer.Option(help="Steps whose gradients add up before one optimizer update.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Peak learning rate (cosine schedule after warm-up).")] = None,
    head: Annotated[Optional[str], typer.Option(help="lm (the price read from the digits) or regression (a head on the last token).")] = None,
    lora_r: Annotated[Optional[int], typer.Option(help="LoRA rank; 0 trains every weight (full fine-tuning).")] = None,
    lora_alpha: Annotated[Optional[int], typer.Option(help="LoRA scaling (alpha / r multiplies the adapter's output).")] = None,
    target_modules: Annotated[Optional[str], typer.Option(help="Comma-separated module names for LoRA.")] = None,
    save_steps: Annotated[Optional[int], typer.Option(help="A checkpoint every this many steps (0: none); a rerun resumes from the newest.")] = None,
    logging_steps: Annotated[Optional[int], typer.Option(help="A log line (loss, tokens/s) every this many steps.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the data order and the new weights.")] = None,
    report_to: Annotated[Optional[str], typer.Option(help="none, tensorboard or wandb.")] = None,
    gradient_checkpointing: Optional[bool] = None,
    compile: Annotated[Optional[bool], typer.Option(help="torch.compile the model: fused element-wise kernels (small models).")] = None,
    liger: Annotated[Optional[bool], typer.Option(help="liger-kernel's fused norms, rotary and SwiGLU (GPU only).")] = None,
    padding_free: Annotated[Optional[bool], typer.Option(help="A batch's examples end to end in one row: no FLOP on padding.")] = None,
    group_by_length: Annotated[Optional[bool], typer.Option(help="Batches of similar lengths: less padding.")] = None,
    index: Annotated[Optional[str], typer.Option(help="Retrieval index: the k nearest known products go into each prompt.")] = None,
    retrieval: Annotated[Optional[bool], typer.Option(help="Build that index from the training items, inside the run.")] = None,
    k: Annotated[Optional[int], typer.Option(help="How many nearest products with --index or --retrieval.")] = None,
    prompt: Annotated[Optional[str], typer.Option(help="The prompt's question: v1 (the default), v2, or your own.")] = None,
    push_to_hub: Annotated[Optional[str], typer.Option(help="USER/RUN: push every checkpoint to the hub as a commit (token: HF_TOKEN or `hf auth login`).")] = None,
    hub_private: Annotated[Optional[bool], typer.Option(help="Make the hub repository private (the default) or public.")] = None,
    text_col: TextCol = "text",
    price_col: PriceCol = "price",
    overrides: Annotated[Optional[list[str]], typer.Argument(
        metavar="KEY=VALUE", help="Any recipe key, over the recipe and the flags: head_lr_scale=50 "
        "warmup_ratio=0.05 target_modules='[\"q_proj\", \"v_proj\"]' (values read as TOML, else as text).")] = None,
):
    """Fine-tune a causal LM with LoRA (QLoRA with --quant 4bit) to complete `Price is $`."""
    from pricer.llm.training import TrainConfig, parse_overrides, read_recipe
    from pricer.llm.training import train as run_training

    settings = read_recipe(config) if config else {}
    flags = dict(
        base=base, quant=quant, max_steps=max_steps, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum,
        learning_rate=learning_rate, head=head, lora_r=lora_r, lora_alpha=lora_alpha, save_steps=save_steps,
        logging_steps=logging_steps, seed=seed, report_to=report_to, gradient_checkpointing=gradient_checkpointing,
        compile=compile, liger=liger, padding_free=padding_free, group_by_length=group_by_length, index=index, retrieval=retrieval, k=k, prompt=prompt, push_to_hub=push_to_hub,
        hub_private=hub_private, target_modules=target_modules.split(",") if target_modules else None,
    )
    settings.update({k: v for k, v in flags.items() if v is not None})
    settings.update(parse_overrides(overrides or []))
    items = [it for spec in train for it in _read(spec, text_col, price_col)]
    run_dir = run_training(items, out, TrainConfig(**settings))
    console.print(f"trained on {len(items):,} items; evaluate with: pricer eval --model {run_dir} --data FILE")


# ------------------------------------------------------------------------------------------------------- evaluation


@app.command("eval")
def evaluate_cmd(
    model: Annotated[str, typer.Option(help="A saved model directory or a built-in name.")],
    data: Annotated[str, typer.Option(help="Items to score, optionally sliced: dev.jsonl[1250:].")],
    size: Annotated[int, typer.Option(help="Score the first SIZE items (the reference: 250); 0 for all.")] = 250,
    out: Annotated[Optional[Path], typer.Option(help="Results directory; rerun with the same one to resume.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Name on the chart and leaderboard.")] = None,
    batch_size: Annotated[int, typer.Option(help="Items priced per call of the model (language models: per forward pass).")] = 32,
    quiet: Annotated[bool, typer.Option(help="No line per item.")] = False,
    decode: DecodeOpt = None,
    gpus: GpusOpt = 1,
    base: OntoBaseOpt = None,
    quant: QuantOpt = None,
    liger: LigerOpt = False,
    text_col: TextCol = "text",
    price_col: PriceCol = "price",
):
    """Score a model like the reference's Tester; writes summary.json, items.jsonl, chart.png and chart.html."""
    from pricer.evaluation.tester import RICH_COLOUR, evaluate

    items = _read(data, text_col, price_col)
    items = items[:size] if size else items
    name = name or Path(model.rstrip("/")).name + (f"-{decode}" if decode else "")
    out = out or Path("runs") / "eval" / name
    predictor = _load_model(model, decode, gpus, batch_size, base=base, quant=quant, liger=liger)

    def show(row, resumed):
        if not quiet:
            console.print(
                f"[{RICH_COLOUR[row['colour']]}]{row['i'] + 1}: Guess: ${row['guess']:,.2f} Truth: ${row['truth']:,.2f} "
                f"Error: ${row['error']:,.2f} SLE: {row['sle']:,.2f} Item: {row['title'][:40]}{' (resumed)' if resumed else ''}[/]"
            )

    try:
        summary = evaluate(predictor, items, out, name=name, batch_size=batch_size, on_row=show)
    except KeyboardInterrupt:
        saved = sum(1 for _ in open(out / "items.jsonl", encoding="utf-8")) if (out / "items.jsonl").exists() else 0
        console.print(f"interrupted: {saved} of {len(items)} items saved in {out}; the same command resumes from there",
                      soft_wrap=True)
        raise typer.Exit(130) from None
    print_summary(summary)
    console.print(f"wrote {out}/summary.json, items.jsonl, chart.png, chart.html")


def print_summary(s: dict) -> None:
    lo, hi = s["mae_ci95"]
    console.print(
        f"[bold]{s['name']}[/]: error ${s['mae']:,.2f} (95% CI ${lo:,.2f}-${hi:,.2f}), median ${s['median_error']:,.2f}, "
        f"RMSLE {s['rmsle']:.3f}, hits {s['hit_rate']:.1f}% over {s['n']} items"
        + (f", {s['no_price']} without a price" if s.get("no_price") else "")
    )
    table = Table("category", "n", "error", "RMSLE", "hits", title="by category")
    for cat, m in s["by_category"].items():
        table.add_row(cat, str(m["n"]), f"${m['mae']:,.2f}", f"{m['rmsle']:.2f}", f"{m['hit_rate']:.1f}%")
    console.print(table)


@app.command()
def leaderboard(
    runs: Annotated[list[Path], typer.Argument(help="Evaluation output directories.")],
    chart: Annotated[Optional[Path], typer.Option(help="Bar chart PNG to write.")] = None,
    reference: Annotated[bool, typer.Option(help="Include the reference's published results.")] = True,
):
    """Several runs next to the reference's results, as a table and a bar chart."""
    from pricer.evaluation.leaderboard import collect, draw_bars

    rows = collect(runs, with_reference=reference)
    show_leaderboard(rows)
    if chart:
        draw_bars(rows, chart)
        console.print(f"wrote {chart}")


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="An evaluation directory (pricer eval --out).")],
    run_b: Annotated[Path, typer.Argument(help="Another, on the same items.")],
):
    """Two evaluations of the same items: the difference of their errors with a paired bootstrap interval."""
    from pricer.evaluation.compare import compare as run_compare

    c = run_compare(run_a, run_b)
    lo, hi = c["ci95"]
    console.print(f"A {c['a']}: ${c['mae_a']:,.2f}   B {c['b']}: ${c['mae_b']:,.2f}   over {c['n']} shared items")
    console.print(f"A - B: {dollars(c['difference'])} (95% paired CI {dollars(lo)} to {dollars(hi)}); B closer on "
                  f"{100 * c['b_closer_share']:.1f}% of items: [bold]{c['verdict']}[/]")


def show_leaderboard(rows: list[dict]) -> None:
    table = Table("predictor", "error", "95% CI", "RMSLE", "hits", "n", "source", title="leaderboard")
    for r in rows:
        ci = f"${r['ci'][0]:,.0f}-${r['ci'][1]:,.0f}" if r["ci"] else ""
        style = "bold" if r["source"] == "pricer" else "dim"
        table.add_row(r["name"], f"${r['mae']:,.2f}", ci, f"{r['rmsle']:.2f}", f"{r['hit_rate']:.1f}%", str(r["n"]), r["source"], style=style)
    console.print(table)
    console.print("[dim]reference rows: published figures on the course's test[:250]; pricer rows: this machine's runs[/]")


# ------------------------------------------------------------------------------------------------------------- demo


@app.command()
def serve(
    model: Annotated[str, typer.Option(help="A saved model directory or a built-in name.")],
    host: str = "127.0.0.1",
    port: int = 8000,
    decode: DecodeOpt = None,
    max_batch: Annotated[int, typer.Option(help="Most items gathered into one call of the model.")] = 64,
    gpus: GpusOpt = 1,
    base: OntoBaseOpt = None,
    quant: QuantOpt = None,
    liger: LigerOpt = False,
    api_key: Annotated[Optional[str], typer.Option(envvar="PRICER_API_KEY", show_envvar=True,
                                                   help="Require `Authorization: Bearer KEY` on /v1/ routes.")] = None,
    max_body_bytes: Annotated[int, typer.Option(help="Larger request bodies get 413.")] = 1_000_000,
    index: Annotated[Optional[Path], typer.Option(help="A retrieval index (pricer index build): the page shows the nearest known products.")] = None,
    deals: Annotated[Optional[list[str]], typer.Option(metavar="SOURCE", help="Feeds or offer files whose deals the page lists (repeatable).")] = None,
    deals_every: Annotated[float, typer.Option(help="Rescan the --deals sources every this many seconds.")] = 900,
):
    """Serve a predictor over HTTP: the web page at /, and /v1/price, /v1/price/batch, /v1/estimate, /v1/price/file,
    /v1/deals, /v1/models, /v1/chat/completions, /health, /docs."""
    import uvicorn

    from pricer.serving.app import create_app

    price_index = None
    if index is not None:
        from pricer.retrieval.index import PriceIndex

        price_index = PriceIndex.load(index)
    predictor = _load_model(model, decode, gpus, max_batch, base=base, quant=quant, liger=liger)
    app = create_app(predictor, Path(model.rstrip("/")).name, max_batch=max_batch, api_key=api_key,
                     max_body_bytes=max_body_bytes, index=price_index, deal_sources=deals, deals_every=deals_every)
    console.print(f"pricer page: http://{host}:{port}/")
    uvicorn.run(app, host=host, port=port)


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
                                   load=lambda spec: _load_model(spec, decode, batch_size=batch_size, base=base, quant=quant),
                                   progress=shown)
    console.print(table)
    console.print(f"best by {metric} on {len(items):,} items: {best['revision']} (${best['mae']:,.2f}); "
                  f"`--model {run}@best` loads it (recorded in {best_file(run)})")


@app.command()
def deals(
    sources: Annotated[list[str], typer.Argument(metavar="SOURCE...", help="RSS/Atom feeds (URL or file) or .json/.jsonl/.csv files of offers (title, description, price, url).")],
    model: Annotated[str, typer.Option(help="A saved model directory or a built-in name.")],
    min_discount: Annotated[float, typer.Option(help="Show deals at least this many dollars below the estimate (negative: more).")] = 0.0,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON line per deal instead of a table.")] = False,
    memory: Annotated[Optional[Path], typer.Option(help="SQLite file of the deals already surfaced [default: CACHE/deals.sqlite].")] = None,
    forget: Annotated[bool, typer.Option(help="Neither read nor write the memory: every deal is new.")] = False,
    notify: Annotated[Optional[str], typer.Option(help="POST each new deal as JSON to this webhook URL.")] = None,
    watch: Annotated[Optional[float], typer.Option(help="Scan again every this many seconds until interrupted.")] = None,
    top: Annotated[int, typer.Option(help="Rows in the table (0: all).")] = 20,
    decode: DecodeOpt = None,
    base: OntoBaseOpt = None,
    quant: QuantOpt = None,
):
    """The deal finder: price every offer, rank by estimated discount, report each deal once, push it to a webhook."""
    import json
    import time

    from rich.progress import Progress

    from pricer.deals.finder import find_deals
    from pricer.deals.memory import DealMemory, default_memory
    from pricer.deals.notify import Webhook

    if watch is not None and watch <= 0:
        raise PricerError(f"--watch {watch}: give a positive number of seconds")
    if watch is not None:
        _stop_on_sigterm()
    webhook = Webhook(notify) if notify else None
    store = None if forget else DealMemory(memory or default_memory())
    predictor = _load_model(model, decode, base=base, quant=quant)
    scans = 0
    try:
        while True:
            try:
                with Progress(console=err, transient=True) as bar:
                    task = bar.add_task("pricing offers", total=None)
                    report = find_deals(sources, predictor, min_discount, store, webhook, say=err.print,
                                        progress=lambda done, total: bar.update(task, completed=done, total=total))
            except PricerError as e:
                if watch is None:
                    raise
                err.print(f"this scan failed: {e}; trying again in {watch:g} s", soft_wrap=True)  # a feed down a while
                time.sleep(watch)
                continue
            scans += 1
            shown = report.new if top == 0 or json_lines else report.new[:top]
            if json_lines:
                for deal in shown:
                    print(json.dumps(deal.to_dict()), flush=True)
            elif shown:
                console.print(_deals_table(shown))
            (err if json_lines else console).print(report.summary(min_discount)
                                                   + (f"; {report.sent} sent to the webhook" if webhook else ""),
                                                   soft_wrap=True)
            if watch is None:
                break
            time.sleep(watch)
    except KeyboardInterrupt:
        err.print(f"stopped after {scans} scan{'s' * (scans != 1)}")


def _stop_on_sigterm() -> None:
    """`kill` (a service manager's stop, or the only way to stop a run under nohup, where Ctrl-C is ignored) ends a
    --watch loop as Ctrl-C does: the scan under way is dropped and the number of scans said."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _deals_table(deals) -> Table:
    """Ranked deals; each title links to its offer (the URL itself is in --json)."""
    from rich.text import Text

    table = Table()
    table.add_column("#", justify="right")
    table.add_column("deal", no_wrap=True, overflow="ellipsis", width=max(20, min(60, console.width - 68)))
    for column in ("offer", "estimate", "discount"):  # numbers keep their width; titles give way
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for n, deal in enumerate(deals, 1):
        judged = deal.judged
        interval = f" ({deal.low:,.0f}-{deal.high:,.0f})" if deal.low is not None else ""
        title = Text(deal.offer.title, style=f"link {deal.offer.url}" if deal.offer.url else "")
        table.add_row(str(n), title, f"${deal.offer.price:,.2f}", f"${deal.estimate:,.2f}{interval}",
                      f"${judged['discount']:,.2f} ({judged['discount_percent']:.0f}%)", judged["verdict"])
    return table


@app.command("loadtest")
def loadtest_cmd(
    url: Annotated[str, typer.Argument(help="The running service, e.g. http://127.0.0.1:8000 (keep it on loopback).")],
    data: Annotated[str, typer.Option(help="Items whose texts are sent.")],
    requests: Annotated[int, typer.Option(help="How many requests in all, each one text to POST /v1/price.")] = 500,
    clients: Annotated[int, typer.Option(help="How many clients send at once, each on its own kept-alive connection.")] = 32,
):
    """Bounded load test of a running `pricer serve`: prints median and p99 latency; exits 1 if any request failed."""
    from pricer.serving.loadtest import load_test

    stats = load_test(url.rstrip("/"), [it.text for it in _read(data)], requests=requests, clients=clients)
    console.print(
        f"{stats['requests']} requests from {stats['clients']} clients: {stats['ok']} ok, errors {stats['errors'] or 'none'}, "
        f"median {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, {stats['requests_per_s']:.0f} requests/s"
    )
    if stats["errors"]:
        raise typer.Exit(1)


bench_app = typer.Typer(no_args_is_help=True, help="Speed of the inference and training code paths.")
app.add_typer(bench_app, name="bench")
BaseOpt = Annotated[Optional[str], typer.Option(help="A base model (alias, directory, hub id).")]
RandomOpt = Annotated[Optional[str], typer.Option(help="Build the model from a config with random weights: llama-3.1-8b or a config.json.")]
TokenizerOpt = Annotated[Optional[str], typer.Option(help="Tokenizer for --random-weights: llama3 (default) or a transformers id/dir.")]


def _bench_model(base, random_weights, tokenizer, quant="none", devices=None, full_precision=False):
    """The model (one per device where several are given) and its tokenizer; fp32 weights for full fine-tuning, as
    `pricer train` loads them (bf16 autocast computes, the optimiser updates fp32 masters)."""
    from pricer.data.curation import load_tokenizer as load_curation_tokenizer
    from pricer.llm.models import best_device, load_base_model, load_tokenizer

    if bool(base) == bool(random_weights):
        raise PricerError("give one of --base or --random-weights")
    if base:
        import torch

        dtype = torch.float32 if full_precision else None
        models = [load_base_model(base, quant, device=d, dtype=dtype) for d in devices or [best_device()]]
        return (models if devices else models[0]), load_tokenizer(base)
    from pricer.llm.bench import random_weights as build

    tok = load_curation_tokenizer(tokenizer or "llama3")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    models = [build(random_weights, d, full_precision) for d in devices or [best_device()]]
    return (models if devices else models[0]), tok


@bench_app.command("infer")
def bench_infer_cmd(
    data: Annotated[str, typer.Option(help="Items whose texts are priced.")],
    base: BaseOpt = None,
    random_weights: RandomOpt = None,
    tokenizer: TokenizerOpt = None,
    quant: str = "none",
    items: int = 512,
    batch_size: int = 64,
    decode: str = "topk",
    reference_items: Annotated[int, typer.Option(help="Items for the one-at-a-time reference loop.")] = 32,
    gpus: GpusOpt = 1,
    liger: Annotated[bool, typer.Option(help="liger-kernel's fused norms, rotary and SwiGLU (GPU only).")] = False,
    out: Annotated[Optional[Path], typer.Option(help="JSON file for the figures.")] = None,
):
    """items/s of batched price inference against the reference's one-item loop."""
    from pricer.llm.batching import inference_devices
    from pricer.llm.bench import bench_infer, result_lines, write_result
    from pricer.llm.predictor import LLMPredictor

    models, tok = _bench_model(base, random_weights, tokenizer, quant, devices=inference_devices(gpus))
    predictor = LLMPredictor.from_loaded(models, tok, decode=decode, batch_size=batch_size, liger=liger)
    texts = [it.text for it in _read(data)]
    texts = (texts * -(-items // len(texts)))[:items]  # the data again as often as --items needs
    result = bench_infer(predictor, texts, batch_size, reference_items)
    write_result(result, out)
    console.print("\n".join(result_lines(result)))


@bench_app.command("train")
def bench_train_cmd(
    data: Annotated[str, typer.Option(help="Training items.")],
    base: BaseOpt = None,
    random_weights: RandomOpt = None,
    tokenizer: TokenizerOpt = None,
    quant: str = "none",
    steps: int = 30,
    warmup_steps: Annotated[int, typer.Option(help="Steps run before the clock starts (compilation, allocator).")] = 2,
    batch_size: int = 16,
    lora_r: int = 32,
    lora_targets: Annotated[str, typer.Option(help="Comma-separated modules that get LoRA, or `all-linear`.")] = "q_proj,k_proj,v_proj,o_proj",
    lora_dropout: float = 0.1,
    gradient_checkpointing: bool = False,
    compile: Annotated[bool, typer.Option(help="torch.compile the model (the Trainer's torch_compile).")] = False,
    liger: Annotated[bool, typer.Option(help="liger-kernel's fused norms, rotary and SwiGLU (GPU only).")] = False,
    padding_free: Annotated[bool, typer.Option(help="A batch's examples end to end in one row: no FLOP on padding.")] = False,
    group_by_length: Annotated[bool, typer.Option(help="Batches of similar lengths: less padding.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="JSON file for the figures.")] = None,
):
    """tokens/s of LoRA training (or full fine-tuning, --lora-r 0) through the same Trainer set-up as `pricer train`."""
    from pricer.llm.bench import bench_train, result_lines, write_result
    from pricer.llm.training import TrainConfig

    model, tok = _bench_model(base, random_weights, tokenizer, quant, full_precision=lora_r == 0)
    targets = "all-linear" if lora_targets == "all-linear" else lora_targets.split(",")
    config = TrainConfig(base=base or random_weights, quant=quant, max_steps=steps, batch_size=batch_size, lora_r=lora_r,
                         lora_alpha=2 * lora_r, target_modules=targets, lora_dropout=lora_dropout, compile=compile, liger=liger,
                         padding_free=padding_free, group_by_length=group_by_length,
                         gradient_checkpointing=gradient_checkpointing, save_steps=0, logging_steps=max(steps, 1))
    world = int(os.environ.get("WORLD_SIZE", 1))
    # a full batch for every process and step (a short last batch would make torch.compile compile again), and as many
    # items as a run's length-grouped sampler sorts together (transformers' "megabatches" of up to 50 batches)
    pool = max(steps, 200) * batch_size * world
    items = _read(data)
    items = (items * -(-pool // len(items)))[:pool]
    result = bench_train(items, config, model=model, tokenizer=tok, warmup_steps=warmup_steps)
    write_result(result, out)
    console.print("\n".join(result_lines(result)))


index_app = typer.Typer(no_args_is_help=True, help="A vector index of known products, for retrieval.")
app.add_typer(index_app, name="index")


@index_app.command("build")
def index_build(
    train: Annotated[list[str], typer.Option(metavar="FILE", help="Items to index, optionally sliced.")],
    out: Annotated[Path, typer.Option(help="Index directory.")],
    text_col: TextCol = "text",
    price_col: PriceCol = "price",
):
    """Embed items with MiniLM and store them in a FAISS index on disk."""
    from pricer.retrieval.index import PriceIndex

    items = [it for spec in train for it in _read(spec, text_col, price_col)]
    with console.status(f"embedding {len(items):,} items"):
        PriceIndex.build(items).save(out)
    console.print(f"indexed {len(items):,} items in {out}")


@index_app.command("query")
def index_query(
    index: Annotated[Path, typer.Argument(help="Index directory.")],
    text: Annotated[str, typer.Argument(help="Product text.")],
    k: int = 5,
):
    """The k indexed items most similar to a text, with their prices."""
    from pricer.retrieval.index import PriceIndex

    table = Table("similarity", "price", "title")
    for hit in PriceIndex.load(index).query([text], k)[0]:
        table.add_row(f"{hit['similarity']:.3f}", f"${hit['price']:,.2f}", hit["title"][:90])
    console.print(table)


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


class _StderrLines(logging.Formatter):
    """Library messages as the command's own lines on stderr: warnings say so, the rest as written."""

    def format(self, record: logging.LogRecord) -> str:
        return ("warning: " if record.levelno >= logging.WARNING else "") + record.getMessage()


def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_StderrLines())
    logging.getLogger("pricer").addHandler(handler)
    logging.getLogger("pricer").setLevel(logging.INFO)
    try:
        app()
    except PricerError as e:
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted: finished work is saved; run the same command again to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
