"""The command's own faces: help that shows what was written, prices written as prices, a kind mistaken for a model."""

import re

import pytest
from typer.testing import CliRunner

from conftest import run_cli
from pricer.cli import app, dollars
from pricer.predictors.registry import RECIPES

COMMANDS = [["fit"], ["predict"], ["train"], ["eval"], ["compare"], ["serve"], ["deals"], ["loadtest"], ["select"],
            ["checkpoints"], ["leaderboard"], ["data", "curate"], ["data", "stats"], ["index", "build"],
            ["index", "query"], ["bench", "infer"], ["bench", "train"]]


def help_of(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_top_level_help_says_what_pricer_is():
    text = help_of()
    assert "estimate a product's price" in text and "thin shell" not in text


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_option_is_described_and_named_without_type_noise(command):
    text = help_of(*command)
    assert not re.search(r"<(list\[|str>|path>|Path>)", text.split("Options:", 1)[0])  # arguments named without types
    assert "list[" not in text and "issue" not in text.lower()
    options = re.findall(r"^\s+(--[a-z][\w-]*)(?:,\s*--[\w-]+)?(?: [A-Z<][^ ]*)?\s*$", text, re.MULTILINE)
    assert not options, f"options without a description: {options}"


def test_bracketed_help_text_is_shown_as_written():
    assert "[ensemble]" in help_of("fit")
    assert "[default: CACHE/deals.sqlite]" in " ".join(help_of("deals").split())


def test_the_kinds_in_fit_help_are_every_kind():
    text = " ".join(help_of("fit").split()).replace("- ", "-")  # rich wraps a long list at its hyphens
    assert [kind for kind in RECIPES if kind not in text] == []


def test_amounts_are_written_with_their_sign_before_the_dollar():
    assert dollars(108.07) == "$108.07" and dollars(-271.93) == "-$271.93" and dollars(1234.5) == "$1,234.50"


@pytest.mark.slow
def test_a_kind_given_as_a_model_says_how_to_fit_one():
    result = run_cli("predict", "--model", "tfidf", "a drill")
    assert result.returncode == 2 and "pricer fit tfidf --train FILE --out DIR" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_readmes_first_commands_price_a_product(amazon, tmp_path):
    """The README's first screen, from a fitted model to a printed price."""
    fitted = run_cli("fit", "tfidf", "--train", amazon / "train.jsonl", "--out", tmp_path / "tfidf")
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    priced = run_cli("predict", "--model", tmp_path / "tfidf", "Moen bathroom vanity light, brushed nickel, 2 globes")
    price = r"\$[\d,]+\.\d\d"  # the estimate, then its interval, calibrated when fitted
    assert priced.returncode == 0 and re.fullmatch(rf"{price}  \(80%: {price}-{price}\)\n", priced.stdout), priced.stdout


def test_train_help_shows_recipe_keys_as_key_value_without_type_noise():
    text = help_of("train")
    assert "[OPTIONS] [KEY=VALUE]..." in text and "padding_free=true" in " ".join(text.split())
    assert "list[" not in text
