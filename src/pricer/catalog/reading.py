"""Tables of listings read in chunks of bounded size: CSV, TSV, JSONL or Parquet; local paths, globs, or fsspec URLs
(s3://, gs://, https://, ...) where the user has the filesystem's package."""

import glob
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from pricer.data.text import product_text
from pricer.errors import PricerError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
FIELDS = ("text", "title", "description", "features", "details")


def table_format(path: str) -> str:
    name = path.lower().removesuffix(".gz").removesuffix(".bz2").removesuffix(".zst")
    for suffix, kind in FORMATS.items():
        if name.endswith(suffix):
            return kind
    raise PricerError(f"{path}: not a table pricer reads ({', '.join(FORMATS)}, optionally compressed)")


def expand(inputs: list[str]) -> list[str]:
    """Each input as itself (a URL, or a path that exists) or, for a local glob, the files it matches, sorted."""
    paths = []
    for given in inputs:
        if "://" in given or Path(given).exists():
            paths.append(given)
            continue
        matched = sorted(glob.glob(given, recursive=True))
        if not matched:
            raise PricerError(f"{given}: no such file, and no file matches it as a pattern")
        paths += matched
    for path in paths:
        table_format(path)
    return paths


def count_rows(path: str) -> int | None:
    """Rows in the table, cheaply where it can be known (Parquet's metadata, a local uncompressed text file's lines);
    None otherwise (the progress bar then has no total)."""
    kind = table_format(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:
            return None
    if "://" in path or path.endswith((".gz", ".bz2", ".zst")):
        return None
    with open(path, "rb") as f:
        lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return max(lines - (kind in ("csv", "tsv")), 0)


def chunks(path: str, rows: int) -> Iterator[pd.DataFrame]:
    """The table `rows` rows at a time; every column as read, text columns as strings (an id keeps its leading zeros)."""
    kind = table_format(path)
    try:
        if kind == "parquet":
            import fsspec
            import pyarrow.parquet as pq

            with fsspec.open(path, "rb") as f:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=rows):
                    yield batch.to_pandas()
        elif kind == "jsonl":
            with pd.read_json(path, lines=True, chunksize=rows, dtype=False) as reader:
                yield from reader
        else:
            with pd.read_csv(path, sep="\t" if kind == "tsv" else ",", chunksize=rows, dtype=str,
                             keep_default_na=False) as reader:
                yield from reader
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise PricerError(f"{path}: not a readable {kind.upper()} table ({str(e).splitlines()[0][:200]})") from None


def texts_of(frame: pd.DataFrame, columns: dict[str, str], where: str) -> list[str | None]:
    """Each row's product text: the `text` column (or the one --map names), else the title with the description,
    features and details as curated items have them; None for a row with neither."""
    named = {field: columns.get(field, field) for field in FIELDS}
    present = {field: column for field, column in named.items() if column in frame.columns}
    if "text" not in present and "title" not in present and "description" not in present:
        raise PricerError(f"{where}: no product text: give a text, title or description column (or --text / --map "
                          f"FIELD=COLUMN); found {', '.join(map(str, frame.columns))}")

    def cell(row, field):
        value = row.get(present[field]) if field in present else None
        return None if value is None or (isinstance(value, float) and value != value) else str(value).strip()

    texts = []
    for row in frame.to_dict("records"):
        text = cell(row, "text")
        if not text and (cell(row, "title") or cell(row, "description")):
            text = product_text(cell(row, "title") or "", cell(row, "description"), cell(row, "features"),
                                cell(row, "details"))
        texts.append(text or None)
    return texts
