import numpy as np
import pytest
from conftest import run_cli

from pricer import PricerError
from pricer.data import read_items
from pricer.ensemble import EnsemblePredictor
from pricer.predictors import load_predictor, make_predictor
from pricer.retrieval import PriceIndex


@pytest.fixture(scope="module")
def pool(amazon):
    return read_items(f"{amazon / 'dev.jsonl'}[:900]"), read_items(f"{amazon / 'dev.jsonl'}[1250:1450]")


def mae(p, items):
    return float(np.mean(np.abs(p.predict([it.text for it in items]) - [it.price for it in items])))


def test_stacked_ensemble_learns_from_out_of_fold_predictions(pool, tmp_path):
    train, test = pool
    ensemble = EnsemblePredictor(members=["tfidf", "features", "constant-median"], folds=3).fit(train, progress=lambda *_: None)
    weights = dict(zip(ensemble.names, ensemble.stacker.coef_))
    assert weights["tfidf"] > weights["constant-median"]  # in-sample predictions would also favour tfidf, but far more
    assert mae(ensemble, test) < mae(make_predictor("features").fit(train), test)
    ensemble.save(tmp_path / "ens")
    texts = [it.text for it in test[:5]]
    assert np.allclose(load_predictor(tmp_path / "ens").predict(texts), ensemble.predict(texts))


def test_ensemble_refuses_what_it_cannot_refit(pool):
    with pytest.raises(PricerError, match="at least two"):
        EnsemblePredictor(members=["tfidf"]).fit(pool[0])
    with pytest.raises(PricerError, match="cannot refit"):
        EnsemblePredictor(members=["tfidf", "smollm2-135m"]).fit(pool[0])


def test_fit_ensemble_command(amazon, tmp_path):
    result = run_cli("fit", "ensemble", "--members", "tfidf", "--members", "bow", "--folds", "2",
                     "--train", f"{amazon / 'dev.jsonl'}[:400]", "--out", tmp_path / "e")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "out-of-fold error" in result.stdout and "stacker weights" in result.stdout
    assert load_predictor(tmp_path / "e").names == ["tfidf", "bow"]


def test_index_finds_the_item_itself_and_its_neighbours(amazon, tmp_path):
    items = read_items(f"{amazon / 'dev.jsonl'}[:200]")
    PriceIndex.build(items).save(tmp_path / "idx")
    index = PriceIndex.load(tmp_path / "idx")
    hits = index.query([items[7].text, items[42].text], k=3)
    assert hits[0][0]["price"] == items[7].price and hits[0][0]["similarity"] > 0.99
    assert hits[1][0]["title"] == items[42].title and len(hits[1]) == 3
    assert hits[0][0]["similarity"] >= hits[0][1]["similarity"] >= hits[0][2]["similarity"]
    shown = run_cli("index", "query", tmp_path / "idx", items[7].text, "--k", "2")
    assert shown.returncode == 0 and f"${items[7].price:,.2f}" in shown.stdout
    missing = run_cli("index", "query", tmp_path / "nothing", "text")
    assert missing.returncode == 2 and "not a pricer index" in missing.stderr


def test_frontier_prompt_carries_the_nearest_known_products(amazon, tmp_path):
    from pricer.frontier import FrontierPredictor

    items = read_items(f"{amazon / 'dev.jsonl'}[:60]")
    PriceIndex.build(items).save(tmp_path / "idx")
    messages = FrontierPredictor(index=str(tmp_path / "idx"), k=3).messages(items[5].text)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"] and messages[2]["content"] == "Price is $"
    user = messages[1]["content"]
    assert user.count("Potentially related product:") == 3 and f"Price is ${items[5].price:.2f}" in user
    assert user.rstrip().endswith(items[5].text.strip())
