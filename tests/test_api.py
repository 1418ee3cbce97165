"""The notebook API: the README's five lines give the same numbers as the command line."""

import json

import numpy as np
import pytest

import pricer
from conftest import run_cli


@pytest.mark.slow
def test_notebook_api_reproduces_the_commands_row(amazon, tmp_path):
    train = pricer.read_items(amazon / "train.jsonl", f"{amazon / 'dev.jsonl'}[:1250]")
    model = pricer.fit("tfidf", train)
    summary = pricer.evaluate(model, f"{amazon / 'dev.jsonl'}[1250:]")

    spec = ["--train", amazon / "train.jsonl", "--train", f"{amazon / 'dev.jsonl'}[:1250]"]
    assert run_cli("fit", "tfidf", *spec, "--out", tmp_path / "tfidf").returncode == 0
    evaluated = run_cli("eval", "--model", tmp_path / "tfidf", "--data", f"{amazon / 'dev.jsonl'}[1250:]",
                        "--size", "0", "--quiet", "--out", tmp_path / "eval")
    assert evaluated.returncode == 0, evaluated.stderr
    cli = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["n"] == cli["n"] == 500
    assert summary["mae"] == pytest.approx(cli["mae"]) and summary["rmsle"] == pytest.approx(cli["rmsle"])

    loaded = pricer.load_predictor(tmp_path / "tfidf")
    texts = [it.text for it in train[:5]]
    assert np.allclose(loaded.predict(texts), model.predict(texts))
    again = pricer.evaluate(tmp_path / "tfidf", f"{amazon / 'dev.jsonl'}[1250:]", size=50, out=tmp_path / "api-eval")
    assert again["n"] == 50 and (tmp_path / "api-eval" / "summary.json").exists()


def test_api_errors_are_one_line_pricer_errors(tmp_path):
    with pytest.raises(pricer.PricerError, match="no-such.jsonl"):
        pricer.read_items(tmp_path / "no-such.jsonl")
    with pytest.raises(pricer.PricerError, match="unknown predictor"):
        pricer.fit("no-such-kind", [])
