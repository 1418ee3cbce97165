import gzip
import json
from collections import Counter

import pytest

from conftest import run_cli
from pricer import PricerError
from pricer.data.curation import (
    BalanceRules,
    CurationRules,
    WordTokenizer,
    balance,
    curate_file,
    curate_record,
    download_category,
    load_tokenizer,
    split,
)
from pricer.data.text import product_text, scrub, scrub_details
from pricer.data.items import Item, parse_price, read_items

FEATURES = [
    "Stainless steel body with a brushed finish that resists fingerprints and keeps its shine for years of daily use",
    "Twelve cup glass carafe with a drip-free spout, an ergonomic handle and clear measurement marks on both sides",
    "Programmable timer lets you wake up to fresh coffee; auto shut-off after two hours keeps the kitchen safe",
    "Removable water reservoir with a window so you can see how much is left, easy to fill at the sink",
]


def raw_record(title="Acme Deluxe Coffee Maker", price=49.99, features=FEATURES * 2, **extra):
    """A record shaped exactly like Amazon Reviews 2023 metadata: lists, a details dict, a price."""
    return {
        "main_category": "Appliances",
        "title": title,
        "average_rating": 4.3,
        "features": list(features),
        "description": ["The Acme Deluxe brews a full pot in minutes. Model ACM12345XZ fits most kitchens."],
        "price": price,
        "details": {
            "Brand": "Acme",
            "Batteries Included?": "No",
            "Date First Available": "March 3, 2021",
            "Best Sellers Rank": {"Home & Kitchen": 12345},
            "Capacity": "12 Cups",
        },
        **extra,
    }


def test_scrub_drops_part_numbers_and_noise():
    assert scrub('Fits model ABC12345 and "XL" [new] {2 pack}') == "Fits model and XL new 2 pack"
    assert scrub("short 123456 words a1b2c3d4") == "short 123456 words"
    cleaned = scrub_details('{"Batteries Included?": "No", "Date First Available": "May 1", "Brand": "Acme"}')
    assert "Batteries" not in cleaned and "Date First" not in cleaned and "Acme" in cleaned


def test_curate_record_follows_the_rules():
    tok = WordTokenizer()
    item, why = curate_record(raw_record(), "Appliances", tok)
    assert why == "" and item.price == 49.99 and item.category == "Appliances"
    assert item.text.startswith("Acme Deluxe Coffee Maker")
    assert "ACM12345XZ" not in item.text and "Batteries" not in item.text and "Date First" not in item.text
    assert len(tok.encode(item.text)) <= 160


@pytest.mark.parametrize(
    "record, reason",
    [
        (raw_record(price=None), "no price"),
        (raw_record(price="None"), "no price"),
        (raw_record(price=0.49), "price out of band"),
        (raw_record(price=1000), "price out of band"),
        (raw_record(features=["tiny"]), "too few characters"),
        (raw_record(title=""), "no title"),
    ],
)
def test_curate_record_drops_with_reason(record, reason):
    assert curate_record(record, "Appliances", WordTokenizer()) == (None, reason)


def test_token_floor_and_ceiling_use_the_given_tokenizer():
    tok = WordTokenizer()
    long_record = raw_record(features=FEATURES * 4)
    item, _ = curate_record(long_record, "Appliances", tok)
    assert len(tok.encode(item.text)) == 160
    sparse = raw_record(features=["x" * 400])  # many characters, few tokens
    assert curate_record(sparse, "Appliances", tok) == (None, "too few tokens")


@pytest.mark.slow
def test_llama3_tokenizer_encodes_every_price_as_one_token():
    tok = load_tokenizer("llama3")
    assert all(len(tok.encode(str(n), add_special_tokens=False)) == 1 for n in (0, 7, 42, 999))
    item, _ = curate_record(raw_record(features=FEATURES * 4), "Appliances", tok)
    assert 150 < len(tok.encode(item.text, add_special_tokens=False)) <= 161  # decode/re-encode may shift by one


def test_balance_caps_cheap_slots_and_favours_weighted_categories():
    items = [Item(text=f"a{i}", price=10.2, category="Automotive") for i in range(300)]
    items += [Item(text=f"t{i}", price=9.8, category="Toys") for i in range(300)]
    items += [Item(text=f"e{i}", price=500, category="Toys") for i in range(50)]
    rules = BalanceRules(slot_cap=100, keep_whole_from=240)
    kept = balance(items, rules, seed=1)
    slots = Counter(round(it.price) for it in kept)
    assert slots[10] == 100 and slots[500] == 50
    cats = Counter(it.category for it in kept if round(it.price) == 10)
    assert cats["Toys"] > 2 * cats["Automotive"]  # weight 5 against 1
    assert kept == balance(items, rules, seed=1)


def test_split_is_seeded_and_disjoint():
    items = [Item(text=str(i), price=i + 1) for i in range(100)]
    train, test = split(items, 10, seed=42)
    assert len(train) == 90 and len(test) == 10 and not {it.text for it in train} & {it.text for it in test}
    assert (train, test) == split(items, 10, seed=42) and test != split(items, 10, seed=7)[1]
    with pytest.raises(PricerError):
        split(items, 100)


def test_curate_command_on_gzipped_raw_file(tmp_path):
    records = [raw_record(title=f"Acme Coffee Maker model {i}", price=10 + i) for i in range(40)]
    records += [raw_record(price=None), raw_record(features=["short"])]
    path = tmp_path / "meta_Appliances.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
        f.write("{broken\n")
    result = run_cli("data", "curate", path, "--out", tmp_path / "out", "--tokenizer", "words", "--test-size", "8")
    assert result.returncode == 0, result.stderr
    train, test = read_items(tmp_path / "out" / "train.jsonl"), read_items(tmp_path / "out" / "test.jsonl")
    assert len(train) == 32 and len(test) == 8 and all(it.category == "Appliances" for it in train + test)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["dropped"] == {"no price": 1, "too few characters": 1, "not JSON (Expecting property name enclosed in double quotes)": 1}


def test_curate_file_counts_drops(tmp_path):
    path = tmp_path / "raw_meta_Toys_and_Games.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [raw_record(), raw_record(price=2000)]) + "\n")
    items, dropped = curate_file(path, WordTokenizer())
    assert len(items) == 1 and items[0].category == "Toys_and_Games" and dropped == {"price out of band": 1}


@pytest.mark.slow
def test_hub_download_fails_with_one_clear_line_without_internet(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there, as nothing answers offline
    with pytest.raises(PricerError, match=r"cannot reach the Hugging Face hub at 127.0.0.1"):
        download_category("Appliances")
    for offline, message in (("0", "cannot reach the Hugging Face hub"), ("1", "cannot download 'Appliances'")):
        result = run_cli("data", "curate", "hub:Appliances", "--out", tmp_path, env={"HF_HUB_OFFLINE": offline})
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert message in result.stderr


@pytest.mark.slow
def test_listings_in_another_layout_are_mapped_and_curated_by_the_same_rules(tmp_path):
    """The real 2020 sample (PromptCloud's columns, prices as text such as "$237.68" or a range) and a small table with
    columns of its own, mapped with --map."""
    import pandas as pd

    from conftest import shared_data

    sample = shared_data() / "extra" / "amazon-2020-sample.csv"
    items, dropped = curate_file(sample, WordTokenizer())
    table = pd.read_csv(sample, dtype=str, keep_default_na=False)
    unpriced = sum(parse_price(p) is None for p in table["Selling Price"])  # ranges, blanks
    assert dropped["no price"] == unpriced > 0 and len(items) + sum(dropped.values()) == len(table)
    assert items and all(0.5 <= it.price <= 999.49 for it in items)
    assert Counter(it.category for it in items).most_common(1)[0][0] == "Toys & Games"
    assert not any("Make sure this fits" in it.text for it in items)

    rows = [{"Name": f"Acme Coffee Maker model {i}", "Cost": f"${10 + i}.99", "Bullets": " | ".join(FEATURES * 2)}
            for i in range(12)] + [{"Name": "Acme Mug", "Cost": "$5.00 - $9.00", "Bullets": " | ".join(FEATURES * 2)}]
    pd.DataFrame(rows).to_csv(tmp_path / "shop.csv", index=False)
    result = run_cli("data", "curate", tmp_path / "shop.csv", "--out", tmp_path / "out", "--tokenizer", "words",
                     "--test-size", "2", "--map", "title=Name", "--map", "price=Cost", "--map", "features=Bullets")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["kept"] == 12 and report["dropped"] == {"no price": 1}
    assert read_items(tmp_path / "out" / "train.jsonl")[0].text.startswith("Acme Coffee Maker model")
    unmapped = run_cli("data", "curate", tmp_path / "shop.csv", "--out", tmp_path / "o2", "--tokenizer", "words")
    assert unmapped.returncode == 2 and "cannot tell the title and price columns (has Name, Cost, Bullets)" in unmapped.stderr


def test_a_product_is_served_the_text_it_would_be_trained_on():
    """One text builder: a raw record's curated text (before the token cut), the service's text for the same fields,
    and an offer's text are the same function of title, description, features and details."""
    from pricer.deals.offers import Offer
    from pricer.serving.schemas import ProductIn

    record = {"title": "Acme Drip Coffee Maker 12-Cup", "price": "$49.99", "description": ["Acme Drip Coffee Maker 12-Cup",
              "Brews a full pot in ten minutes. Model ACM12345X"], "features": FEATURES,
              "details": {"Brand": "Acme", "Date First Available": "May 1", "Item Weight": "4 pounds"}}
    tokenizer = WordTokenizer()
    item, why = curate_record(record, "Appliances", tokenizer, CurationRules(min_tokens=0, max_tokens=10_000))
    served = ProductIn(title=record["title"], description=record["description"], features=record["features"],
                       details=record["details"]).joined()
    assert served == product_text(**{k: record[k] for k in ("title", "description", "features", "details")})
    assert why == "" and item.text == tokenizer.decode(tokenizer.encode(served))  # the curated text is cut by tokens
    assert served.startswith("Acme Drip Coffee Maker 12-Cup\nBrews a full pot") and "ACM12345X" not in served
    assert "Date First" not in served and served.count("Acme Drip Coffee Maker") == 1
    offer = Offer(title=record["title"], description=" ".join(record["description"]), price=30.0)
    assert offer.text == product_text(record["title"], " ".join(record["description"]))
