import json

import numpy as np
import pytest

from conftest import run_cli
from pricer import PricerError
from pricer.data.items import Item, read_items
from pricer.predictors.classical import text_features
from pricer.predictors.registry import RECIPES, load_predictor, make_predictor

CLASSICAL = ["random", "constant-mean", "constant-median", "features", "bow", "tfidf"]


@pytest.fixture(scope="module")
def small(amazon):
    train = read_items(amazon / "train.jsonl")[:1500] + read_items(f"{amazon / 'dev.jsonl'}[:1250]")
    return train, read_items(f"{amazon / 'dev.jsonl'}[1250:1450]")


def mae(predictor, items):
    return float(np.mean(np.abs(predictor.predict([it.text for it in items]) - [it.price for it in items])))


@pytest.mark.slow
@pytest.mark.parametrize("recipe", CLASSICAL)
def test_saved_predictor_gives_the_same_numbers_in_a_new_process(recipe, small, tmp_path):
    train, test = small
    predictor = make_predictor(recipe).fit(train)
    texts = [it.text for it in test[:5]]
    before = predictor.predict(texts)
    assert before.shape == (5,) and np.all(np.isfinite(before)) and np.all(before >= 0)
    predictor.save(tmp_path / recipe)
    assert np.array_equal(load_predictor(tmp_path / recipe).predict(texts), before)
    result = run_cli("predict", "--model", tmp_path / recipe, *texts)
    assert result.returncode == 0, result.stderr
    assert [float(x.lstrip("$").replace(",", "")) for x in result.stdout.split()] == pytest.approx(np.round(before, 2).tolist(), abs=0.006)


def test_learned_predictors_beat_the_constant(small):
    train, test = small
    constant = mae(make_predictor("constant-mean").fit(train), test)
    assert mae(make_predictor("tfidf").fit(train), test) < constant - 10
    assert mae(make_predictor("random"), test) > constant


def test_constant_statistics(small):
    train, _ = small
    prices = [it.price for it in train]
    assert make_predictor("constant-median").fit(train).predict(["x"])[0] == pytest.approx(np.median(prices))
    assert make_predictor("constant-mean").fit(train).predict(["x"])[0] == pytest.approx(np.mean(prices))


def test_random_is_uniform_in_range_and_repeatable():
    p = make_predictor("random")
    guesses = p.predict([f"product {i}" for i in range(2000)])
    assert guesses.min() >= 1 and guesses.max() <= 999 and 400 < guesses.mean() < 600
    assert np.array_equal(guesses, make_predictor("random").predict([f"product {i}" for i in range(2000)]))


def test_text_features_read_weight_and_size():
    f = text_features(["Heavy anvil, Item Weight 20 pounds", "Tiny bead, 8 ounces", "nothing"])
    assert f.shape == (3, 9)
    assert f[0, 2] > f[1, 2] > 0 and f[2, 3] == 0 and f[0, 3] == 1


def test_model_dir_of_another_kind_or_newer_format_is_refused(small, tmp_path):
    train, _ = small
    make_predictor("constant-mean").fit(train).save(tmp_path / "m")
    from pricer.predictors.classical import TfidfPredictor

    with pytest.raises(PricerError, match="holds a 'constant' predictor, not a 'tfidf' one"):
        TfidfPredictor.load(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "pricer.json").read_text())
    (tmp_path / "m" / "pricer.json").write_text(json.dumps({**manifest, "format": 99}))
    result = run_cli("predict", "--model", tmp_path / "m", "anything")
    assert result.returncode == 2 and "format 99" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "m" / "pricer.json").write_text(json.dumps({**manifest, "params": {"statistic": "mean", "trim": 0.1}}))
    result = run_cli("predict", "--model", tmp_path / "m", "anything")  # saved by a newer pricer with one more setting
    assert result.returncode == 2 and "does not know: trim" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "m" / "pricer.json").write_text(json.dumps({**manifest, "params": ["mean"]}))
    with pytest.raises(PricerError, match="params are not a table of settings"):
        load_predictor(tmp_path / "m")
    (tmp_path / "m" / "pricer.json").write_text(json.dumps({**manifest, "kind": "quantum"}))
    with pytest.raises(PricerError, match="unknown predictor kind 'quantum'"):
        load_predictor(tmp_path / "m")
    with pytest.raises(PricerError, match="neither a model directory nor a built-in"):
        load_predictor(tmp_path / "nowhere")
    with pytest.raises(PricerError, match="unknown predictor 'xgboost'"):
        make_predictor("xgboost")


@pytest.mark.slow
def test_fit_command_with_sliced_training_files(amazon, tmp_path):
    result = run_cli("fit", "tfidf", "--train", f"{amazon / 'train.jsonl'}[:300]", "--train", f"{amazon / 'dev.jsonl'}[:200]", "--out", tmp_path / "t")
    assert result.returncode == 0, result.stderr
    assert "500 items" in result.stdout
    assert json.loads((tmp_path / "t" / "pricer.json").read_text())["kind"] == "tfidf"


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["embed-knn", "embed-rf"])
def test_embedding_predictors_learn_and_reload(recipe, small, tmp_path):
    train, test = small
    train, test = train[-600:], test[:100]  # dev-like items only, to keep the embedding time small
    predictor = make_predictor(recipe).fit(train)
    assert mae(predictor, test) < mae(make_predictor("constant-mean").fit(train), test)
    predictor.save(tmp_path / recipe)
    texts = [it.text for it in test[:5]]
    result = run_cli("predict", "--model", tmp_path / recipe, *texts)
    assert result.returncode == 0, result.stderr
    assert [float(x.lstrip("$").replace(",", "")) for x in result.stdout.split()] == pytest.approx(np.round(predictor.predict(texts), 2).tolist(), abs=0.006)
    unseen = run_cli("predict", "--model", tmp_path / recipe, f"A {recipe} test text no cache holds: {tmp_path.name}")
    assert unseen.returncode == 0 and "Loading weights" not in unseen.stderr  # the sentence model loads quietly


def test_every_recipe_names_a_known_kind():
    from pricer.predictors.registry import KINDS

    assert all(kind in KINDS for kind, _ in RECIPES.values())


@pytest.mark.slow
def test_deep_network_learns_and_reloads(small, tmp_path):
    """The course v2's residual MLP at a tiny size: it learns (beats the constant on held-out items) and a saved one
    gives the same numbers."""
    from pricer.predictors.dnn import DeepNetPredictor

    train, test = small
    network = DeepNetPredictor(hidden=64, blocks=2, epochs=3).fit(train)
    assert mae(network, test) < mae(make_predictor("constant-median").fit(train), test)
    network.save(tmp_path / "dnn")
    texts = [it.text for it in test[:5]]
    assert np.allclose(load_predictor(tmp_path / "dnn").predict(texts), network.predict(texts), rtol=1e-5)
    assert load_predictor(tmp_path / "dnn").params()["hidden"] == 64


@pytest.mark.slow
def test_sparse_mlp_learns_and_reloads(small, tmp_path):
    """The Mercari-style MLP on TF-IDF, two small networks: it beats the constant on held-out items, a saved one
    gives the same numbers to a tenth of a percent (its first layer kept as float16), and a text of unknown words still
    gets a price."""
    import torch
    from safetensors.torch import load_file

    from pricer.predictors.sparse_mlp import SparseMLPPredictor

    train, test = small
    mlp = SparseMLPPredictor(networks=2, hidden=32).fit(train)
    assert mae(mlp, test) < mae(make_predictor("constant-median").fit(train), test) - 10
    mlp.save(tmp_path / "mlp")
    texts = [it.text for it in test[:5]] + ["zzqx"]
    before = mlp.predict(texts)
    assert np.all(np.isfinite(before)) and np.all(before >= 0)
    loaded = load_predictor(tmp_path / "mlp")  # its first layer stored as float16, read back into float32
    assert np.allclose(loaded.predict(texts), before, rtol=1e-3) and loaded.nets[0].first.weight.dtype == torch.float32
    stored = load_file(tmp_path / "mlp" / "networks.safetensors")
    assert stored["0.first.weight"].dtype == torch.float16 and stored["0.rest.1.weight"].dtype == torch.float32


@pytest.mark.slow
def test_sparse_mlp_with_sentence_vectors_learns_and_reloads(small, tmp_path):
    """sparse-mlp-embed: the MiniLM vector enters the first layer beside TF-IDF. It beats the constant, its networks
    take the vectors, and the saved model gives the same numbers (its layer's size read back from the weights)."""
    train, test = small
    train, test = train[-600:], test[:100]  # the embedding tests' texts: their vectors are cached by then
    mlp = make_predictor("sparse-mlp-embed")
    mlp.networks, mlp.hidden = 2, 32
    mlp.fit(train)
    assert mlp.vector_dims == 384 and mlp.nets[0].vectors is not None
    assert mae(mlp, test) < mae(make_predictor("constant-median").fit(train), test)
    mlp.save(tmp_path / "mlp")
    texts = [it.text for it in test[:5]] + ["zzqx"]
    loaded = load_predictor(tmp_path / "mlp")
    assert loaded.params()["embedder"] == "all-MiniLM-L6-v2" and loaded.vector_dims == 384
    assert np.allclose(loaded.predict(texts), mlp.predict(texts), rtol=1e-3)


def test_sparse_mlp_with_categories_learns_only_from_them_and_from_items_without_one(small):
    """`categories`: items of other categories are left out of the fit (here priced absurdly, so that learning from
    them would show); items without a category are kept. The same numbers as a fit on the kept items alone."""
    from dataclasses import replace

    from pricer.predictors.sparse_mlp import SparseMLPPredictor

    course = ["Appliances", "Automotive", "Cell_Phones_and_Accessories", "Electronics", "Musical_Instruments",
              "Office_Products", "Tools_and_Home_Improvement", "Toys_and_Games"]

    pool, test = small
    train = pool[:400] + [replace(it, category=None) for it in pool[400:500]]
    foreign = [replace(it, category="Video_Games", price=9000.0) for it in pool[500:700]]
    kept = [it for it in train if it.category is None or it.category in course]
    assert len(kept) == 500 and len(foreign) == 200
    texts = [it.text for it in test[:20]]
    only = SparseMLPPredictor(networks=1, hidden=16, categories=course).fit(train + foreign)
    alone = SparseMLPPredictor(networks=1, hidden=16).fit(kept)
    assert np.allclose(only.predict(texts), alone.predict(texts), rtol=1e-5)
    assert np.median(SparseMLPPredictor(networks=1, hidden=16).fit(train + foreign).predict(texts)) > \
        np.median(only.predict(texts))  # the foreign items would have pulled the prices up
    with pytest.raises(PricerError, match="no training item is in its categories"):
        SparseMLPPredictor(categories=["Software"]).fit(train[:400])


def test_sparse_mlp_with_single_characters_reads_the_counts_the_default_drops(tmp_path):
    """`single_characters`: "2-Light" and "Pack of 4" keep their digits as features (scikit-learn's default word
    pattern drops one-character words); the setting is saved, and the loaded model reads texts the same way."""
    from pricer.predictors.sparse_mlp import SparseMLPPredictor

    items = [Item(text=f"{n}-Light vanity fixture, pack of {n}", price=30.0 * n) for n in range(1, 10)] * 3
    plain = SparseMLPPredictor(networks=1, hidden=8).fit(items)
    counts = SparseMLPPredictor(networks=1, hidden=8, single_characters=True).fit(items)
    assert "4" not in plain.vectorizer.vocabulary_ and {"4", "4 light", "of 4"} <= set(counts.vectorizer.vocabulary_)
    assert make_predictor("sparse-mlp-mpnet").single_characters and make_predictor("sparse-mlp-embed").single_characters
    assert not make_predictor("sparse-mlp").single_characters  # TF-IDF alone: not measured with it
    counts.save(tmp_path / "m")
    loaded = load_predictor(tmp_path / "m")
    assert loaded.single_characters and loaded.vectorizer.vocabulary_ == counts.vectorizer.vocabulary_
    assert np.allclose(loaded.predict(["2-Light fixture"]), counts.predict(["2-Light fixture"]), rtol=1e-3)


@pytest.mark.slow
def test_fine_tuned_encoder_learns_and_reloads(small, tmp_path):
    """all-MiniLM-L6-v2 fine-tuned on the price at a CPU test's size (800 texts cut to 64 tokens, two epochs): it beats the constant on
    held-out items, and the saved folder gives the same numbers in this process and in `pricer predict`."""
    from pricer.predictors.encoder import EncoderRegressor

    train, test = small
    train, test = train[-800:], test[:100]
    encoder = EncoderRegressor(epochs=2, max_length=64, learning_rate=1e-4).fit(train)
    assert mae(encoder, test) < mae(make_predictor("constant-median").fit(train), test) - 10
    encoder.save(tmp_path / "encoder")
    texts = [it.text for it in test[:3]] + ["zzqx"]
    before = encoder.predict(texts)
    assert np.all(np.isfinite(before)) and np.all(before >= 0)
    assert np.allclose(load_predictor(tmp_path / "encoder").predict(texts), before, rtol=1e-5)
    result = run_cli("predict", "--model", tmp_path / "encoder", *texts[:2])
    assert result.returncode == 0, result.stderr
    assert [float(x.lstrip("$").replace(",", "")) for x in result.stdout.split()] == pytest.approx(before[:2], abs=0.006)


def test_fine_tuned_encoder_folder_loads_weights_only_from_safetensors(tmp_path):
    """A saved encoder whose weights come as a pickle (pytorch_model.bin, which can run code when loaded) is refused
    with one line naming the folder; the folder as saved loads."""
    import torch
    from safetensors.torch import load_file

    from pricer.predictors.encoder import EncoderRegressor

    items = [Item(text=f"{name} {i}", price=price) for i in range(4) for name, price in [("pencil", 2.0), ("watch", 400.0)]]
    EncoderRegressor(epochs=1, batch_size=4, max_length=16).fit(items).save(tmp_path / "encoder")
    assert load_predictor(tmp_path / "encoder").predict(["pencil 9"]).shape == (1,)
    weights = tmp_path / "encoder" / "encoder" / "model.safetensors"
    torch.save(load_file(weights), weights.with_name("pytorch_model.bin"))
    weights.unlink()
    with pytest.raises(PricerError, match=r"cannot load sentence model from .*encoder") as error:
        load_predictor(tmp_path / "encoder")
    assert "\n" not in str(error.value)
