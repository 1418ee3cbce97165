import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli
from pricer import PricerError
from pricer.data.items import read_items
from pricer.llm.models import load_tokenizer
from pricer.llm.predictor import LLMPredictor
from pricer.llm.prompts import PRICE_PREFIX, build_prompt
from pricer.llm.training import (
    CompletionExamples,
    PaddedCompletions,
    completion_loss_for,
    read_recipe,
)
from pricer.predictors.registry import load_predictor


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    return load_tokenizer(str(tiny_base))


@pytest.fixture(scope="module")
def tiny_run(tiny_base, amazon, tmp_path_factory):
    """A LoRA run of five steps on the tiny model, through the real command."""
    run = tmp_path_factory.mktemp("runs") / "tiny"
    result = run_cli(
        "train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:40]", "--out", run,
        "--max-steps", "5", "--save-steps", "2", "--batch-size", "4", "--logging-steps", "1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def test_prompt_is_the_references_and_fits_the_budget(tokenizer):
    prompt = build_prompt("A red kettle\nBoils fast", tokenizer)
    assert prompt == f"How much does this cost to the nearest dollar?\n\nA red kettle\nBoils fast\n\n{PRICE_PREFIX}"
    long = build_prompt("word " * 2000, tokenizer, max_tokens=100)
    assert long.endswith(PRICE_PREFIX) and len(tokenizer.encode(long, add_special_tokens=False)) <= 100


def test_loss_falls_only_on_the_completion(tokenizer, amazon):
    items = read_items(f"{amazon / 'dev.jsonl'}[:3]")
    examples = CompletionExamples(items, tokenizer, max_length=182)
    for item, ex in zip(items, examples):
        answer = [t for t, label in zip(ex["input_ids"], ex["labels"]) if label != -100]
        assert tokenizer.decode(answer) == f"{round(item.price)}.00"
        assert len(ex["input_ids"]) <= 182 and ex["labels"][: len(ex["labels"]) - len(answer)] == [-100] * (len(ex["labels"]) - len(answer))


def test_loss_at_the_price_positions_equals_the_models_own_loss(tiny_base, tokenizer, amazon):
    """The cheap loss (the output layer applied at the price positions only) must give the loss and the gradients
    that the plain one does: logits everywhere, the model's own shifted cross-entropy."""
    import torch
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq

    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    examples = list(CompletionExamples(read_items(f"{amazon / 'dev.jsonl'}[:6]"), tokenizer, max_length=120))
    assert len({len(e["input_ids"]) for e in examples}) > 1  # padding is really exercised

    tokenizer.padding_side = "right"
    plain = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)(examples)
    expected = model(**plain).loss
    expected.backward()
    expected_grad = model.model.embed_tokens.weight.grad.clone()
    model.zero_grad()

    batch = PaddedCompletions(tokenizer.pad_token_id)(examples)
    labels = batch.pop("labels")
    outputs = model(**batch)
    assert outputs.logits.shape[1] == 1  # the full logits were never made
    loss = completion_loss_for(model)(outputs, labels)
    loss.backward()
    assert torch.allclose(loss, expected, atol=1e-4)
    assert torch.allclose(model.model.embed_tokens.weight.grad, expected_grad, atol=1e-5)


def test_train_writes_a_run_with_checkpoints_and_adapter(tiny_run):
    assert {"checkpoint-2", "checkpoint-4", "checkpoint-5", "adapter"} <= {p.name for p in tiny_run.iterdir()}
    manifest = json.loads((tiny_run / "pricer.json").read_text())
    assert manifest["kind"] == "llm" and manifest["params"]["adapter"] == "adapter"
    assert json.loads((tiny_run / "train_result.json").read_text())["global_step"] == 5


def test_eval_of_the_run_with_every_decoder(tiny_run, amazon, tmp_path):
    data = f"{amazon / 'dev.jsonl'}[1250:]"
    for decode in ("greedy", "topk", "mean", "median", "logmean"):
        out = tmp_path / decode
        result = run_cli("eval", "--model", tiny_run, "--data", data, "--size", "4", "--decode", decode, "--out", out, "--quiet")
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads((out / "summary.json").read_text())
        rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
        assert summary["n"] == 4 and len(rows) == 4
        assert summary["no_price"] == sum(bool(r.get("no_price")) for r in rows)
        if decode in ("mean", "median", "logmean"):
            assert all(r["low"] <= r["high"] for r in rows if not r.get("no_price"))


def test_checkpoint_revision_loads_and_a_missing_one_is_named(tiny_run):
    predictor = load_predictor(f"{tiny_run}@checkpoint-2")
    assert predictor.adapter == "checkpoint-2"
    assert load_predictor(f"{tiny_run}@4").adapter == "checkpoint-4"
    with pytest.raises(PricerError, match="no checkpoint-9 .*checkpoint-2"):
        load_predictor(f"{tiny_run}@checkpoint-9")
    details = predictor.predict_details(["A blue bicycle bell"])
    assert set(details[0]) >= {"price"}


def test_quantisation_without_cuda_is_one_clear_line(tiny_base, amazon, tmp_path):
    data = f"{amazon / 'dev.jsonl'}[:8]"
    for head in ("lm", "regression"):
        result = run_cli("train", "--base", tiny_base, "--train", data, "--out", tmp_path, "--quant", "4bit", "--head", head)
        assert result.returncode == 2 and "needs a CUDA GPU" in result.stderr and "Traceback" not in result.stderr
    full = run_cli("train", "--base", tiny_base, "--train", data, "--out", tmp_path, "--quant", "4bit", "--lora-r", "0")
    assert full.returncode == 2 and "--quant needs a LoRA adapter" in full.stderr


def test_liger_on_a_cpu_warns_and_trains_without_it(tiny_base, amazon, tmp_path):
    result = run_cli("train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:8]", "--out", tmp_path / "run",
                     "--max-steps", "1", "--batch-size", "4", "--liger")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "liger's kernels are written for GPUs" in result.stderr
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["liger"] is True


def test_unknown_or_missing_logger_is_one_clear_line(tiny_base, amazon, tmp_path):
    result = run_cli("train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:8]", "--out", tmp_path, "--report-to", "mlflow")
    assert result.returncode == 2 and "--report-to must be none, tensorboard or wandb" in result.stderr


def test_recipe_file(tmp_path):
    (tmp_path / "r.toml").write_text("[train]\nlora_r = 8\nlearning_rate = 2e-4\n")
    assert read_recipe(tmp_path / "r.toml") == {"lora_r": 8, "learning_rate": 2e-4}
    (tmp_path / "bad.toml").write_text("lora_rank = 8\n")
    with pytest.raises(PricerError, match="unknown training settings lora_rank"):
        read_recipe(tmp_path / "bad.toml")


def test_unknown_decoder_is_refused():
    with pytest.raises(PricerError, match="--decode must be one of"):
        LLMPredictor(decode="mode")


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(tiny_base, amazon, tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "pricer.cli", "train", "--base", str(tiny_base), "--train", f"{amazon / 'dev.jsonl'}[:64]",
            "--out", str(run), "--max-steps", "60", "--save-steps", "3", "--batch-size", "2", "--logging-steps", "50"]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoint-3" / "trainer_state.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (run / "pricer.json").exists(), "the first run finished before it could be killed"
    done = max(int(p.name.split("-")[1]) for p in run.glob("checkpoint-*") if (p / "trainer_state.json").exists())
    second = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from {run}/checkpoint-{done}" in second.stdout
    assert json.loads((run / "train_result.json").read_text())["global_step"] == 60


@pytest.mark.slow
def test_real_smollm2_learns_prices_and_its_adapter_loads_back(amazon, tmp_path):
    """The real 135M model, a few steps on CPU: the loss falls and the saved adapter predicts."""
    run = tmp_path / "smol"
    result = run_cli(
        "train", "--base", "smollm2-135m", "--train", f"{amazon / 'dev.jsonl'}[:16]", "--out", run,
        "--max-steps", "8", "--batch-size", "4", "--learning-rate", "1e-3", "--logging-steps", "1", "--save-steps", "100",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((run / "checkpoint-8" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 8 and sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses
    predicted = run_cli("predict", "--model", run, "--decode", "median", read_items(f"{amazon / 'dev.jsonl'}[1250:1251]")[0].text)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert float(predicted.stdout.split()[0]) > 0


@pytest.mark.slow
def test_two_processes_converting_the_bundled_model_at_once_both_get_it(tmp_path):
    """Two trainings started together on a fresh cache (an ensemble's fold beside a single run) once collided on the
    de-quantised copy; now each writes its own and the later one keeps the first."""
    import os

    code = "from pricer.llm.models import resolve_base; print(resolve_base('smollm2-135m'))"
    env = {**os.environ, "PRICER_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.returncode, out.strip(), err) for p in procs for out, err in [p.communicate(timeout=300)]]
    assert [r[0] for r in results] == [0, 0], results[0][2][-2000:] + results[1][2][-2000:]
    assert results[0][1] == results[1][1] == str(tmp_path / "models" / "smollm2-135m")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["smollm2-135m"]  # no half-written copies left


def test_nearest_products_go_into_training_and_predicting_prompts(tiny_base, amazon, tmp_path):
    from pricer.retrieval.index import PriceIndex

    items = read_items(f"{amazon / 'dev.jsonl'}[:30]")
    PriceIndex.build(items).save(tmp_path / "idx")
    result = run_cli("train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:30]", "--out", tmp_path / "run",
                     "--max-steps", "2", "--save-steps", "0", "--index", tmp_path / "idx", "--k", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    predictor = load_predictor(tmp_path / "run")
    assert predictor.index == str(tmp_path / "idx") and predictor.k == 3
    predictor._ensure_loaded()
    prompt = predictor._tokenizer.decode(predictor.prompt_ids([items[4].text])[0], skip_special_tokens=True)
    assert prompt.count("\n- ") == 3 and f"${items[4].price:.2f}" not in prompt.split("How much")[0]  # itself left out
    assert prompt.startswith("Similar products and their prices:") and prompt.endswith(PRICE_PREFIX)
    other = read_items(f"{amazon / 'dev.jsonl'}[1250:1251]")[0]
    nearest = PriceIndex.load(tmp_path / "idx").query([other.text], 1)[0][0]
    assert f"${nearest['price']:.2f}" in predictor._tokenizer.decode(predictor.prompt_ids([other.text])[0])


def test_replicas_share_the_batches_and_agree_with_one_model(tiny_base, amazon):
    """The multi-GPU path (a replica per device, batches dealt out to threads), run here with two CPU replicas."""
    import torch
    from transformers import AutoModelForCausalLM

    texts = [it.text for it in read_items(f"{amazon / 'dev.jsonl'}[:10]")]
    replicas = [AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32) for _ in range(2)]
    seen = []
    for m in replicas:
        m.register_forward_hook(lambda module, args, kwargs, out, m=m: seen.append(m), with_kwargs=True)
    tok = load_tokenizer(str(tiny_base))
    for decode in ("mean", "greedy"):
        one = LLMPredictor.from_loaded(replicas[0], tok, decode=decode, batch_size=3).predict(texts)
        seen.clear()
        two = LLMPredictor.from_loaded(replicas, tok, decode=decode, batch_size=3).predict(texts)
        assert {id(m) for m in seen} == {id(m) for m in replicas}  # both did work
        assert one == pytest.approx(two, rel=1e-4, nan_ok=True)


def test_regression_head_learns_prices_and_loads_back(tiny_base, amazon, tmp_path):
    """Full fine-tuning (lora_r 0) of a regression head on 8 items: read back from disk, it prices those items far
    better than their mean price does, so the head, its weights and its scale all survive the round trip."""
    import numpy as np

    spec = f"{amazon / 'dev.jsonl'}[:8]"
    result = run_cli("train", "--base", tiny_base, "--head", "regression", "--lora-r", "0", "--train", spec,
                     "--out", tmp_path / "full", "--max-steps", "60", "--batch-size", "8", "--learning-rate", "3e-3",
                     "--save-steps", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    items = read_items(spec)
    truth = np.log1p([it.price for it in items])
    predictor = load_predictor(tmp_path / "full")
    assert predictor.kind == "llm-regressor"
    guess = np.log1p(predictor.predict([it.text for it in items]))
    assert np.abs(guess - truth).mean() < 0.5 * np.abs(truth.mean() - truth).mean()

    result = run_cli("train", "--base", tiny_base, "--head", "regression", "--train", spec, "--out", tmp_path / "lora",
                     "--max-steps", "2", "--batch-size", "4", "--save-steps", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    for run in (tmp_path / "lora", f"{tmp_path / 'lora'}@checkpoint-1"):
        assert np.isfinite(load_predictor(run).predict([items[0].text])).all()
    bad = run_cli("train", "--base", tiny_base, "--head", "classifier", "--train", spec, "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "head must be lm or regression" in bad.stderr


@pytest.mark.parametrize("bad_steps, finishes", [({3}, True), ({3, 5, 6, 8}, False)])
def test_steps_with_non_finite_gradients_are_skipped_until_too_many(tiny_base, amazon, tmp_path, bad_steps, finishes):
    """Gradients planted as NaN on chosen steps: such a step leaves the weights as they were and training goes on;
    past max_skipped_share of the run's steps it stops with one line."""
    import torch
    from transformers import TrainerCallback

    from pricer.llm.training import TrainConfig, build_trainer, skipped_steps

    config = TrainConfig(base=str(tiny_base), lora_r=8, max_steps=20, batch_size=4, save_steps=0, logging_steps=1,
                         learning_rate=1e-2, max_skipped_share=0.1)
    trainer, _ = build_trainer(read_items(f"{amazon / 'train.jsonl'}[:80]"), tmp_path, config)
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    backward_passes = []
    trainable[0].register_hook(lambda g: (backward_passes.append(1), g * float("nan") if len(backward_passes) in bad_steps else g)[1])

    class Snapshots(TrainerCallback):
        weights: dict[int, torch.Tensor] = {}

        def on_step_end(self, args, state, control, **kwargs):
            self.weights[state.global_step] = torch.cat([p.detach().flatten() for p in trainable]).clone()

    trainer.add_callback(Snapshots())
    if not finishes:
        with pytest.raises(PricerError, match=r"stopped at step 6: 3 steps had non-finite gradients, more than 10% of the run's 20"):
            trainer.train()
        return
    trainer.train()
    weights = Snapshots.weights
    assert torch.equal(weights[3], weights[2]) and not torch.equal(weights[4], weights[3])  # step 3: no update
    assert all(torch.isfinite(w).all() for w in weights.values()) and len(weights) == 20
    assert skipped_steps(trainer) == 1


def test_digit_search_with_cached_prompts_equals_the_search_that_rereads_them(tiny_base, amazon):
    """The KV-cache path (each prompt run once, the beams' digits fed after it) finds the same prices with the same
    probabilities as re-reading prompt + digits for every beam and step."""
    import torch
    from transformers import AutoModelForCausalLM

    from pricer.llm.decoding import continuations_of, price_distributions

    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    predictor = LLMPredictor.from_loaded(model, load_tokenizer(str(tiny_base)), batch_size=4)
    prompts = predictor.prompt_ids([it.title for it in read_items(f"{amazon / 'dev.jsonl'}[:6]")])  # lengths differ
    assert len({len(p) for p in prompts}) > 1
    with torch.inference_mode():
        cached = predictor.distributions(prompts)
        reread = price_distributions(continuations_of(predictor.next_logprobs, prompts), len(prompts), predictor._vocab)
    for a, b in zip(cached, reread):
        assert sorted(a.values) == sorted(b.values)
        assert a.mean() == pytest.approx(b.mean(), rel=1e-4) and a.mass == pytest.approx(b.mass, rel=1e-4)


@pytest.mark.parametrize("recipe", sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_recipe_is_a_valid_training_config(recipe):
    from pricer.llm.training import TrainConfig

    config = TrainConfig(**read_recipe(recipe))
    assert config.head in ("lm", "regression") and config.epochs > 0
