"""`pricer data`: curate raw listings and describe data sets."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from pricer.cli.common import PriceCol, TextCol, _read, column_map, console, data_app


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

    columns = column_map(map_) or None
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
