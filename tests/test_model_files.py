"""Loading a model folder never runs code from it: estimators through skops with an allow-list, tensors through
safetensors, an older folder's pickles only with --trust-model."""

import os
import pickle

import joblib
import numpy as np
import pytest

from conftest import run_cli
from pricer.data.items import Item
from pricer.errors import PricerError
from pricer.predictors.registry import load_predictor, make_predictor

ITEMS = [Item(text=f"stainless steel faucet model {i} with {i % 4 + 1} handles", price=20.0 + 7 * i) for i in range(30)]
TEXTS = ["stainless steel faucet with 2 handles", "a faucet"]


class Payload:
    """A pickle that, when loaded, creates a file: what a shared folder could do to whoever loads it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def tfidf(tmp_path):
    model = make_predictor("tfidf").fit(ITEMS)
    model.save(tmp_path / "tfidf")
    return model, tmp_path / "tfidf"


def test_a_saved_model_holds_no_pickle(tfidf):
    model, folder = tfidf
    assert sorted(p.name for p in folder.iterdir()) == ["model.skops", "model.vocabulary.json", "pricer.json"]
    assert np.allclose(load_predictor(folder).predict(TEXTS), model.predict(TEXTS))


def test_a_planted_pickle_is_refused_in_one_line_and_never_run(tfidf, tmp_path):
    _, folder = tfidf
    marker = tmp_path / "ran"
    (folder / "model.skops").unlink()
    joblib.dump(Payload(marker), folder / "model.joblib")
    with pytest.raises(PricerError, match="is a pickle.*--trust-model") as refused:
        load_predictor(folder)
    assert "\n" not in str(refused.value)
    assert not marker.exists()


def test_an_older_folder_loads_with_trust(tfidf, monkeypatch):
    model, folder = tfidf
    joblib.dump(model.model, folder / "model.joblib")  # as versions before skops saved it
    (folder / "model.skops").unlink()
    assert np.allclose(load_predictor(folder, trust_model=True).predict(TEXTS), model.predict(TEXTS))
    monkeypatch.setenv("PRICER_TRUST_MODELS", "1")
    assert np.allclose(load_predictor(folder).predict(TEXTS), model.predict(TEXTS))


def test_an_estimator_file_naming_a_function_outside_the_allow_list_is_refused(tfidf, tmp_path):
    import skops.io
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    _, folder = tfidf
    (folder / "model.skops").write_bytes(skops.io.dumps(make_pipeline(FunctionTransformer(os.system))))
    with pytest.raises(PricerError, match=r"model.skops holds types pricer does not load: .*system"):
        load_predictor(folder)


def test_a_damaged_estimator_file_is_one_line(tfidf):
    _, folder = tfidf
    (folder / "model.skops").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(PricerError, match="not a readable estimator file"):
        load_predictor(folder)


def test_an_older_torch_pickle_is_refused_without_trust(tmp_path):
    import torch

    from pricer.predictors.model_files import load_tensors

    torch.save({"w": torch.ones(2)}, tmp_path / "network.pt")
    with pytest.raises(PricerError, match="network.pt is a pickle"):
        load_tensors(tmp_path / "network.safetensors", legacy="network.pt")
    (tmp_path / "network.pt").write_bytes(pickle.dumps(Payload(tmp_path / "ran")))
    with pytest.raises(PricerError):
        load_tensors(tmp_path / "network.safetensors", legacy="network.pt")
    assert not (tmp_path / "ran").exists()


@pytest.mark.slow
def test_pricer_predict_refuses_a_planted_pickle_and_names_the_flag(tfidf, tmp_path):
    _, folder = tfidf
    marker = tmp_path / "ran"
    (folder / "model.skops").unlink()
    joblib.dump(Payload(marker), folder / "model.joblib")
    result = run_cli("predict", "faucet", "--model", folder)
    assert result.returncode != 0
    assert "--trust-model" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_vectorizer_vocabulary_is_saved_as_json_beside_its_estimator(amazon, tmp_path):
    """skops checks each entry of a dict as an object of its own (the CPU stack's 165,000 terms: 4 s to load), so the
    vocabulary goes to NAME.vocabulary.json; the vectorizer transforms the same after loading, alone or in a
    pipeline; an older .skops with the vocabulary inside still loads."""
    import json

    import skops.io
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    from pricer.data.items import read_items
    from pricer.predictors.model_files import load_estimator, save_estimator

    items = read_items(f"{amazon / 'train.jsonl'}[:300]")
    texts = [it.text for it in items]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=5000, dtype=np.float32).fit(texts)
    assert len(vectorizer.vocabulary_) > 1000
    expected = vectorizer.transform(texts[:20]).toarray()
    save_estimator(vectorizer, tmp_path / "v.skops")
    assert len(vectorizer.vocabulary_) > 1000  # the caller's estimator keeps its vocabulary
    assert len(json.loads((tmp_path / "v.vocabulary.json").read_text())["vocabularies"][0]) == len(vectorizer.vocabulary_)
    assert (tmp_path / "v.skops").stat().st_size < (tmp_path / "v.vocabulary.json").stat().st_size
    assert np.array_equal(load_estimator(tmp_path / "v.skops").transform(texts[:20]).toarray(), expected)

    pipeline = make_pipeline(TfidfVectorizer(min_df=2), Ridge()).fit(texts, np.log1p([it.price for it in items]))
    save_estimator(pipeline, tmp_path / "p.skops")
    assert np.allclose(load_estimator(tmp_path / "p.skops").predict(texts[:20]), pipeline.predict(texts[:20]))

    (tmp_path / "old.skops").write_bytes(skops.io.dumps(vectorizer))  # as earlier versions saved it
    assert np.array_equal(load_estimator(tmp_path / "old.skops").transform(texts[:20]).toarray(), expected)


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.write_text("{not json"), "is not the vocabulary of v.skops"),
    (lambda f: f.write_text('{"vocabularies": [{"a": 0}, null]}'), "not one entry per step"),
    (lambda f: f.write_text('{"vocabularies": [{"a": 0, "b": 5}]}'), "indices are not 0 to N-1"),
    (lambda f: f.write_text('{"vocabularies": [{"a": 0, "b": 1.0}]}'), "indices are not 0 to N-1"),
    (lambda f: f.write_text('{"vocabularies": [["a", "b"]]}'), "is not the vocabulary of v.skops"),
    (lambda f: f.unlink(), "v.vocabulary.json: missing"),
])
def test_a_damaged_or_missing_vocabulary_file_is_one_line(tmp_path, damage, message):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pricer.predictors.model_files import load_estimator, save_estimator

    save_estimator(TfidfVectorizer().fit(["red car", "blue car"]), tmp_path / "v.skops")
    damage(tmp_path / "v.vocabulary.json")
    with pytest.raises(PricerError, match=message) as refused:
        load_estimator(tmp_path / "v.skops")
    assert "\n" not in str(refused.value)
