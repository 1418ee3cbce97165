import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from pricer import PricerError
from pricer.data.items import read_items
from pricer.predictors.ensemble import EnsemblePredictor, member_template
from pricer.predictors.registry import load_predictor, make_predictor
from pricer.retrieval.index import PriceIndex


@pytest.fixture(scope="module")
def pool(amazon):
    return read_items(f"{amazon / 'dev.jsonl'}[:900]"), read_items(f"{amazon / 'dev.jsonl'}[1250:1450]")


def mae(p, items):
    return float(np.mean(np.abs(p.predict([it.text for it in items]) - [it.price for it in items])))


@pytest.mark.slow
def test_stacked_ensemble_learns_from_out_of_fold_predictions(pool, tmp_path):
    train, test = pool
    ensemble = EnsemblePredictor(members=["tfidf", "features", "constant-median"], folds=3).fit(train, progress=lambda *_: None)
    weights = dict(zip(ensemble.names, ensemble.stacker_model.coef_))
    assert weights["tfidf"] > weights["constant-median"]  # in-sample predictions would also favour tfidf, but far more
    assert mae(ensemble, test) < mae(make_predictor("features").fit(train), test)
    ensemble.save(tmp_path / "ens")
    texts = [it.text for it in test[:5]]
    assert np.allclose(load_predictor(tmp_path / "ens").predict(texts), ensemble.predict(texts))


@pytest.mark.slow
def test_boosted_stacker_is_saved_and_loaded(pool, tmp_path):
    train, test = pool
    ensemble = EnsemblePredictor(members=["tfidf", "features"], folds=3, stacker="boosted").fit(train, progress=lambda *_: None)
    assert mae(ensemble, test) < mae(make_predictor("features").fit(train), test)
    ensemble.save(tmp_path / "ens")
    loaded, texts = load_predictor(tmp_path / "ens"), [it.text for it in test[:20]]
    assert loaded.stacker == "boosted" and np.allclose(loaded.predict(texts), ensemble.predict(texts))
    with pytest.raises(PricerError, match="stacker must be linear or boosted, not 'trees'"):
        EnsemblePredictor(members=["tfidf", "features"], stacker="trees").fit(train)


def test_blend_is_the_geometric_mean_of_its_members(pool, tmp_path):
    """folds = 0: no stacker, each member fitted once on all the items, the prices' geometric mean."""
    train, test = pool
    blend = EnsemblePredictor(members=["tfidf", "features"], folds=0).fit(train, progress=lambda *_: None)
    texts = [it.text for it in test[:20]]
    members = [make_predictor(name).fit(train).predict(texts) for name in ("tfidf", "features")]
    assert np.allclose(blend.predict(texts), np.expm1((np.log1p(members[0]) + np.log1p(members[1])) / 2))
    blend.save(tmp_path / "blend")
    assert np.allclose(load_predictor(tmp_path / "blend").predict(texts), blend.predict(texts))
    with pytest.raises(PricerError, match="folds must be 0 .* or at least 2, not 1"):
        EnsemblePredictor(members=["tfidf", "features"], folds=1).fit(train)


def test_ensemble_refuses_what_it_cannot_refit(pool):
    with pytest.raises(PricerError, match="at least two"):
        EnsemblePredictor(members=["tfidf"]).fit(pool[0])
    with pytest.raises(PricerError, match="cannot refit"):
        EnsemblePredictor(members=["tfidf", "smollm2-135m"]).fit(pool[0])


@pytest.mark.slow
def test_fit_ensemble_command(amazon, tmp_path):
    result = run_cli("fit", "ensemble", "--members", "tfidf", "--members", "bow", "--folds", "2",
                     "--train", f"{amazon / 'dev.jsonl'}[:400]", "--out", tmp_path / "e")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "out-of-fold error" in result.stdout and "stacker weights" in result.stdout
    assert "tfidf: fold 1 of 2 done in" in result.stdout and "bow: fold 2 of 2 done in" in result.stdout
    assert load_predictor(tmp_path / "e").names == ["tfidf", "bow"]
    result = run_cli("fit", "ensemble", "--members", "tfidf", "--members", "bow", "--folds", "2", "--stacker", "boosted",
                     "--train", f"{amazon / 'dev.jsonl'}[:400]", "--out", tmp_path / "b")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "boosted stacker" in result.stdout and load_predictor(tmp_path / "b").stacker == "boosted"


@pytest.mark.slow
def test_ensemble_recipe_file(amazon, tmp_path):
    recipe = tmp_path / "stack.toml"
    recipe.write_text('[ensemble]\nmembers = ["tfidf", "features"]\nfolds = 2\n')
    result = run_cli("fit", recipe, "--train", f"{amazon / 'dev.jsonl'}[:300]", "--out", tmp_path / "e")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stacker weights" in result.stdout
    ensemble = load_predictor(tmp_path / "e")
    assert ensemble.names == ["tfidf", "features"] and ensemble.folds == 2

    recipe.write_text('[ensemble]\nmembers = ["tfidf", "features"]\nfold = 2\n')
    with pytest.raises(PricerError, match="unknown \\[ensemble\\] key.*fold"):
        make_predictor(str(recipe))
    nested = tmp_path / "nested.toml"
    nested.write_text(f'[ensemble]\nmembers = ["tfidf", "{tmp_path / "stack.toml"}"]\n')
    recipe.write_text('[ensemble]\nmembers = ["tfidf", "features"]\n')
    with pytest.raises(PricerError, match="do not nest"):
        make_predictor(str(nested)).fit(read_items(f"{amazon / 'dev.jsonl'}[:50]"))


def test_a_recipe_member_takes_settings_over_its_file(tmp_path):
    recipe = tmp_path / "head.toml"
    recipe.write_text('[train]\nbase = "smollm2-135m"\nhead = "regression"\n')
    assert member_template(str(recipe)) == ("head", "llm-recipe", {"recipe": str(recipe)})
    name, kind, params = member_template(f"{recipe} seed=7 epochs=3")
    assert name == "head-seed7-epochs3" and params == {"recipe": str(recipe), "overrides": {"seed": 7, "epochs": 3}}
    assert member_template(f"{recipe} index=runs/idx")[0] == "head-indexruns--idx"  # one folder under members/
    with pytest.raises(PricerError, match="speed: not a recipe setting"):
        member_template(f"{recipe} speed=7")
    with pytest.raises(PricerError, match="two members are named alike"):
        EnsemblePredictor(members=["tfidf", "tfidf"], folds=0).fit([])


def test_a_named_member_takes_settings_of_its_kind(pool, tmp_path):
    train, test = pool
    assert member_template("tfidf alpha=10") == ("tfidf-alpha10", "tfidf", {"alpha": 10})
    blend = EnsemblePredictor(members=["tfidf", "tfidf alpha=100"], folds=0).fit(train, progress=lambda *_: None)
    texts = [it.text for it in test[:20]]
    plain, heavy = (member.predict(texts) for member in blend.fitted)
    assert np.allclose(heavy, make_predictor("tfidf", alpha=100).fit(train).predict(texts))
    assert np.std(np.log(heavy)) < np.std(np.log(plain))  # the heavier ridge pulls toward the mean price
    blend.save(tmp_path / "blend")
    assert [m.alpha for m in load_predictor(tmp_path / "blend").fitted] == [1.0, 100]
    with pytest.raises(PricerError, match="alpha=much: alpha takes a number"):
        make_predictor("tfidf alpha=much")
    with pytest.raises(PricerError, match="alpah: not a setting of tfidf; known: alpha"):
        member_template("tfidf alpah=1")
    with pytest.raises(PricerError, match="epochs=1.5: epochs takes an integer"):
        make_predictor("encoder-minilm epochs=1.5")


@pytest.mark.slow
def test_a_fit_knows_which_sentence_embedders_it_needs_before_it_starts():
    """What `pricer fit` embeds first, with a progress bar, so the fit and its folds read cached vectors."""
    minilm = {"all-MiniLM-L6-v2"}
    assert make_predictor("tfidf").sentence_embedders() == set()
    assert make_predictor("embed-knn").sentence_embedders() == minilm
    assert make_predictor("sparse-mlp-embed").sentence_embedders() == minilm
    assert make_predictor("sparse-mlp").sentence_embedders() == set()
    assert make_predictor(str(Path(__file__).parents[1] / "recipes" / "cpu-stack.toml")).sentence_embedders() == minilm
    mpnet = make_predictor(str(Path(__file__).parents[1] / "recipes" / "cpu-stack-mpnet.toml")).sentence_embedders()
    assert mpnet == {"all-mpnet-base-v2"}
    assert EnsemblePredictor(members=["tfidf", "bow"]).sentence_embedders() == set()


def test_index_finds_the_item_itself_and_its_neighbours(amazon, tmp_path):
    items = read_items(f"{amazon / 'dev.jsonl'}[:200]")
    built = run_cli("index", "build", "--train", f"{amazon / 'dev.jsonl'}[:200]", "--out", tmp_path / "idx")
    assert built.returncode == 0, built.stderr[-2000:]
    index = PriceIndex.load(tmp_path / "idx")
    assert len(index.items) == 200 and index.faiss_index.ntotal == 200
    hits = index.query([items[7].text, items[42].text], k=3)
    assert hits[0][0]["price"] == items[7].price and hits[0][0]["similarity"] > 0.99
    assert hits[1][0]["title"] == items[42].title and len(hits[1]) == 3
    assert hits[0][0]["similarity"] >= hits[0][1]["similarity"] >= hits[0][2]["similarity"]
    shown = run_cli("index", "query", tmp_path / "idx", items[7].text, "--k", "2")
    assert shown.returncode == 0 and f"${items[7].price:,.2f}" in shown.stdout
    missing = run_cli("index", "query", tmp_path / "nothing", "text")
    assert missing.returncode == 2 and "not a pricer index" in missing.stderr


def test_an_index_is_built_with_the_embedder_it_is_given_and_queried_with_it(amazon, tmp_path):
    from pricer.retrieval.embeddings import resolve_embedder

    folder = resolve_embedder("all-MiniLM-L6-v2")  # a sentence-transformers folder, as a user's own model would be
    items = read_items(f"{amazon / 'dev.jsonl'}[:30]")
    built = run_cli("index", "build", "--train", f"{amazon / 'dev.jsonl'}[:30]", "--out", tmp_path / "idx",
                    "--embedder", folder)
    assert built.returncode == 0, built.stderr[-2000:]
    index = PriceIndex.load(tmp_path / "idx")
    assert index.embedder == folder and index.query([items[3].text], k=1)[0][0]["title"] == items[3].title
    wrong = run_cli("index", "build", "--train", f"{amazon / 'dev.jsonl'}[:30]", "--out", tmp_path / "idx2",
                    "--embedder", str(tmp_path / "no-such-model"))
    assert wrong.returncode == 2 and "cannot load embedding model" in wrong.stderr


@pytest.mark.slow
def test_embedding_reports_progress_and_keeps_what_an_interrupted_run_embedded(amazon, monkeypatch):
    from pricer.retrieval import embeddings

    monkeypatch.setattr(embeddings, "SLICE", 2)
    texts = [f"{it.text} (edition {n})" for n, it in enumerate(read_items(f"{amazon / 'dev.jsonl'}[:5]"))]
    calls = []
    first = embeddings.embed(texts + texts[:1], on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)] and first.shape == (6, 384)
    assert np.allclose(first[0], first[5]) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)

    more = [t + " again" for t in texts]

    def stop_after_one_slice(done, total):
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embeddings.embed(more, on_progress=stop_after_one_slice)
    calls.clear()
    embeddings.embed(more, on_progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 3)  # the first slice of two was kept


@pytest.mark.slow
def test_frontier_prompt_carries_the_nearest_known_products(amazon, tmp_path):
    from pricer.predictors.frontier import FrontierPredictor

    items = read_items(f"{amazon / 'dev.jsonl'}[:60]")
    PriceIndex.build(items).save(tmp_path / "idx")
    messages = FrontierPredictor(index=str(tmp_path / "idx"), k=3).messages(items[5].text)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"] and messages[2]["content"] == "Price is $"
    user = messages[1]["content"]
    assert user.count("Potentially related product:") == 3 and f"Price is ${items[5].price:.2f}" in user
    assert user.rstrip().endswith(items[5].text.strip())


@pytest.mark.slow
def test_language_model_recipe_as_an_ensemble_member(tiny_base, amazon, tmp_path):
    """A recipe file as a member: the LM is trained on every fold (with an index of that fold's items for its prompts)
    and once on all items; the saved ensemble holds the final run and its index, and needs nothing else to load.
    A fold's run is deleted once its predictions are kept; fitting again trains nothing anew."""
    import os
    import shutil

    from pricer.retrieval.embeddings import DEFAULT_EMBEDDER, resolve_embedder

    recipe = tmp_path / "tiny-regression.toml"
    recipe.write_text(f'[train]\nbase = "{tiny_base}"\nhead = "regression"\nlora_r = 0\nmax_steps = 3\nbatch_size = 4\n'
                      f'learning_rate = 1e-3\nretrieval = true\nk = 2\nretrieval_embedder = "{resolve_embedder(DEFAULT_EMBEDDER)}"\n')
    args = ["fit", "ensemble", "--members", "tfidf", "--members", recipe, "--folds", "2",
            "--train", f"{amazon / 'dev.jsonl'}[:40]", "--out", tmp_path / "ens"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "tiny-regression: out-of-fold error" in first.stdout
    member = tmp_path / "ens" / "members" / "tiny-regression" / "run"
    assert (member / "model").is_dir() and (member / "index" / "index.json").exists()
    assert PriceIndex.load(member / "index").embedder == resolve_embedder(DEFAULT_EMBEDDER)  # the recipe's embedder
    assert not list(member.glob("checkpoint-*"))

    moved = tmp_path / "moved"
    shutil.move(tmp_path / "ens", moved)  # the ensemble is self-contained: its member's index travels with it
    texts = [it.text for it in read_items(f"{amazon / 'dev.jsonl'}[1250:1254]")]
    assert np.isfinite(load_predictor(moved).predict(texts)).all()

    cache = Path(os.environ["PRICER_CACHE"])
    recipe_runs = [r for r in (cache / "runs").iterdir() if r.name.startswith("tiny-regression-")]
    assert len(recipe_runs) == 1  # the final fit's; the folds' runs are gone, their predictions kept
    kept = {f: f.stat().st_mtime_ns for f in (cache / "folds").glob("*.npy")}
    assert len(kept) >= 2
    again = run_cli(*args[:-1], tmp_path / "ens2")
    assert again.returncode == 0 and again.stderr.count("reusing the finished run") == 1, again.stderr[-2000:]
    assert {f: f.stat().st_mtime_ns for f in kept} == kept  # the folds were read back, not trained and written again
    assert "tiny-regression: out-of-fold error" in again.stdout


@pytest.mark.slow
def test_two_seeds_of_one_recipe_blend(tiny_base, amazon, tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(f'[train]\nbase = "{tiny_base}"\nhead = "regression"\nlora_r = 0\nmax_steps = 2\nbatch_size = 4\n')
    result = run_cli("fit", "ensemble", "--members", recipe, "--members", f"{recipe} seed=7", "--folds", "0",
                     "--train", f"{amazon / 'dev.jsonl'}[:24]", "--out", tmp_path / "seeds")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = {name: tmp_path / "seeds" / "members" / name / "run" for name in ("tiny", "tiny-seed7")}
    seeds = {name: json.loads((run / "train_config.json").read_text())["seed"] for name, run in runs.items()}
    assert seeds == {"tiny": 42, "tiny-seed7": 7}
    texts = [it.text for it in read_items(f"{amazon / 'dev.jsonl'}[1250:1253]")]
    blend, members = load_predictor(tmp_path / "seeds"), [load_predictor(run) for run in runs.values()]
    guesses = [m.predict(texts) for m in members]
    assert not np.allclose(guesses[0], guesses[1])  # two seeds, two different models
    assert blend.predict(texts) == pytest.approx(np.sqrt((guesses[0] + 1) * (guesses[1] + 1)) - 1, rel=1e-5)
