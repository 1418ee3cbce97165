"""`pricer price`: a whole catalog priced into Parquet parts, resumable."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from pricer.cli.common import CalibrateOpt, GpusOpt, TrustOpt, app, column_map, console, err
from pricer.errors import PricerError
from pricer.predictors.registry import load_predictor


@app.command("price")
def price_cmd(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...", help="CSV, TSV, JSONL or Parquet tables: paths, globs ('listings/*.csv') or fsspec URLs.")],
    model: Annotated[str, typer.Option(help="A saved model directory or a built-in name.")],
    out: Annotated[Path, typer.Option(help="Folder for the Parquet parts and the manifest; rerun with the same one to resume.")],
    format: Annotated[str, typer.Option(help="parquet (the parts only), or csv / jsonl: the parts also joined into one file beside the folder, OUT.csv or OUT.jsonl.")] = "parquet",
    chunk_rows: Annotated[int, typer.Option(help="Rows read, priced and written at a time (memory is bounded by it).")] = 10_000,
    text_col: Annotated[Optional[str], typer.Option("--text", help="The column with the product text [default: text, else title with description].")] = None,
    map_: Annotated[Optional[list[str]], typer.Option("--map", metavar="FIELD=COLUMN", help="FIELD=COLUMN for a table in another layout (fields: text, title, description, features, details).")] = None,
    gpus: GpusOpt = 1,
    batch_size: Annotated[Optional[int], typer.Option(help="Language models: texts per forward pass.")] = None,
    trust_model: TrustOpt = False,
    calibrate: CalibrateOpt = None,
    ray: Annotated[bool, typer.Option("--ray", help="Price on a Ray cluster through Ray Data (see --ray-address): a replica per GPU, or per --cpus-per-worker CPUs. A rerun of a finished job prices nothing; one cut short starts over.")] = False,
    ray_address: Annotated[Optional[str], typer.Option(metavar="ADDRESS", help="With --ray: the cluster to join (ray://HOST:10001, HOST:6379 or auto) [default: RAY_ADDRESS, else the cluster last started on this machine, else a new local one].")] = None,
    workers: Annotated[int, typer.Option(help="With --ray: model replicas (0: one per GPU, or as many as the CPUs hold beside one for reading).")] = 0,
    cpus_per_worker: Annotated[float, typer.Option(help="With --ray on CPUs: CPUs each replica asks of Ray (fractions allowed).")] = 1.0,
):
    """Price every row of a catalog: each input column kept, estimate, low and high (the 80% interval) added; rows
    without text get an empty estimate and are counted."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pricer.catalog.pricing import FORMATS, price_catalog, rows_saved

    if format not in FORMATS:
        raise PricerError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    columns = column_map(map_)
    if text_col:
        columns["text"] = text_col
    if out.exists() and not out.is_dir():
        raise PricerError(f"--out {out}: a file, not a folder")
    if ray or ray_address:
        return price_on_cluster(inputs, out, model, columns, format, ray_address, workers, cpus_per_worker, chunk_rows,
                                calibrate, batch_size, trust_model)
    predictor = load_predictor(model, gpus=gpus, batch_size=batch_size, trust_model=trust_model, calibrate=calibrate)
    with Progress(TextColumn("pricing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[speed]} rows/s"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("rows", total=None, speed="-")

        def advance(rows):
            bar.advance(task, rows)
            elapsed = bar.tasks[task].elapsed or 0
            bar.update(task, speed=f"{bar.tasks[task].completed / elapsed:,.0f}" if elapsed else "-")

        try:
            done = price_catalog(predictor, inputs, out, model=str(model), chunk_rows=chunk_rows, columns=columns,
                                 on_chunk=advance, on_total=lambda total: bar.update(task, total=total))
        except KeyboardInterrupt:
            err.print(f"interrupted: {rows_saved(out):,} rows saved in {out}; run the same command again to resume", soft_wrap=True)
            raise typer.Exit(130) from None
    how = f"{done.priced:,} priced now" + (f", {done.rows - done.priced:,} before" if done.chunks_done else "")
    say_done(out, done, how, format)


def price_on_cluster(inputs, out, model, columns, format, address, workers, cpus_per_worker, batch_rows, calibrate,
                     batch_size, trust_model):
    from pricer.catalog.on_ray import price_on_ray

    done = price_on_ray(inputs, out, str(model), columns, address=address, workers=workers,
                        cpus_per_worker=cpus_per_worker, batch_rows=batch_rows, calibrate=calibrate,
                        batch_size=batch_size, trust_model=trust_model)
    say_done(out, done, f"priced on Ray by {done.workers} replicas" if done.priced else "finished before, 0 priced now",
             format)


def say_done(out: Path, done, how: str, format: str) -> None:
    """The finished job in one line (rows, parts, how they were priced, rows without text), the parts joined into
    OUT.csv or OUT.jsonl first where --format asks for it."""
    from pricer.catalog.pricing import join_parts

    said = f"{done.rows:,} rows in {len(done.parts):,} parts in {out}; {how}"
    if done.no_text:
        said += f"; {done.no_text:,} without text (empty estimate)"
    if format != "parquet":
        said += f"; joined into {join_parts(out, done.parts, format)}"
    console.print(said, soft_wrap=True)
