"""Curation of raw Amazon Reviews 2023 metadata into items, following the reference's rules.

Price band, detail scrubbing, part-number removal, a minimum length in characters and tokens, a token budget,
balanced sampling by price slot and category, and a seeded train/test split.
"""

import gzip
import json
import os
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pricer.errors import PricerError, first_line
from pricer.data.items import Item, parse_price
from pricer.data.text import CEILING_CHARS, details_text, product_contents, titled_text


@dataclass
class CurationRules:
    min_price: float = 0.5
    max_price: float = 999.49
    min_chars: int = 300
    ceiling_chars: int = CEILING_CHARS  # 160 tokens x 7 characters, as the reference cut it
    min_tokens: int = 150
    max_tokens: int = 160


@dataclass
class BalanceRules:
    slot_cap: int = 1200  # price slots with more items than this are sampled down to it...
    keep_whole_from: int = 240  # ...unless the slot is this many dollars or more
    default_weight: float = 5.0
    category_weights: dict | None = None  # the reference: Automotive 1, every other category 5

    def weight(self, category: str | None) -> float:
        weights = self.category_weights if self.category_weights is not None else {"Automotive": 1.0}
        return weights.get(category or "", self.default_weight)


class WordTokenizer:
    """Words and punctuation as tokens: a dependency-free stand-in where no model tokenizer is wanted."""

    pattern = re.compile(r"\w+|[^\w\s]+|\s+")

    def encode(self, text: str, add_special_tokens: bool = False) -> list[str]:
        return [t for t in self.pattern.findall(text) if not t.isspace()]

    def decode(self, tokens: list[str]) -> str:
        return " ".join(tokens)


LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def llama3_tokenizer():
    """The Llama 3 tokenizer from PyPI's `llama-models` (tiktoken file), as a transformers fast tokenizer."""
    import importlib.util

    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    spec = importlib.util.find_spec("llama_models")
    if spec is None:
        raise PricerError("the llama3 tokenizer needs `pip install --no-deps llama-models==0.3.0`")
    vocab = Path(spec.origin).parent / "llama3" / "tokenizer.model"
    special = ["<|begin_of_text|>", "<|end_of_text|>"] + [f"<|reserved_special_token_{i}|>" for i in range(254)]
    converter = TikTokenConverter(vocab_file=str(vocab), pattern=LLAMA3_PATTERN, additional_special_tokens=special)
    return PreTrainedTokenizerFast(
        tokenizer_object=converter.converted(), bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>"
    )


@lru_cache(maxsize=4)
def load_tokenizer(name: str):
    """`llama3` (the reference's), `words`, or any transformers tokenizer id or directory."""
    if name == "llama3":
        return llama3_tokenizer()
    if name == "words":
        return WordTokenizer()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as e:
        raise PricerError(f"cannot load tokenizer {name!r}: {first_line(e)}") from None


def curate_record(
    record: dict, category: str | None, tokenizer, rules: CurationRules | None = None
) -> tuple[Item | None, str]:
    """One raw metadata record to an item, or None and the rule that dropped it."""
    rules = rules or CurationRules()
    price = parse_price(record.get("price"))
    if price is None:
        return None, "no price"
    if not rules.min_price <= price <= rules.max_price:
        return None, "price out of band"
    title = str(record.get("title") or "").strip()
    if not title:
        return None, "no title"
    details = details_text(record.get("details"))
    contents = product_contents(title, record.get("description"), record.get("features"), details)
    if len(contents) <= rules.min_chars:
        return None, "too few characters"
    text = titled_text(title, contents, rules.ceiling_chars)
    tokens = tokenizer.encode(text, add_special_tokens=False)
    if len(tokens) <= rules.min_tokens:
        return None, "too few tokens"
    text = tokenizer.decode(tokens[: rules.max_tokens])
    return Item(text=text, price=price, title=title, category=category, details=details or None), ""


def category_from_filename(path: Path) -> str:
    """`meta_Appliances.jsonl.gz` -> `Appliances`."""
    name = path.name.split(".")[0]
    return re.sub(r"^(raw_)?meta_", "", name)


def read_raw_records(path: Path):
    """Yield (line number, record or None, problem) from a raw metadata file, .jsonl or .jsonl.gz."""
    if not path.exists():
        raise PricerError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            for n, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    yield n, json.loads(raw.decode("utf-8")), ""
                except UnicodeDecodeError:
                    yield n, None, "not UTF-8"
                except json.JSONDecodeError as e:
                    yield n, None, f"not JSON ({e.msg})"
    except gzip.BadGzipFile:
        raise PricerError(f"{path}: not a gzip file") from None


# Raw listings in other layouts: which column holds each field of a raw record. The PromptCloud sample of 2020
# Amazon.com listings (../shared/data/extra/amazon-2020-sample.csv) is known by its columns.
RAW_FIELDS = ("title", "description", "features", "details", "price", "category")
LAYOUTS = {
    "amazon-2020": {"title": "Product Name", "description": "Product Description", "features": "About Product",
                    "details": "Product Specification", "price": "Selling Price", "category": "Category"},
}
TABLE_SUFFIXES = (".csv", ".parquet", ".tsv")
BOILERPLATE = "Make sure this fits by entering your model number"  # Amazon's, on most listings of 2020


def column_map(columns: list[str], given: dict[str, str] | None, path: Path) -> dict[str, str]:
    """field -> column: the given mapping over the columns named like the fields, or a known layout."""
    unknown = sorted(set(given or {}) - set(RAW_FIELDS))
    if unknown:
        raise PricerError(f"--map {', '.join(unknown)}: fields are {', '.join(RAW_FIELDS)}")
    mapping = {f: f for f in RAW_FIELDS if f in columns}
    for layout in LAYOUTS.values():
        if layout["title"] in columns and layout["price"] in columns:
            mapping = {f: c for f, c in layout.items() if c in columns}
    mapping.update(given or {})
    missing = [c for c in mapping.values() if c not in columns]
    if missing or "title" not in mapping or "price" not in mapping:
        raise PricerError(f"{path}: cannot tell the title and price columns (has {', '.join(columns[:12])}); give "
                          "--map title=COLUMN --map price=COLUMN" + (f"; no column {', '.join(missing)}" if missing else ""))
    return mapping


def read_table_records(path: Path, given: dict[str, str] | None = None):
    """Yield (row number, raw record, "") from a CSV/TSV/Parquet of listings, its columns mapped to the fields of a
    raw record; ` | `-separated feature lists become lines, a `A | B | C` category path its first part."""
    import pandas as pd

    if not path.exists():
        raise PricerError(f"{path}: no such file")
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, sep="\t" if path.suffix == ".tsv" else ",")
    except Exception as e:
        raise PricerError(f"{path}: not a readable table ({type(e).__name__}: {first_line(e)})") from None
    mapping = column_map([str(c) for c in table.columns], given, path)
    for n, row in enumerate(table.to_dict("records"), start=2 if path.suffix != ".parquet" else 1):
        record = {field: row.get(column) for field, column in mapping.items()}
        if isinstance(record.get("features"), str):
            parts = (part.strip() for part in record["features"].split(" | "))
            record["features"] = [part for part in parts if part and not part.startswith(BOILERPLATE)]
        if isinstance(record.get("category"), str):
            record["category"] = record["category"].split("|")[0].strip() or None
        yield n, record, ""


def curate_file(path: Path, tokenizer, rules: CurationRules | None = None, category: str | None = None,
                columns: dict[str, str] | None = None):
    """Items from one raw file (Amazon Reviews 2023 .jsonl[.gz], or a table of listings in another layout) and a
    Counter of why the others were dropped."""
    table = path.suffix in TABLE_SUFFIXES or bool(columns)
    category = category or (None if table else category_from_filename(path))
    records = read_table_records(path, columns) if table else read_raw_records(path)
    items, dropped = [], Counter()
    for _, record, problem in records:
        own = (record or {}).pop("category", None) if table else None
        item, why = (None, problem) if problem else curate_record(record, category or own, tokenizer, rules)
        if item is None:
            dropped[why] += 1
        else:
            items.append(item)
    return items, dropped


def balance(items: list[Item], rules: BalanceRules | None = None, seed: int = 42) -> list[Item]:
    """Sample so that no price slot (whole dollars) dominates, favouring categories by weight, as the reference did."""
    rules = rules or BalanceRules()
    slots = defaultdict(list)
    for item in items:
        slots[round(item.price)].append(item)
    rng = np.random.default_rng(seed)
    kept = []
    for slot in sorted(slots):
        members = slots[slot]
        if slot >= rules.keep_whole_from or len(members) <= rules.slot_cap:
            kept.extend(members)
            continue
        weights = np.array([rules.weight(it.category) for it in members], dtype=float)
        chosen = rng.choice(len(members), size=rules.slot_cap, replace=False, p=weights / weights.sum())
        kept.extend(members[i] for i in sorted(chosen))
    random.Random(seed).shuffle(kept)
    return kept


def split(items: list[Item], test_size: int | float, seed: int = 42) -> tuple[list[Item], list[Item]]:
    """Shuffle with the seed, then cut: the same items and seed give the same split everywhere."""
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    n_test = round(len(shuffled) * test_size) if isinstance(test_size, float) and test_size < 1 else int(test_size)
    if not 0 < n_test < len(shuffled):
        raise PricerError(f"test size {test_size} leaves no train or no test items out of {len(shuffled)}")
    return shuffled[n_test:], shuffled[:n_test]


HUB_DATASET = "McAuley-Lab/Amazon-Reviews-2023"


def download_category(category: str) -> Path:
    """Fetch one category's raw metadata file from the Hugging Face hub (no dataset script, so datasets 4.x works)."""
    try:
        from huggingface_hub import hf_hub_download
    except ModuleNotFoundError:
        raise PricerError("loading from the hub needs `pip install huggingface_hub`") from None
    if os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false"):
        _check_reachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        return Path(
            hf_hub_download(HUB_DATASET, f"raw/meta_categories/meta_{category}.jsonl", repo_type="dataset")
        )
    except Exception as e:
        raise PricerError(f"cannot download {category!r} from the Hugging Face hub ({HUB_DATASET}): {first_line(e)}") from None


def _check_reachable(endpoint: str, timeout: float = 5.0) -> None:
    """Fail in seconds with one line, rather than after the hub client's retries, where there is no network."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError as e:
        raise PricerError(
            f"cannot reach the Hugging Face hub at {url.hostname} ({e.strerror or e}); "
            "download the raw meta_<Category>.jsonl yourself and pass its path"
        ) from None
