"""`pricer eval`, `leaderboard` and `compare`: the Tester on the command line."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from pricer.cli.common import (
    CalibrateOpt, DecodeOpt, GpusOpt, LigerOpt, OntoBaseOpt, PriceCol, QuantOpt, TextCol, TrustOpt, _read, app, console,
    dollars,
)
from pricer.predictors.registry import load_predictor


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
    trust_model: TrustOpt = False,
    calibrate: CalibrateOpt = None,
    text_col: TextCol = "text",
    price_col: PriceCol = "price",
):
    """Score a model like the reference's Tester; writes summary.json, items.jsonl, chart.png and chart.html."""
    from pricer.evaluation.tester import RICH_COLOUR, evaluate

    items = _read(data, text_col, price_col)
    items = items[:size] if size else items
    name = name or Path(model.rstrip("/")).name + (f"-{decode}" if decode else "")
    out = out or Path("runs") / "eval" / name
    predictor = load_predictor(model, decode=decode, base=base, quant=quant, gpus=gpus, batch_size=batch_size, liger=liger,
                               trust_model=trust_model, calibrate=calibrate)

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
    if "interval_coverage" in s:
        bands = ", ".join(f"{band} {b['coverage']:.0%} of {b['n']}" for band, b in s["interval_coverage_by_band"].items())
        console.print(f"80% interval: holds the price for {s['interval_coverage']:.1%} of {s['interval_items']} items, "
                      f"median width x{s['interval_width']:.2f} (high/low); by price: {bands}")
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
