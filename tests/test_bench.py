"""The benchmark commands on CPU at tiny size: the same code paths the GPU figures of docs/performance.md come from."""

import json

import pytest

from conftest import run_cli
from pricer import PricerError
from pricer.llm.bench import random_weights


@pytest.mark.slow
def test_bench_infer_and_train_on_a_tiny_model(tiny_base, amazon, tmp_path):
    infer = run_cli("bench", "infer", "--base", tiny_base, "--data", f"{amazon / 'dev.jsonl'}[1250:]", "--items", "8",
                    "--batch-size", "4", "--reference-items", "2", "--out", tmp_path / "infer.json")
    assert infer.returncode == 0, infer.stderr[-2000:]
    figures = json.loads((tmp_path / "infer.json").read_text())
    assert figures["items"] == 8 and figures["items_per_s"] > 0 and figures["reference_items_per_s"] > 0
    assert figures["device"] == "cpu" and figures["share_of_peak"] is None and figures["mean_prompt_tokens"] > 100
    train = run_cli("bench", "train", "--base", tiny_base, "--data", f"{amazon / 'train.jsonl'}", "--steps", "3",
                    "--batch-size", "2", "--out", tmp_path / "train.json")
    assert train.returncode == 0, train.stderr[-2000:]
    figures = json.loads((tmp_path / "train.json").read_text())
    assert figures["steps"] == 3 and figures["timed_steps"] == 1 and figures["processes"] == 1 and figures["tokens_per_s"] > 0
    too_short = run_cli("bench", "train", "--base", tiny_base, "--data", f"{amazon / 'train.jsonl'}", "--steps", "2")
    assert too_short.returncode == 2 and "more than the 2 warm-up steps" in too_short.stderr


@pytest.mark.slow
def test_bench_full_fine_tuning_padding_free_asks_liger_only_on_a_gpu(tiny_base, amazon, tmp_path):
    result = run_cli("bench", "train", "--base", tiny_base, "--data", f"{amazon / 'train.jsonl'}", "--steps", "3",
                     "--batch-size", "2", "--lora-r", "0", "--liger", "--padding-free", "--out", tmp_path / "full.json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "liger's kernels are written for GPUs" in result.stderr
    figures = json.loads((tmp_path / "full.json").read_text())
    assert figures["lora_r"] == 0 and figures["liger"] is False and figures["padding_free"] is True
    assert figures["tokens_per_s"] > 0


def test_random_weights_from_a_config_file(tiny_base):
    model = random_weights(str(tiny_base / "config.json"), "cpu")
    assert model.config.num_hidden_layers == 2
    with pytest.raises(PricerError, match="llama-3.1-8b, llama-3.2-3b or a config.json"):
        random_weights("gpt-5", "cpu")


@pytest.mark.slow
def test_bench_train_with_torch_compile(tiny_base, amazon, tmp_path):
    """The --compile path (the Trainer's torch_compile) runs end to end on CPU; its GPU speed is docs' business."""
    result = run_cli("bench", "train", "--base", tiny_base, "--data", f"{amazon / 'train.jsonl'}", "--steps", "4",
                     "--batch-size", "2", "--compile", "--lora-dropout", "0", "--out", tmp_path / "c.json")
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads((tmp_path / "c.json").read_text())
    assert figures["compiled"] is True and figures["lora_dropout"] == 0 and figures["tokens_per_s"] > 0
