"""Property-based tests of the live service from its own OpenAPI document (schemathesis): no input gets a server error,
every answer matches the document, and every request the document allows is answered."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import pricer_serve
from pricer.data.items import read_items
from pricer.predictors.registry import make_predictor

CONFIG = Path(__file__).parent / "schemathesis.toml"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(amazon, tmp_path):
    make_predictor("tfidf").fit(read_items(f"{amazon / 'dev.jsonl'}[:300]")).save(tmp_path / "tfidf")
    offers = amazon.parent / "deals" / "offers.jsonl"
    with pricer_serve("--model", tmp_path / "tfidf", "--deals", offers) as url:
        operations = sum(len(methods) for methods in httpx.get(f"{url}/openapi.json").json()["paths"].values())
        run = subprocess.run(
            [str(Path(sys.executable).parent / "st"), "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
             "--max-examples", "40", "--seed", "1", "--no-color"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert f"Tested: {operations}" in report and "Server error" not in report, report[-3000:]
    assert operations >= 9  # the page's routes, the API's, the OpenAI-compatible pair, /health and /v1/status
