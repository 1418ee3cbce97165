import json
import math

import numpy as np
import pytest

from conftest import PRICER, no_deprecated_calls, run_cli
from pricer import PricerError
from pricer.data.items import Item
from pricer.evaluation.tester import GREEN, ORANGE, RED, colour_for, evaluate, score_item, summarize
from pricer.predictors.base import Predictor


class HalfPrice(Predictor):
    """Guesses half the price written at the start of the text; counts its calls; can fail on a chosen item."""

    kind = "half-price-test"

    def __init__(self, fail_on: str | None = None):
        self.seen, self.fail_on = [], fail_on

    def predict(self, texts):
        for t in texts:
            if t == self.fail_on:
                raise KeyboardInterrupt
        self.seen += texts
        return np.array([float(t.split()[0]) / 2 for t in texts])


def items(n=10):
    return [Item(text=f"{10 * (i + 1)} dollars", price=10.0 * (i + 1), title=f"item {i}", category="A" if i % 2 else "B") for i in range(n)]


def test_colour_rule_matches_the_reference():
    assert colour_for(39.9, 1000) == GREEN  # within $40
    assert colour_for(150, 1000) == GREEN  # within 20%
    assert colour_for(79, 300) == ORANGE and colour_for(350, 1000) == ORANGE
    assert colour_for(80, 100) == RED and colour_for(401, 1000) == RED


@pytest.mark.slow
def test_metrics_by_hand(tmp_path):
    data = items(4)  # truths 10, 20, 30, 40; guesses 5, 10, 15, 20
    s = evaluate(HalfPrice(), data, tmp_path, name="half")
    errors = [5, 10, 15, 20]
    assert s["n"] == 4 and s["mae"] == pytest.approx(np.mean(errors)) and s["median_error"] == pytest.approx(12.5)
    sle = [(math.log1p(t) - math.log1p(t / 2)) ** 2 for t in (10, 20, 30, 40)]
    assert s["rmsle"] == pytest.approx(math.sqrt(np.mean(sle)))
    assert s["hit_rate"] == 100.0 and s["colours"] == {GREEN: 4, ORANGE: 0, RED: 0}
    assert s["mae_ci95"][0] <= s["mae"] <= s["mae_ci95"][1]
    assert s["by_category"]["A"]["n"] == 2 and s["by_category"]["A"]["mae"] == pytest.approx(15)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert {"mae", "rmsle", "hit_rate", "n"} <= set(on_disk) and on_disk["mae"] == s["mae"]
    lines = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert [(r["truth"], r["guess"], r["error"]) for r in lines] == [(10, 5, 5), (20, 10, 10), (30, 15, 15), (40, 20, 20)]
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    html = (tmp_path / "chart.html").read_text()
    assert all(f'"{it.title}"' in html for it in data) and "error $%{customdata[1]:,.2f}" in html
    assert '<script src="http' not in html and "plotly.js v" in html  # self-contained: opens offline


def test_no_number_is_flagged_and_counted():
    rows_summary = summarize(
        [
            {"i": 0, "truth": 10.0, "guess": 0.0, "error": 10.0, "sle": math.log1p(10) ** 2, "colour": GREEN, "no_price": True},
            {"i": 1, "truth": 10.0, "guess": 10.0, "error": 0.0, "sle": 0.0, "colour": GREEN},
        ]
    )
    assert rows_summary["no_price"] == 1


def test_interrupted_evaluation_resumes_without_redoing_items(tmp_path):
    data = items(10)
    with pytest.raises(KeyboardInterrupt):
        evaluate(HalfPrice(fail_on=data[7].text), data, tmp_path, batch_size=3)
    done = (tmp_path / "items.jsonl").read_text().splitlines()
    assert len(done) == 6  # two whole batches of three were saved before the failing batch
    with open(tmp_path / "items.jsonl", "a") as f:
        f.write('{"i": 6, "tru')  # a line torn by a kill mid-write
    second = HalfPrice()
    s = evaluate(second, data, tmp_path, batch_size=3)
    assert second.seen == [it.text for it in data[6:]]
    assert s["n"] == 10 and [json.loads(x)["i"] for x in (tmp_path / "items.jsonl").read_text().splitlines()] == list(range(10))


@pytest.mark.slow
def test_ctrl_c_on_a_real_eval_then_the_same_command_finishes_it(priced_run, amazon, tmp_path):
    """SIGINT to a running `pricer eval` (the tiny language model, one item a batch): it says how many items are saved
    and exits 130; the same command again keeps those lines as they were and scores only the rest."""
    import os
    import signal
    import subprocess
    import time

    out = tmp_path / "eval"
    args = [*PRICER, "eval", "--model", str(priced_run), "--decode", "median",
            "--data", f"{amazon / 'dev.jsonl'}[1250:]", "--size", "12", "--batch-size", "1", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    items_file, deadline = out / "items.jsonl", time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if items_file.exists() and len(items_file.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    saved = items_file.read_text().splitlines()
    assert 3 <= len(saved) < 12 and f"interrupted: {len(saved)} of 12 items saved" in stdout
    assert "Traceback" not in stderr
    no_deprecated_calls(stderr)

    again = run_cli(*args[len(PRICER):])
    assert again.returncode == 0, again.stderr[-2000:]
    lines = items_file.read_text().splitlines()
    assert lines[: len(saved)] == saved and [json.loads(x)["i"] for x in lines] == list(range(12))
    assert again.stdout.count("(resumed)") == len(saved)
    assert json.loads((out / "summary.json").read_text())["n"] == 12


def test_resume_refuses_another_evaluation(tmp_path):
    evaluate(HalfPrice(), items(3), tmp_path)
    other = [Item(text="5 x", price=5.0)] * 3
    with pytest.raises(PricerError, match="holds another evaluation"):
        evaluate(HalfPrice(), other, tmp_path)


@pytest.mark.slow
def test_eval_and_leaderboard_commands(tmp_path, amazon):
    dev = f"{amazon / 'dev.jsonl'}[1250:]"
    result = run_cli("eval", "--model", "random", "--data", dev, "--size", "40", "--out", tmp_path / "random")
    assert result.returncode == 0, result.stderr
    assert "1: Guess: $" in result.stdout and "RMSLE" in result.stdout and "by category" in result.stdout
    s = json.loads((tmp_path / "random" / "summary.json").read_text())
    assert s["n"] == 40 and s["name"] == "random"
    board = run_cli("leaderboard", tmp_path / "random", "--chart", tmp_path / "board.png")
    assert board.returncode == 0, board.stderr
    assert "GPT-4o zero-shot" in board.stdout and "random" in board.stdout
    assert (tmp_path / "board.png").read_bytes()[:4] == b"\x89PNG"
    missing = run_cli("leaderboard", tmp_path / "nothing")
    assert missing.returncode == 2 and "no summary.json" in missing.stderr


def test_interval_coverage_width_and_bands_from_the_rows():
    rows = [score_item(i, Item(text=f"t{i}", price=truth, category=cat), truth * 1.1, {"low": low, "high": high})
            for i, (truth, low, high, cat) in enumerate([(10, 8, 12, "A"), (40, 45, 90, "A"), (100, 50, 200, "B"),
                                                         (300, 200, 400, "B"), (900, 100, 400, "B")])]
    s = summarize(rows)
    assert s["interval_coverage"] == pytest.approx(3 / 5) and s["interval_items"] == 5
    assert s["interval_width"] == pytest.approx(2.0)  # high/low: 1.5, 2, 4, 2, 4
    assert s["interval_coverage_by_band"] == {"under $50": {"n": 2, "coverage": 0.5}, "$50-200": {"n": 1, "coverage": 1.0},
                                              "$200-500": {"n": 1, "coverage": 1.0}, "over $500": {"n": 1, "coverage": 0.0}}
    assert s["interval_coverage_by_category"]["B"] == {"n": 3, "coverage": pytest.approx(2 / 3)}
    assert "interval_coverage" not in summarize([score_item(0, Item(text="t", price=5.0), 5.0)])
