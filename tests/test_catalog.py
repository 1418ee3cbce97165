"""`pricer price` on real files: a 20,000-row CSV of the shared texts, resumed after Ctrl-C and not repriced when done;
JSONL and Parquet inputs, globs, --map, rows without text, and inputs it must refuse."""

import json
import signal
import subprocess
import time

import pandas as pd
import pytest

import pricer
from conftest import PRICER, run_cli
from pricer import PricerError
from pricer.catalog.pricing import price_catalog


@pytest.fixture(scope="module")
def model(amazon, tmp_path_factory):
    path = tmp_path_factory.mktemp("catalog") / "tfidf"
    pricer.fit("tfidf", f"{amazon / 'train.jsonl'}[:1500]").save(path)
    return path


@pytest.fixture(scope="module")
def catalog(amazon, tmp_path_factory):
    """20,000 listings: the shared items' titles and texts over and over, each with an id that has leading zeros."""
    items = pricer.read_items(amazon / "dev.jsonl", amazon / "train.jsonl")
    rows = [{"sku": f"{n:08d}", "title": items[n % len(items)].title or "", "description": items[n % len(items)].text}
            for n in range(20_000)]
    path = tmp_path_factory.mktemp("catalog") / "listings.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_a_catalog_is_priced_resumed_and_not_priced_twice(model, catalog, tmp_path):
    out = tmp_path / "priced"
    args = [*PRICER, "price", str(catalog), "--model", str(model), "--out", str(out), "--chunk-rows", "500"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    def chunks_recorded() -> int:  # the manifest, not the part files: a part is written just before its record
        manifest = out / "_manifest.json"
        return len(json.loads(manifest.read_text())["done"]) if manifest.exists() else 0

    deadline = time.time() + 120
    while chunks_recorded() < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C after a few chunks
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "run the same command again to resume" in stderr
    done_before = len(json.loads((out / "_manifest.json").read_text())["done"])
    assert 3 <= done_before < 40

    resumed = run_cli("price", catalog, "--model", model, "--out", out, "--chunk-rows", "500", "--format", "csv")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{20_000 - 500 * done_before:,} priced now, {500 * done_before:,} before" in resumed.stdout
    priced = pd.read_parquet(out)
    assert len(priced) == 20_000 and priced["sku"].tolist() == [f"{n:08d}" for n in range(20_000)]
    assert priced["estimate"].notna().all() and (priced["low"] < priced["estimate"]).all()
    sample = priced.sample(20, random_state=0)
    texts = pd.read_csv(catalog, dtype=str).set_index("sku").loc[sample["sku"]]
    from pricer.data.text import product_text

    expected = pricer.load_predictor(model).estimate([product_text(t, d) for t, d in zip(texts["title"], texts["description"])])
    assert sample["estimate"].tolist() == pytest.approx([round(e["price"], 2) for e in expected], abs=0.006)
    assert len(pd.read_csv(tmp_path / "priced.csv", dtype={"sku": str})) == 20_000  # beside the Parquet folder

    again = run_cli("price", catalog, "--model", model, "--out", out, "--chunk-rows", "500")
    assert again.returncode == 0 and "0 priced now, 20,000 before" in again.stdout
    other = run_cli("price", catalog, "--model", model, "--out", out, "--chunk-rows", "400")
    assert other.returncode == 2 and "holds another pricing job (its chunk_rows differ)" in other.stderr


def test_jsonl_parquet_globs_maps_and_rows_without_text(tmp_path, amazon):
    model = pricer.fit("constant-mean", f"{amazon / 'train.jsonl'}[:200]")
    (tmp_path / "in").mkdir()
    pd.DataFrame({"id": [1, 2, 3], "Product Name": ["Desk lamp", "", "Cordless drill"]}).to_parquet(tmp_path / "in" / "a.parquet")
    (tmp_path / "in" / "b.jsonl").write_text('{"id": 4, "Product Name": "USB cable"}\n{"id": 5, "Product Name": null}\n')
    done = price_catalog(model, [str(tmp_path / "in" / "*")], tmp_path / "out", "constant", chunk_rows=2,
                         columns={"title": "Product Name"})
    assert done.rows == 5 and done.no_text == 2 and len(done.parts) == 3  # a.parquet in two chunks, b.jsonl in one
    priced = pd.read_parquet(tmp_path / "out").sort_values("id")
    assert priced["id"].tolist() == [1, 2, 3, 4, 5]
    assert priced["estimate"].isna().tolist() == [False, True, False, False, True]

    (tmp_path / "clash.csv").write_text("title,estimate\nDesk lamp,20\n")
    with pytest.raises(PricerError, match="already has a column named 'estimate'"):
        price_catalog(model, [str(tmp_path / "clash.csv")], tmp_path / "o2", "constant")
    (tmp_path / "no-text.csv").write_text("sku,colour\n1,red\n")
    with pytest.raises(PricerError, match="no product text: give a text, title or description column"):
        price_catalog(model, [str(tmp_path / "no-text.csv")], tmp_path / "o3", "constant")
    with pytest.raises(PricerError, match="no file matches it"):
        price_catalog(model, [str(tmp_path / "missing-*.csv")], tmp_path / "o4", "constant")
    with pytest.raises(PricerError, match="not a table pricer reads"):
        (tmp_path / "notes.txt").write_text("a lamp, $20")
        price_catalog(model, [str(tmp_path / "notes.txt")], tmp_path / "o5", "constant")
