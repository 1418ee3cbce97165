"""Offers from RSS/Atom feeds (a URL or a file, parsed by feedparser) and from JSON, JSONL or CSV files.

An offer whose price cannot be read is counted and skipped, never guessed: a feed entry's price is its own price field
or the one dollar amount in its title ("... for $49.99"); a title with several amounts ("$50 off $200") is skipped.
"""

import csv
import html
import io
import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from pricer.errors import PricerError
from pricer.data.items import parse_price
from pricer.data.text import product_text

TABULAR = (".json", ".jsonl", ".csv")
DOLLARS = re.compile(r"\$\s?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)")
FETCH_ATTEMPTS = 3


@dataclass
class Offer:
    title: str
    description: str
    price: float
    url: str = ""

    @property
    def text(self) -> str:
        return product_text(self.title, self.description)

    @property
    def key(self) -> str:
        """What makes two sightings the same offer: its URL, else its title and price."""
        return self.url or f"{self.title}|{self.price:.2f}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class OfferRead:
    source: str
    offers: list[Offer]
    no_price: int = 0  # entries skipped because no price could be read
    no_text: int = 0   # entries without a title or a description
    not_a_price: Counter = field(default_factory=Counter)  # reason -> entries whose price is not the product's


# Offers whose figure is not what the product costs, found in the title or the offer's URL (deal sites put the terms
# in it: ".../Galaxy-A16-Mint-Mobile-Android-Phone-for-1-a-year-of-Unlimited..."). Checked in this order.
NOT_A_PRICE = {
    "a phone plan": re.compile(r"\bon (?:mint|visible|verizon|at&t|t-mobile|boost|cricket|metro|tracfone|straight talk)"
                               r"(?: mobile| wireless)?\b|\bwith (?:a |an )?(?:new )?(?:line|plan|activation)\b|/mo\b|"
                               r"\bper month\b|\ba month of\b", re.I),
    "a trade-in price": re.compile(r"\bwith (?:a |an )?(?:eligible )?trade-?in\b", re.I),
    "a subscription": re.compile(r"\bsubscription\b|\blifetime access\b|\bmembership\b", re.I),
    "a gift card": re.compile(r"\be?-?gift ?cards?\b", re.I),
}
_AMOUNT_OFF = re.compile(r"\$?(\d{1,3}(?:[ ,]\d{3})+|\d+)(?:\.(\d{2}))?\s+off\b", re.I)


def not_a_price(title: str, url: str, price: float) -> str | None:
    """Why an offer's price is not what the product costs (a plan, a trade-in, a subscription, a gift card, or the
    figure being the discount itself: "$350 off" offered at $350); None for a product's price."""
    slug = re.sub(r"[-_/]+", " ", urlparse(url).path) if url else ""
    text = f"{title} {slug}"
    for reason, pattern in NOT_A_PRICE.items():
        if pattern.search(text):
            return reason
    for whole, cents in _AMOUNT_OFF.findall(text):
        if abs(float(re.sub(r"[ ,]", "", whole) + "." + (cents or "0")) - price) < 0.01:
            return "a discount, not a price"
    return None


def read_offers(source: str) -> OfferRead:
    """Every offer of one source: an http(s) URL or a file path; .json/.jsonl/.csv are offer files, anything else a
    feed."""
    is_url = source.startswith(("http://", "https://"))
    if not is_url and not Path(source).is_file():
        raise PricerError(f"{source}: no such file (give a feed URL, a feed file, or a .json/.jsonl/.csv of offers)")
    data = fetch(source) if is_url else Path(source).read_bytes()
    suffix = Path(source.split("?")[0]).suffix.lower()
    rows = tabular_rows(source, data, suffix) if suffix in TABULAR else feed_rows(source, data)
    read = OfferRead(source, [])
    for row in rows:
        title, description = clean(row.get("title")), clean(row.get("description"))
        price, url = row.get("price"), str(row.get("url") or "")
        if not title and not description:
            read.no_text += 1
        elif price is None:
            read.no_price += 1
        elif reason := not_a_price(title, url, price):
            read.not_a_price[reason] += 1
        else:
            read.offers.append(Offer(title or description.split(". ")[0], description, price, url))
    return read


def fetch(url: str) -> bytes:
    """The body at a URL, tried FETCH_ATTEMPTS times with back-off; a one-line error naming the URL if all fail."""
    import httpx

    error = None
    for attempt in range(FETCH_ATTEMPTS):
        try:
            response = httpx.get(url, timeout=20, follow_redirects=True, headers={"User-Agent": "pricer-deals"})
            if response.status_code < 400:
                return response.content
            error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the feed is not there: asking again will not help
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"
        if attempt < FETCH_ATTEMPTS - 1:
            time.sleep(0.5 * 2**attempt)
    raise PricerError(f"{url}: could not fetch the feed ({error})")


def tabular_rows(source: str, data: bytes, suffix: str) -> list[dict]:
    text = data.decode("utf-8-sig", errors="replace")
    if suffix == ".csv":
        try:
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
        except csv.Error as e:
            raise PricerError(f"{source}: not a readable CSV ({e})") from None
        if rows and not {"title", "description"} & set(rows[0]):
            found = ", ".join(rows[0])
            raise PricerError(f"{source}: a CSV of offers needs a title or description column; found {found}")
    elif suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise PricerError(f"{source} line {n}: not JSON ({e.msg})") from None
    else:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as e:
            raise PricerError(f"{source}: not JSON ({e.msg} at line {e.lineno})") from None
        rows = loaded.get("offers", loaded.get("deals")) if isinstance(loaded, dict) else loaded
        if not isinstance(rows, list):
            raise PricerError(f"{source}: expected a list of offers (or {{\"offers\": [...]}})")
    return [offer_fields(row) for row in rows if isinstance(row, dict)]


def offer_fields(row: dict) -> dict:
    """title, description, price, url of a row; the reference's memory.json rows ({"deal": {...}}) are read too."""
    if isinstance(row.get("deal"), dict):
        row = {**row["deal"], **{k: v for k, v in row.items() if k != "deal"}}
    description = (row.get("description") or row.get("product_description") or row.get("summary") or row.get("text")
                   or "")
    return {"title": clean(row.get("title")), "description": clean(description), "price": parse_price(row.get("price")),
            "url": clean(row.get("url") or row.get("link"))}


def feed_rows(source: str, data: bytes) -> list[dict]:
    import feedparser

    feed = feedparser.parse(data)
    if not feed.entries and (feed.bozo or not feed.get("version")):
        reason = getattr(feed.get("bozo_exception"), "args", [""])[0] or "no RSS or Atom elements"
        raise PricerError(f"{source}: not an RSS or Atom feed ({reason})")
    rows = []
    for entry in feed.entries:
        title = entry.get("title", "")
        description = entry.get("summary") or entry.get("description") or ""
        price = parse_price(entry.get("price") or entry.get("g_price") or entry.get("dealnews_price"))
        rows.append({"title": title, "description": description, "price": price or title_price(title),
                     "url": entry.get("link", "")})
    return rows


def title_price(title: str) -> float | None:
    """The one dollar amount a title names; None for none or several ("$50 off $200" says no price)."""
    amounts = {parse_price(a) for a in DOLLARS.findall(title or "")}
    return amounts.pop() if len(amounts) == 1 else None


def clean(value) -> str:
    """Text without HTML tags and entities, control characters (a terminal's escape sequences) or folded whitespace;
    a number or a list from a JSON file as its text, a nested object as nothing."""
    if isinstance(value, list):
        value = " ".join(clean(v) for v in value)
    elif isinstance(value, dict) or value is None:
        value = ""
    text = html.unescape(re.sub(r"<[^>]+>", " ", str(value)))
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
