"""`pricer index`: the vector index of known products."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pricer.cli.common import App, PriceCol, TextCol, _read, app, console, embedding_progress
from pricer.retrieval.embeddings import DEFAULT_EMBEDDER


index_app = App(no_args_is_help=True, help="A vector index of known products, for retrieval.")


app.add_typer(index_app, name="index")


@index_app.command("build")
def index_build(
    train: Annotated[list[str], typer.Option(metavar="FILE", help="Items to index, optionally sliced.")],
    out: Annotated[Path, typer.Option(help="Index directory.")],
    embedder: Annotated[str, typer.Option(help="The sentence model: all-MiniLM-L6-v2, all-mpnet-base-v2 (make mpnet), a folder or a hub id.")] = DEFAULT_EMBEDDER,
    text_col: TextCol = "text",
    price_col: PriceCol = "price",
):
    """Embed items (with MiniLM unless told) and store them in a FAISS index on disk."""
    from pricer.retrieval.index import PriceIndex

    items = [it for spec in train for it in _read(spec, text_col, price_col)]
    with embedding_progress() as (on_progress, task):
        index = PriceIndex.build(items, embedder, on_progress=on_progress)
    index.save(out)
    console.print(f"indexed {len(items):,} items in {out} ({task.total:,} embedded now, the rest cached)")


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
