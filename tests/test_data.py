import json

import pandas as pd
import pytest

from conftest import run_cli
from pricer import PricerError
from pricer.data.items import (
    MAX_TEXT_CHARS,
    ColumnMap,
    Item,
    parse_price,
    parse_source,
    read_items,
    read_items_with_report,
    write_items,
)


def test_reads_shared_dev_set_with_slices(amazon):
    dev = read_items(amazon / "dev.jsonl")
    assert len(dev) == 1750
    assert all(0.5 <= it.price <= 999.49 and it.text and it.title for it in dev)
    head, tail = read_items(f"{amazon / 'dev.jsonl'}[:1250]"), read_items(f"{amazon / 'dev.jsonl'}[1250:]")
    assert len(head) == 1250 and len(tail) == 500
    assert tail[0].text == dev[1250].text


def test_reads_shared_train_set_with_missing_categories(amazon):
    train = read_items(amazon / "train.jsonl")
    assert len(train) == 7428
    assert any(it.category is None for it in train) and any(it.category for it in train)


def test_parse_source_and_price():
    assert parse_source("a/b.jsonl[10:-5]") == (parse_source("a/b.jsonl")[0], slice(10, -5))
    assert parse_source("x.csv")[1] == slice(None)
    assert parse_price("$1,149.99 ") == 1149.99
    assert parse_price(12) == 12.0
    for bad in (None, "", "abc", "-3", 0, float("nan"), True, "$10 - $20", "1e308", 1e308, float("inf"), "Infinity",
                "1_000", "\u0661\u0662\u0663", "1,00", 10**400, 2_000_000):
        assert parse_price(bad) is None, bad


def test_csv_and_parquet_with_mapped_columns(tmp_path, amazon):
    items = read_items(f"{amazon / 'dev.jsonl'}[:20]")
    frame = pd.DataFrame({"description": [it.text for it in items], "cost": [it.price for it in items]})
    frame.to_csv(tmp_path / "items.csv", index=False)
    frame.to_parquet(tmp_path / "items.parquet")
    cols = ColumnMap(text="description", price="cost")
    for name in ("items.csv", "items.parquet"):
        got = read_items(tmp_path / name, cols)
        assert [it.price for it in got] == [it.price for it in items]
        assert got[3].text == items[3].text


def test_missing_column_is_named(tmp_path):
    (tmp_path / "a.csv").write_text("body,cost\nsome product,3.5\n")
    with pytest.raises(PricerError, match=r"no column 'price'.*--price-col"):
        read_items(tmp_path / "a.csv")
    with pytest.raises(PricerError, match=r"no column 'text' \(columns: body, cost\).*--text-col"):
        read_items(tmp_path / "a.csv", ColumnMap(price="cost"))


def test_bad_rows_are_skipped_counted_and_named(tmp_path):
    good = {"text": "A fine product", "price": 10}
    lines = [
        json.dumps(good).encode(),
        json.dumps({"text": "no price here"}).encode(),
        json.dumps({"text": "negative", "price": -4}).encode(),
        json.dumps({"text": "words", "price": "cheap"}).encode(),
        b'{"text": "caf\xe9", "price": 3}',
        b"{not json",
        json.dumps({"text": "x" * 1_000_000, "price": 99.0}).encode(),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    items, report = read_items_with_report(path)
    assert [it.price for it in items] == [10, 99.0]
    assert len(items[1].text) == MAX_TEXT_CHARS and report.truncated == 1
    assert [n for n, _ in report.skipped] == [2, 3, 4, 5, 6]
    reasons = dict(report.skipped)
    assert reasons[2] == "no price" and "not a positive number" in reasons[3] and reasons[5] == "not UTF-8"
    assert "5 rows skipped" in report.summary() and "line 2: no price" in report.summary()


@pytest.mark.slow
def test_bad_files_give_one_line_errors(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "noprices.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    (tmp_path / "data.txt").write_text("hello")
    for name, message in [
        ("missing.jsonl", "no such file"),
        ("empty.jsonl", "the file is empty"),
        ("noprices.jsonl", "no column 'price'"),
        ("data.txt", "unknown file type"),
    ]:
        result = run_cli("data", "stats", tmp_path / name, "--out", tmp_path / "stats")
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and name in lines[0], result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_stats_command_writes_numbers_and_charts(tmp_path, amazon):
    result = run_cli("data", "stats", f"{amazon / 'dev.jsonl'}[:300]", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    prices = sorted(it.price for it in read_items(f"{amazon / 'dev.jsonl'}[:300]"))
    assert stats["n"] == 300 and stats["price_min"] == prices[0] and stats["price_max"] == prices[-1]
    assert sum(stats["categories"].values()) == 300
    for png in ("prices.png", "categories.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_then_read_round_trip(tmp_path):
    items = [Item(text="t1", price=1.5, title="T1", category="Toys"), Item(text="t2", price=20, title="T2")]
    write_items(items, tmp_path / "out.jsonl")
    assert read_items(tmp_path / "out.jsonl") == items


def course_v2_items() -> list[dict]:
    """Rows in the schema of the course v2's hub datasets (ed-donner/items_lite): no `text` column."""
    return [
        {"title": f"Drill {i}", "category": "Tools", "price": 40.0 + i, "full": f"Drill {i}\nFull listing text {i}",
         "weight": 1.5, "summary": f"Title: Drill {i}\nCategory: Tools\nBrand: Acme\nDescription: a drill",
         "prompt": f"What does this cost to the nearest dollar?\n\nTitle: Drill {i}\n\nPrice is $", "id": i}
        for i in range(3)
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_course_v2_items_read_their_summary_or_the_column_asked(tmp_path, suffix):
    path = tmp_path / f"items_lite{suffix}"
    rows = course_v2_items()
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pd.DataFrame(rows).to_parquet(path)
    items = read_items(path)
    assert [it.text for it in items] == [r["summary"] for r in rows] and [it.price for it in items] == [40.0, 41.0, 42.0]
    assert items[0].title == "Drill 0" and items[0].category == "Tools"
    assert [it.text for it in read_items(path, ColumnMap(text="full"))] == [r["full"] for r in rows]
    assert read_items(path, ColumnMap(text="prompt"))[1].text == "Title: Drill 1"  # the product, not the question


@pytest.mark.slow
def test_course_v2_prompt_files_give_the_product_and_the_price_of_the_completion(tmp_path):
    path = tmp_path / "items_prompts_lite.jsonl"
    rows = [{"prompt": "What does this cost to the nearest dollar?\n\nTitle: Kettle\nBrand: Acme\n\nPrice is $", "completion": "25.00"},
            {"prompt": "How much does this cost to the nearest dollar?\n\nTitle: Lamp\n\nPrice is $", "completion": "no idea"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items, report = read_items_with_report(path)
    assert [(it.text, it.price) for it in items] == [("Title: Kettle\nBrand: Acme", 25.0)]
    assert report.skipped == [(2, "price 'no idea' is not a positive number")]
    result = run_cli("data", "stats", path, "--out", tmp_path / "stats", "--text", "prompt")
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_hub_sources_load_through_datasets_and_fail_in_one_line_offline(tmp_path):
    import pandas as pd

    folder = tmp_path / "items_lite"
    folder.mkdir()
    rows = course_v2_items()
    pd.DataFrame(rows[:2]).to_parquet(folder / "train.parquet")
    pd.DataFrame(rows[2:]).to_parquet(folder / "test.parquet")
    assert [it.price for it in read_items(f"hub:{folder}")] == [40.0, 41.0]  # a local dataset folder, split train
    assert [it.text for it in read_items(f"hub:{folder}:test")] == [rows[2]["summary"]]
    offline = run_cli("data", "stats", "hub:ed-donner/items_lite", "--out", tmp_path / "s", env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 2 and "hub:ed-donner/items_lite: cannot load it" in offline.stderr
    assert len(offline.stderr.strip().splitlines()) == 1
