"""`pricer price --ray` on a local Ray that the command starts on this machine: the same prices as the single-process
path for TF-IDF and for a tiny language model, a finished job not priced again, a table without text refused and an
empty one finished."""

import pandas as pd
import pytest

import pricer
from conftest import run_cli

pytestmark = pytest.mark.slow
ON_RAY = ["--ray", "--workers", "2", "--cpus-per-worker", "0.5"]  # two replicas on the 2 CPUs, one left for reading


def listings(amazon, path, rows):
    items = pricer.read_items(amazon / "dev.jsonl")
    frame = pd.DataFrame({"sku": [f"{n:06d}" for n in range(rows)],
                          "title": [items[n % len(items)].title or "" for n in range(rows)],
                          "description": [items[n % len(items)].text for n in range(rows)]})
    frame.loc[7, ["title", "description"]] = ""  # a row without text
    frame.to_csv(path, index=False)
    return path


def priced_both_ways(catalog, model, tmp_path, *extra):
    local = run_cli("price", catalog, "--model", model, "--out", tmp_path / "local", "--chunk-rows", "300", *extra)
    assert local.returncode == 0, local.stderr[-2000:]
    on_ray = run_cli("price", catalog, "--model", model, "--out", tmp_path / "ray", "--chunk-rows", "300", *ON_RAY, *extra)
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    assert "priced on Ray by 2 replicas" in on_ray.stdout and "1 without text" in on_ray.stdout
    by_sku = lambda frame: frame.sort_values("sku", ignore_index=True)  # Ray's parts do not keep the input's order
    return by_sku(pd.read_parquet(tmp_path / "local")), by_sku(pd.read_parquet(tmp_path / "ray")), on_ray


def test_tfidf_on_ray_prices_as_one_process_and_a_finished_job_is_kept(amazon, tmp_path):
    model = tmp_path / "tfidf"
    pricer.fit("tfidf", f"{amazon / 'train.jsonl'}[:1500]").save(model)
    catalog = listings(amazon, tmp_path / "listings.csv", 1_200)
    local, on_ray, _ = priced_both_ways(catalog, model, tmp_path)
    assert sorted(on_ray["sku"]) == [f"{n:06d}" for n in range(1_200)]  # every row once, an id kept as text
    assert len(on_ray) == len(local) and on_ray["estimate"].isna().sum() == 1
    for column in ("estimate", "low", "high"):
        assert on_ray[column].to_numpy() == pytest.approx(local[column].to_numpy(), abs=1e-6, nan_ok=True)

    again = run_cli("price", catalog, "--model", model, "--out", tmp_path / "ray", "--chunk-rows", "300", *ON_RAY,
                    "--format", "csv")
    assert again.returncode == 0 and "finished before, 0 priced now" in again.stdout
    assert len(pd.read_csv(tmp_path / "ray.csv", dtype={"sku": str})) == 1_200
    mixed = run_cli("price", catalog, "--model", model, "--out", tmp_path / "ray", "--chunk-rows", "300")
    assert mixed.returncode == 2 and "holds another pricing job (its engine differ)" in mixed.stderr


def test_a_language_model_on_ray_prices_as_one_process(amazon, priced_run, tmp_path):
    catalog = listings(amazon, tmp_path / "listings.csv", 48)
    local, on_ray, _ = priced_both_ways(catalog, priced_run, tmp_path, "--batch-size", "8")
    assert on_ray["estimate"].notna().sum() == 47
    assert on_ray["estimate"].to_numpy() == pytest.approx(local["estimate"].to_numpy(), abs=1e-6, nan_ok=True)


def test_a_table_without_text_is_refused_before_any_work(tmp_path, amazon):
    (tmp_path / "colours.csv").write_text("sku,colour\n1,red\n2,blue\n")
    model = tmp_path / "mean"
    pricer.fit("constant-mean", f"{amazon / 'train.jsonl'}[:100]").save(model)
    result = run_cli("price", tmp_path / "colours.csv", "--model", model, "--out", tmp_path / "out", *ON_RAY)
    assert result.returncode == 2 and "no product text: give a text, title or description column" in result.stderr
    (tmp_path / "empty.csv").write_text("sku,title\n")
    empty = run_cli("price", tmp_path / "empty.csv", "--model", model, "--out", tmp_path / "none", *ON_RAY)
    assert empty.returncode == 0 and empty.stdout.startswith("0 rows in 0 parts"), empty.stderr[-2000:]


def test_one_parquet_file_of_one_row_group_reaches_every_replica(amazon, tmp_path):
    frame = pd.read_csv(listings(amazon, tmp_path / "listings.csv", 1_200), dtype=str, keep_default_na=False)
    frame.to_parquet(tmp_path / "listings.parquet", row_group_size=len(frame))  # Ray reads it as a single block
    model = tmp_path / "mean"
    pricer.fit("constant-mean", f"{amazon / 'train.jsonl'}[:100]").save(model)
    result = run_cli("price", tmp_path / "listings.parquet", "--model", model, "--out", tmp_path / "ray",
                     "--chunk-rows", "300", *ON_RAY)
    assert result.returncode == 0, result.stderr[-3000:]
    # cut into blocks of about 300 rows' size (a part each), not priced as one block by one replica
    assert 2 <= len(list((tmp_path / "ray").glob("*.parquet"))) <= 12
    assert len(pd.read_parquet(tmp_path / "ray")) == 1_200
