"""A product's text: the one builder of what every model reads, for training items, the service and offers alike.

A model is served the text it was trained on: title, then description, features and details, with the curation's
scrubbing (punctuation noise and whitespace collapsed, long words with digits dropped as part numbers, details
phrases that say nothing about price removed) and its character ceiling. A description that repeats the title does
not repeat it in the text.
"""

import json
import re

CEILING_CHARS = 1120  # 160 tokens x 7 characters, as the course cut its texts

# Keys and phrases of the details field that say nothing about price (the reference's list).
DETAIL_REMOVALS = [
    '"Batteries Included?": "No"',
    '"Batteries Included?": "Yes"',
    '"Batteries Required?": "No"',
    '"Batteries Required?": "Yes"',
    "By Manufacturer",
    "Item",
    "Date First",
    "Package",
    ":",
    "Number of",
    "Best Sellers",
    "Number",
    "Product ",
]


def scrub_details(details: str) -> str:
    for phrase in DETAIL_REMOVALS:
        details = details.replace(phrase, "")
    return details


def scrub(text: str) -> str:
    """Collapse runs of punctuation noise and whitespace; drop long words with digits (part numbers)."""
    text = re.sub(r'[:\[\]"{}【】\s]+', " ", text).strip()
    text = text.replace(" ,", ",").replace(",,,", ",").replace(",,", ",")
    words = [w for w in text.split(" ") if len(w) < 7 or not any(c.isdigit() for c in w)]
    return " ".join(words)


def as_lines(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(v) for v in value if str(v).strip()]


def details_text(details) -> str:
    """Details as the curation reads them: a dict as JSON, anything else as text."""
    if isinstance(details, dict):
        return json.dumps(details, ensure_ascii=False) if details else ""
    return str(details or "")


def product_contents(title: str, description=None, features=None, details=None) -> str:
    """Description and features line by line, then the scrubbed details: the body before it is cut and cleaned."""
    contents = ""
    for part in (description, features):
        lines = as_lines(part)
        if lines:
            contents += "\n".join(lines) + "\n"
    details = details_text(details)
    if details:
        contents += scrub_details(details) + "\n"
    head = (title or "").strip().rstrip("…. ")
    if head and contents.startswith(head):
        contents = contents[len(head):].lstrip(" .…:-\n")
    return contents


def product_text(title: str, description=None, features=None, details=None, ceiling_chars: int = CEILING_CHARS) -> str:
    """The title line and the cleaned body, as curated training items have them."""
    return titled_text(title, product_contents(title, description, features, details), ceiling_chars)


def titled_text(title: str, contents: str, ceiling_chars: int = CEILING_CHARS) -> str:
    """The scrubbed title line over the scrubbed body of product_contents, cut at ceiling_chars."""
    return "\n".join(p for p in (scrub(str(title or "")), scrub(contents[:ceiling_chars])) if p)
