"""Plain PEFT adapters as models: a local folder, and a real Hugging Face cache on disk holding two revisions of one
adapter, read offline (HF_HUB_OFFLINE=1) as `USER/RUN@COMMIT` and `USER/RUN` (main), as the reference loads its runs."""

import json
import shutil

import numpy as np
import pytest

from conftest import run_cli
from pricer import PricerError
from pricer.data.items import read_items
from pricer.predictors.registry import load_predictor

COMMITS = ("1" * 40, "2" * 40)
TEXTS = ["A cordless drill with two batteries", "A box of 500 paper clips"]


def make_adapter(tiny_base, out, seed):
    """A LoRA adapter made by peft on the tiny random Llama, its weights random (not the identity LoRA starts as)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    lora = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(out)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_base)
    return out


@pytest.fixture(scope="module")
def hub_cache(tiny_base, tmp_path_factory):
    """The layout huggingface_hub writes: models--USER--RUN/snapshots/<commit>/..., refs/main naming the newest."""
    root = tmp_path_factory.mktemp("hf")
    repo = root / "hub" / "models--pricer-tests--tiny-run"
    for seed, commit in enumerate(COMMITS):
        make_adapter(tiny_base, root / f"adapter-{seed}", seed)
        shutil.copytree(root / f"adapter-{seed}", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMITS[1])
    return root


@pytest.fixture
def offline(hub_cache, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return hub_cache


def prices(spec) -> np.ndarray:
    predictor = load_predictor(spec)
    predictor.decode = "mean"
    return np.array([d["price"] or 0.0 for d in predictor.predict_details(TEXTS)])


@pytest.mark.slow
def test_a_plain_adapter_folder_is_a_model(offline):
    predictor = load_predictor(offline / "adapter-0")
    assert predictor.kind == "llm" and predictor.adapter == str((offline / "adapter-0").resolve())
    assert np.array_equal(prices(offline / "adapter-0"), prices("pricer-tests/tiny-run@" + COMMITS[0]))


@pytest.mark.slow
def test_two_revisions_load_two_adapters_and_main_is_the_newest(offline):
    first, second = prices(f"pricer-tests/tiny-run@{COMMITS[0]}"), prices(f"pricer-tests/tiny-run@{COMMITS[1]}")
    assert not np.array_equal(first, second)
    assert np.array_equal(prices("pricer-tests/tiny-run"), second)
    with pytest.raises(PricerError, match="neither a local directory nor reachable on the Hugging Face hub"):
        load_predictor("pricer-tests/tiny-run@" + "3" * 40)
    with pytest.raises(PricerError, match="pricer-tests/no-such-run@main"):
        load_predictor("pricer-tests/no-such-run")


@pytest.mark.slow
def test_the_command_reads_the_cache_offline(hub_cache):
    env = {"HF_HUB_CACHE": str(hub_cache / "hub"), "HF_HUB_OFFLINE": "1"}
    result = run_cli("predict", "--model", f"pricer-tests/tiny-run@{COMMITS[0]}", "--decode", "greedy", TEXTS[0], env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "memory footprint" in result.stderr and len(result.stdout.strip().splitlines()) == 1
    missing = run_cli("predict", "--model", "ed-donner/pricer-2024-09-13_13.04.39@e8d637df551603dc86cd7a1598a8f44af4d7ae36", "x", env=env)
    assert missing.returncode == 2 and "reachable on the Hugging Face hub" in missing.stderr


@pytest.mark.slow
def test_base_and_quant_flags_reach_the_adapters_predictor(hub_cache, tiny_base, tmp_path):
    shutil.copytree(tiny_base, tmp_path / "same-base-elsewhere")
    env = {"HF_HUB_CACHE": str(hub_cache / "hub"), "HF_HUB_OFFLINE": "1"}
    spec = f"pricer-tests/tiny-run@{COMMITS[1]}"
    moved = run_cli("predict", "--model", spec, "--base", tmp_path / "same-base-elsewhere", "--decode", "greedy", TEXTS[0], env=env)
    assert moved.returncode == 0 and "same-base-elsewhere: memory footprint" in moved.stderr, moved.stderr[-2000:]
    quantised = run_cli("predict", "--model", spec, "--quant", "4bit", TEXTS[0], env=env)
    assert quantised.returncode == 2 and "needs a CUDA GPU" in quantised.stderr
    with pytest.raises(PricerError, match="--base applies to language models"):
        load_predictor("random", base="x")


@pytest.mark.slow
def test_select_scores_the_cached_revisions_and_best_loads_the_winner(offline, amazon, tmp_path):
    from pricer.evaluation.selection import score_checkpoints
    from pricer.llm.checkpoints import list_checkpoints

    assert [r["revision"] for r in list_checkpoints("pricer-tests/tiny-run")] == list(COMMITS)
    assert list_checkpoints("pricer-tests/tiny-run")[1]["refs"] == ["main"]
    items = read_items(f"{amazon / 'train.jsonl'}[:4]")
    rows, best = score_checkpoints("pricer-tests/tiny-run", items, tmp_path / "select", metric="rmsle")
    assert [r["revision"] for r in rows] == list(COMMITS) and best["rmsle"] == min(r["rmsle"] for r in rows)
    assert load_predictor("pricer-tests/tiny-run@best").adapter.endswith(best["revision"])


@pytest.mark.slow
def test_an_ensemble_keeps_a_hub_adapter_as_a_reference_with_its_revision(offline, amazon, tmp_path):
    from pricer.predictors.ensemble import EnsemblePredictor

    spec = f"pricer-tests/tiny-run@{COMMITS[0]}"
    items = read_items(f"{amazon / 'dev.jsonl'}[:40]")
    ensemble = EnsemblePredictor(members=["tfidf", f"fixed:{spec}"], folds=2).fit(items, progress=lambda *_: None)
    ensemble.save(tmp_path / "ens")
    reference = json.loads((tmp_path / "ens" / "members" / ensemble.names[1] / "fixed.json").read_text())
    assert reference == {"model": spec} and not list((tmp_path / "ens").rglob("*.safetensors"))
    loaded = load_predictor(tmp_path / "ens")
    assert loaded.fitted[1].adapter.endswith(COMMITS[0])  # the revision, not main
    assert np.allclose(loaded.predict(TEXTS), ensemble.predict(TEXTS)) and np.all(np.isfinite(loaded.predict(TEXTS)))
    loaded = load_predictor(str(tmp_path / "ens"), gpus=2, batch_size=7, liger=True)  # `pricer eval --gpus 2 ...`
    inside = loaded.fitted[1]  # the settings reach the language model inside, and its replicas
    assert (inside.gpus, inside.batch_size, inside.liger) == (2, 7, True) and inside.one_replica().liger


def test_a_revision_is_read_in_one_place_and_best_is_the_chosen_one(tmp_path):
    from pricer.llm.checkpoints import record_best, split_revision

    assert split_revision("runs/a") == ("runs/a", None)
    assert split_revision("user/run@abc123") == ("user/run", "abc123")
    with pytest.raises(PricerError, match="no checkpoint chosen yet; run `pricer select"):
        split_revision(f"{tmp_path}@best")
    record_best(str(tmp_path), {"revision": "checkpoint-20"})
    assert split_revision(f"{tmp_path}@best") == (str(tmp_path), "checkpoint-20")
