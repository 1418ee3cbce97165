"""pricer compare: two real evaluations of the same items, their paired difference and its interval."""

import json

import pytest

from conftest import run_cli
from pricer import PricerError
from pricer.data.items import read_items
from pricer.evaluation.compare import compare
from pricer.evaluation.tester import evaluate
from pricer.predictors.registry import make_predictor


@pytest.fixture(scope="module")
def runs(amazon, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    train, test = read_items(f"{amazon / 'dev.jsonl'}[:1250]"), read_items(f"{amazon / 'dev.jsonl'}[1250:1450]")
    for name in ("constant-mean", "tfidf"):
        evaluate(make_predictor(name).fit(train), test, out / name, name=name)
    evaluate(make_predictor("tfidf").fit(train), read_items(f"{amazon / 'dev.jsonl'}[1450:1500]"), out / "other", name="other")
    return out


def test_the_paired_difference_and_its_interval(runs):
    c = compare(runs / "constant-mean", runs / "tfidf")
    assert c["n"] == 200 and c["difference"] == pytest.approx(c["mae_a"] - c["mae_b"])
    lo, hi = c["ci95"]
    assert lo < c["difference"] < hi
    own = [json.loads((runs / name / "summary.json").read_text())["mae_ci95"] for name in ("constant-mean", "tfidf")]
    assert all(hi - lo < high - low for low, high in own)  # pairing the items removes their shared difficulty
    assert c["verdict"] == ("B is better" if lo > 0 else "A is better" if hi < 0 else "no difference the items can show")
    same = compare(runs / "tfidf", runs / "tfidf")
    assert same["difference"] == 0 and same["verdict"] == "no difference the items can show"


@pytest.mark.slow
def test_runs_on_different_items_are_refused(runs):
    with pytest.raises(PricerError, match="different items|share no scored item"):
        compare(runs / "tfidf", runs / "other")
    result = run_cli("compare", runs / "constant-mean", runs / "tfidf")
    assert result.returncode == 0 and "paired CI" in result.stdout and "constant-mean" in result.stdout
    missing = run_cli("compare", runs / "tfidf", runs / "nothing")
    assert missing.returncode == 2 and "no items.jsonl" in missing.stderr
