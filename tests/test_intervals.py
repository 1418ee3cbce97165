"""Calibrated 80% intervals: the conformal arithmetic, TF-IDF's coverage on unseen items of the benchmark's
distribution, saving and loading, `pricer fit --calibrate` and `pricer calibrate`, a frontier endpoint calibrated on a
file, and the charts that draw the intervals."""

import json

import numpy as np
import pytest

import pricer
from conftest import run_cli
from pricer import PricerError
from pricer.predictors.intervals import Calibration
from pricer.predictors.registry import load_predictor


def test_conformal_interval_covers_new_draws_and_adapts_to_the_price_level():
    rng = np.random.default_rng(0)

    def draw(n):  # cheap items err by a factor of e^0.2, dear ones by e^0.8: one width cannot fit both
        estimates = np.exp(rng.uniform(np.log(5), np.log(900), n))
        spread = np.where(estimates < 60, 0.2, 0.8)
        return estimates, estimates * np.exp(rng.normal(0, spread))

    calibration = Calibration.fit(*draw(2000), "synthetic")
    estimates, truths = draw(20000)
    low, high = calibration.interval(estimates)
    assert 0.78 <= np.mean((low <= truths) & (truths <= high)) <= 0.82
    cheap, dear = estimates < 30, estimates > 300
    assert np.median(high[cheap] / low[cheap]) < 2 < 4 < np.median(high[dear] / low[dear])
    for part in (cheap, dear):  # covered within each price level, not only on average
        assert 0.75 <= np.mean((low[part] <= truths[part]) & (truths[part] <= high[part])) <= 0.85
    assert calibration.chance_above(100.0, 1.0) == 1.0 and calibration.chance_above(100.0, 1e6) == 0.0
    assert np.isnan(calibration.interval([np.nan, -3.0])[0]).all()
    with pytest.raises(PricerError, match="at least 20 items"):
        Calibration.fit([10.0] * 5, [12.0] * 5, "too few")


@pytest.fixture(scope="module")
def tfidf(amazon):
    """TF-IDF fitted on train + dev[:1500], its interval calibrated out of fold, as `pricer fit` does."""
    return pricer.fit("tfidf", pricer.read_items(amazon / "train.jsonl", f"{amazon / 'dev.jsonl'}[:1500]"))


@pytest.mark.slow
def test_tfidf_interval_holds_80_percent_of_unseen_benchmark_items(tfidf, amazon, tmp_path):
    summary = pricer.evaluate(tfidf, f"{amazon / 'dev.jsonl'}[1500:]", out=tmp_path)  # 250 items it never saw
    assert summary["interval_items"] == 250
    assert 0.74 <= summary["interval_coverage"] <= 0.86, summary["interval_coverage"]
    assert tfidf.calibration.source == "5-fold out-of-fold" and tfidf.calibration.items == 8928
    widths = [np.exp(h - lo) for lo, h in zip(tfidf.calibration.low, tfidf.calibration.high)]
    assert len(widths) == 5 and max(widths) > 1.1 * min(widths)  # each price level its own width
    html = (tmp_path / "chart.html").read_text()
    assert '"error_y"' in html and '"arrayminus"' in html  # the intervals drawn on the interactive chart


@pytest.mark.slow
def test_a_saved_calibration_loads_back_and_a_model_without_one_says_how_to_get_it(amazon, tmp_path):
    data = f"{amazon / 'train.jsonl'}[:600]"
    plain = run_cli("fit", "tfidf", "--train", data, "--out", tmp_path / "m", "--calibrate", "none")
    assert plain.returncode == 0 and "no interval: calibrate it" in plain.stdout, plain.stderr[-1000:]
    before = run_cli("predict", "--model", tmp_path / "m", "A box of 500 paper clips")
    assert "80%" not in before.stdout
    held = f"{amazon / 'dev.jsonl'}[:300]"
    calibrated = run_cli("calibrate", "--model", tmp_path / "m", "--data", held)
    assert calibrated.returncode == 0 and "calibrated on 300 items" in calibrated.stdout, calibrated.stderr[-1000:]
    after = run_cli("predict", "--model", tmp_path / "m", "A box of 500 paper clips")
    assert "(80%: $" in after.stdout
    model = load_predictor(tmp_path / "m")
    on_file = pricer.fit("tfidf", data, calibrate=False)
    on_file.calibration = Calibration.fit(on_file.predict([it.text for it in pricer.read_items(held)]),
                                          [it.price for it in pricer.read_items(held)], "dev.jsonl[:300]")
    assert model.estimate(["A box of 500 paper clips"]) == on_file.estimate(["A box of 500 paper clips"])
    assert json.loads((tmp_path / "m" / "intervals.json").read_text())["items"] == 300
    refit = run_cli("fit", "tfidf", "--train", data, "--out", tmp_path / "m", "--calibrate", "none")
    assert refit.returncode == 0 and not (tmp_path / "m" / "intervals.json").exists()  # no stale interval kept
    (tmp_path / "bad").mkdir()
    wrong = run_cli("calibrate", "--model", tmp_path / "bad", "--data", held)
    assert wrong.returncode == 2 and "not a pricer model directory" in wrong.stderr


@pytest.mark.slow
def test_a_model_fitted_on_every_item_is_calibrated_from_an_evaluation_of_its_recipe(amazon, tmp_path):
    """The best recipes leave no held-out item: their interval comes from the residuals an evaluation of the same recipe
    (fitted without the evaluated items) wrote. The same residuals as `--data` gives, without pricing again."""
    data, held = f"{amazon / 'train.jsonl'}[:600]", f"{amazon / 'dev.jsonl'}[:300]"
    for name in ("m", "like"):
        assert run_cli("fit", "tfidf", "--train", data, "--out", tmp_path / name, "--calibrate", "none").returncode == 0
    evaluated = run_cli("eval", "--model", tmp_path / "like", "--data", held, "--size", "0", "--out", tmp_path / "e")
    assert evaluated.returncode == 0, evaluated.stderr[-1000:]
    calibrated = run_cli("calibrate", "--model", tmp_path / "m", "--from-eval", tmp_path / "e")
    assert calibrated.returncode == 0 and "calibrated on 300 items (evaluation e)" in calibrated.stdout.replace("\n", " ")
    assert run_cli("calibrate", "--model", tmp_path / "like", "--data", held).returncode == 0
    from_eval, priced = (json.loads((tmp_path / n / "intervals.json").read_text()) for n in ("m", "like"))
    assert from_eval["edges"] == pytest.approx(priced["edges"], abs=1e-4)
    assert from_eval["low"] == pytest.approx(priced["low"], abs=1e-4)
    assert from_eval["high"] == pytest.approx(priced["high"], abs=1e-4)
    assert "(80%: $" in run_cli("predict", "--model", tmp_path / "m", "A box of 500 paper clips").stdout

    both = run_cli("calibrate", "--model", tmp_path / "m", "--from-eval", tmp_path / "e", "--data", held)
    assert both.returncode == 2 and "either --data" in both.stderr
    rows = (tmp_path / "e" / "items.jsonl").read_text().splitlines()
    (tmp_path / "e" / "items.jsonl").write_text("\n".join(rows[:5] + ["{not json"] + rows[5:]))
    broken = run_cli("calibrate", "--model", tmp_path / "m", "--from-eval", tmp_path / "e")
    assert broken.returncode == 2 and "items.jsonl, line 6: not an item line" in broken.stderr
    assert json.loads((tmp_path / "m" / "intervals.json").read_text()) == from_eval  # the calibration before is kept


def test_an_ensemble_is_calibrated_from_its_out_of_fold_stack(amazon):
    items = pricer.read_items(f"{amazon / 'train.jsonl'}[:400]", f"{amazon / 'dev.jsonl'}[:400]")
    ensemble = pricer.fit("ensemble", items, members=["tfidf", "features"], folds=3)
    assert ensemble.calibration.source == "3-fold out-of-fold members and stacker" and ensemble.calibration.items == 800
    (estimate,) = ensemble.estimate(["Cordless drill, 20V, two batteries and a charger"])
    assert 0 < estimate["low"] < estimate["price"] < estimate["high"]
