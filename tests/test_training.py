"""Fine-tuning: the loss on the price, runs and checkpoints, resume, bad settings, heads, bad steps, recipes."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PRICER, run_cli
from pricer import PricerError
from pricer.data.items import read_items
from pricer.llm.prompts import PRICE_PREFIX, QUESTION, QUESTIONS, question_of
from pricer.llm.completions import CompletionExamples, PackedCompletions, PaddedCompletions, completion_loss_for
from pricer.llm.training import read_recipe
from pricer.predictors.registry import load_predictor


def test_loss_falls_only_on_the_completion(tokenizer, amazon):
    items = read_items(f"{amazon / 'dev.jsonl'}[:3]")
    examples = CompletionExamples(items, tokenizer, max_length=182)
    for item, ex in zip(items, examples):
        answer = [t for t, label in zip(ex["input_ids"], ex["labels"]) if label != -100]
        assert tokenizer.decode(answer) == f"{round(item.price)}.00"
        assert len(ex["input_ids"]) <= 182 and ex["labels"][: len(ex["labels"]) - len(answer)] == [-100] * (len(ex["labels"]) - len(answer))


@pytest.mark.slow
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


def test_padding_free_batches_give_the_same_loss_and_gradients(tiny_base, tokenizer, amazon):
    """One flattened row (positions restarting per example, no mask) against the padded batch: the same loss and the
    same gradients, so `padding_free = true` changes the speed of a run, not what it learns."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    examples = list(CompletionExamples(read_items(f"{amazon / 'dev.jsonl'}[:6]"), tokenizer, max_length=120))
    results = []
    for collator in (PaddedCompletions(tokenizer.pad_token_id), PackedCompletions()):
        batch = collator(examples)
        labels = batch.pop("labels")
        loss = completion_loss_for(model)(model(**batch), labels)
        loss.backward()
        results.append((loss.detach(), model.model.embed_tokens.weight.grad.clone()))
        model.zero_grad()
    (padded_loss, padded_grad), (packed_loss, packed_grad) = results
    assert packed_grad.abs().sum() > 0
    assert torch.allclose(packed_loss, padded_loss, atol=1e-5)
    assert torch.allclose(packed_grad, padded_grad, atol=1e-6)


@pytest.mark.slow
def test_batches_grouped_by_length_carry_less_padding(tiny_base, amazon, tmp_path):
    """`group_by_length = true`: the Trainer's batches hold examples of similar lengths, so fewer padded positions
    than with the random order, and every example still comes once an epoch."""
    import dataclasses

    from pricer.llm.training import TrainConfig, build_trainer

    pool = read_items(f"{amazon / 'train.jsonl'}[:240]")  # transformers sorts within "megabatches" of a few batches
    items = [dataclasses.replace(it, text=" ".join(it.text.split()[: 2 + 6 * (i % 8)])) for i, it in enumerate(pool)]
    padding, seen = {}, {}
    for grouped in (False, True):
        config = TrainConfig(base=str(tiny_base), batch_size=4, max_steps=60, save_steps=0, group_by_length=grouped)
        trainer, _ = build_trainer(items, tmp_path / str(grouped), config)
        batches = list(trainer.get_train_dataloader())
        padding[grouped] = sum(int((b["attention_mask"] == 0).sum()) for b in batches)
        seen[grouped] = sorted(int(b["attention_mask"].sum()) for b in batches)
    assert padding[True] < padding[False] / 4
    assert sum(seen[True]) == sum(seen[False])  # the same tokens, in other batches


@pytest.mark.slow
def test_padding_free_training_run_has_the_padded_runs_loss(tiny_base, amazon, tmp_path):
    """The same two steps on the same items, joined in one row or padded: the same training loss."""
    losses = {}
    for layout in ("padding_free=true", "padding_free=false"):
        result = run_cli("train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:16]", "--out",
                         tmp_path / layout, "--max-steps", "2", "--batch-size", "8", "--save-steps", "0",
                         "logging_steps=1", layout)
        assert result.returncode == 0, result.stderr[-3000:]
        losses[layout] = json.loads((tmp_path / layout / "train_result.json").read_text())["train_loss"]
    assert json.loads((tmp_path / "padding_free=true" / "train_config.json").read_text())["padding_free"] is True
    assert losses["padding_free=true"] == pytest.approx(losses["padding_free=false"], rel=1e-4)


@pytest.mark.slow
def test_padding_free_regression_head_gives_the_same_loss_and_gradients(tiny_base, amazon):
    import torch

    from pricer.llm.head import PackedPrompts, PaddedPrompts, PromptExamples, head_loss_for, load_head_model, log_price_scale
    from pricer.llm.models import load_tokenizer

    items = read_items(f"{amazon / 'dev.jsonl'}[:6]")
    tokenizer = load_tokenizer(str(tiny_base))
    model = load_head_model(str(tiny_base), "cpu", full_precision=True)
    torch.nn.init.normal_(model.score.weight, std=0.02)  # a fresh head is zero: no gradient would reach the body
    examples = list(PromptExamples(items, tokenizer, 120, log_price_scale(items)))
    results = []
    for collator, loss_fn in ((PaddedPrompts(tokenizer.pad_token_id), head_loss_for(model)),
                              (PackedPrompts(), head_loss_for(model, packed=True))):
        batch = collator(examples)
        labels = batch.pop("labels")
        loss = loss_fn(model(**batch), labels, (labels != -100).sum())  # the Trainer's count of the batch's examples
        loss.backward()
        results.append((loss.detach(), model.model.embed_tokens.weight.grad.clone(), model.score.weight.grad.clone()))
        model.zero_grad()
    (padded_loss, *padded_grads), (packed_loss, *packed_grads) = results
    assert torch.allclose(packed_loss, padded_loss, atol=1e-5)
    for packed, padded in zip(packed_grads, padded_grads):
        assert packed.abs().sum() > 0 and torch.allclose(packed, padded, atol=1e-6)


@pytest.mark.slow
def test_a_mean_pooled_head_reads_every_prompt_token_and_no_padding(tiny_base, amazon):
    """Pooling "mean": a padded batch's loss is the average of each example's loss alone (padding changes nothing),
    and an example's value is the head on the mean of its final hidden states, which differs from the last token's."""
    import torch

    from pricer.llm.head import PaddedPrompts, PromptExamples, head_loss_for, load_head_model, log_price_scale
    from pricer.llm.models import load_tokenizer

    items = read_items(f"{amazon / 'dev.jsonl'}[:5]")
    tokenizer = load_tokenizer(str(tiny_base))
    model = load_head_model(str(tiny_base), "cpu", full_precision=True)
    torch.nn.init.normal_(model.score.weight, std=0.02)
    examples = list(PromptExamples(items, tokenizer, 120, log_price_scale(items)))
    assert len({len(e["input_ids"]) for e in examples}) > 1  # the batch is padded
    collate, loss_fn = PaddedPrompts(tokenizer.pad_token_id, "mean"), head_loss_for(model, "mean")

    def loss_of(batch_examples):
        batch = collate(batch_examples)
        labels = batch.pop("labels")
        return loss_fn(model(**batch), labels, (labels != -100).sum())  # the Trainer's count of the batch's examples

    with torch.no_grad():
        together = loss_of(examples)
        alone = torch.stack([loss_of([e]) for e in examples])
        assert torch.allclose(together, alone.mean(), atol=1e-5)
        ids = torch.tensor([examples[0]["input_ids"]])
        hidden = model.model(input_ids=ids).last_hidden_state
        by_hand = (model.score(hidden.mean(1))[0, 0] - examples[0]["labels"]).abs()
        assert torch.allclose(alone[0], by_hand, atol=1e-5)
        assert not torch.allclose(by_hand, (model(input_ids=ids).logits[0, 0] - examples[0]["labels"]).abs(), atol=1e-3)


def test_huber_error_is_quadratic_near_the_price_and_absolute_beyond():
    import torch

    from pricer.llm.head import HUBER_DELTA, price_error

    small, large = torch.tensor([HUBER_DELTA / 2]), torch.tensor([3.0])
    zero = torch.zeros(1)
    assert price_error(small, zero, "huber").item() == pytest.approx(0.5 * (HUBER_DELTA / 2) ** 2 / HUBER_DELTA)
    assert price_error(large, zero, "huber").item() == pytest.approx(3.0 - HUBER_DELTA / 2)
    assert price_error(large, zero).item() == pytest.approx(3.0)


def test_train_writes_a_run_with_checkpoints_and_adapter(tiny_run):
    assert {"checkpoint-2", "checkpoint-4", "checkpoint-5", "adapter"} <= {p.name for p in tiny_run.iterdir()}
    manifest = json.loads((tiny_run / "pricer.json").read_text())
    assert manifest["kind"] == "llm" and manifest["params"]["adapter"] == "adapter"
    assert json.loads((tiny_run / "train_result.json").read_text())["global_step"] == 5


@pytest.mark.slow
def test_quantisation_without_cuda_is_one_clear_line(tiny_base, amazon, tmp_path):
    data = f"{amazon / 'dev.jsonl'}[:8]"
    for head in ("lm", "regression"):
        result = run_cli("train", "--base", tiny_base, "--train", data, "--out", tmp_path, "--quant", "4bit", "--head", head)
        assert result.returncode == 2 and "needs a CUDA GPU" in result.stderr and "Traceback" not in result.stderr
    full = run_cli("train", "--base", tiny_base, "--train", data, "--out", tmp_path, "--quant", "4bit", "--lora-r", "0")
    assert full.returncode == 2 and "--quant needs a LoRA adapter" in full.stderr


def test_recipe_keys_on_the_command_line_are_checked_and_typed():
    from pricer.llm.training import parse_overrides

    assert parse_overrides(["head_lr_scale=50", "head=regression", "group_by_length=true", "prompt=What is it worth?"]) == {
        "head_lr_scale": 50, "head": "regression", "group_by_length": True, "prompt": "What is it worth?"}
    with pytest.raises(PricerError, match="lora_rank: not a recipe setting; known: .*lora_r"):
        parse_overrides(["lora_rank=3"])
    with pytest.raises(PricerError, match="give a recipe setting as KEY=VALUE"):
        parse_overrides(["epochs"])
    with pytest.raises(PricerError, match="epochs=two: epochs takes a number"):
        parse_overrides(["epochs=two"])
    with pytest.raises(PricerError, match="lora_r=8.5: lora_r takes an integer"):
        parse_overrides(["lora_r=8.5"])
    assert parse_overrides(["index=runs/index", "epochs=2", "push_to_hub=me/run"]) == {
        "index": "runs/index", "epochs": 2, "push_to_hub": "me/run"}


@pytest.mark.slow
def test_liger_on_a_cpu_warns_and_trains_without_it(tiny_base, amazon, tmp_path):
    result = run_cli("train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:8]", "--out", tmp_path / "run",
                     "--max-steps", "1", "--batch-size", "4", "liger=true", "prompt=v2", "warmup_ratio=0.2",
                     'target_modules=["q_proj", "v_proj"]', "batch_size=2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "liger's kernels are written for GPUs" in result.stderr
    config = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert config["liger"] is True and config["warmup_ratio"] == 0.2 and config["target_modules"] == ["q_proj", "v_proj"]
    assert config["batch_size"] == 2  # KEY=VALUE wins over the flag
    # the course v2 question, trained with and kept for prediction
    assert json.loads((tmp_path / "run" / "pricer.json").read_text())["params"]["question"] == QUESTIONS["v2"]


def test_the_prompt_question_is_a_recipe_key(tokenizer, amazon):
    item = read_items(f"{amazon / 'dev.jsonl'}[:1]")[0]
    examples = CompletionExamples([item], tokenizer, 182, question=question_of("v2"))
    assert tokenizer.decode(examples[0]["input_ids"]).count("What does this cost to the nearest dollar?") == 1
    assert question_of("How much, roughly?") == "How much, roughly?" and question_of("v1") == QUESTION
    with pytest.raises(PricerError, match="prompt must be v1, v2 or a question"):
        question_of(" ")


@pytest.mark.slow
def test_unknown_or_missing_logger_is_one_clear_line(tiny_base, amazon, tmp_path):
    result = run_cli("train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:8]", "--out", tmp_path, "report_to=mlflow")
    assert result.returncode == 2 and "report_to must be none, tensorboard or wandb" in result.stderr


@pytest.mark.slow
def test_push_to_hub_pushes_every_save_privately_and_is_refused_where_it_cannot(tiny_base, amazon, tmp_path, monkeypatch):
    """The upload itself is huggingface_hub's (through the Trainer) and needs the network, which this machine has not:
    here, the settings it is given and the one-line refusals before any training."""
    from huggingface_hub import constants

    from pricer.llm.training import TrainConfig, check_hub_push, training_arguments

    args = training_arguments(TrainConfig(push_to_hub="someone/pricer-run"), tmp_path / "run", cuda=False)
    assert args.push_to_hub and args.hub_model_id == "someone/pricer-run" and args.hub_strategy == "every_save"
    assert args.hub_private_repo is True and args.save_strategy == "steps"
    assert training_arguments(TrainConfig(), tmp_path / "run", cuda=False).push_to_hub is False

    offline = run_cli("train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:8]", "--out", tmp_path / "r",
                      "--push-to-hub", "someone/pricer-run", env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 2 and "HF_HUB_OFFLINE is set, so nothing can be pushed" in offline.stderr
    assert not (tmp_path / "r").exists()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(PricerError, match="no Hugging Face token"):
        check_hub_push("someone/pricer-run")
    with pytest.raises(PricerError, match="give a hub repository as USER/RUN"):
        check_hub_push("not a repo")


def test_recipe_file(tmp_path):
    (tmp_path / "r.toml").write_text("[train]\nlora_r = 8\nlearning_rate = 2e-4\n")
    assert read_recipe(tmp_path / "r.toml") == {"lora_r": 8, "learning_rate": 2e-4}
    (tmp_path / "bad.toml").write_text("lora_rank = 8\n")
    with pytest.raises(PricerError, match="unknown training settings lora_rank"):
        read_recipe(tmp_path / "bad.toml")


def test_resume_passes_over_a_checkpoint_cut_short_while_saving(tmp_path):
    from pricer.llm.training import last_checkpoint

    assert last_checkpoint(tmp_path / "none") is None
    for step, state in [(3, "{}"), (12, '{"global_step": 12}'), (15, None), (18, '{"global_step": 1')]:
        (tmp_path / f"checkpoint-{step}").mkdir()
        if state is not None:  # none: cut short before the state; a half line: cut short while writing it
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-latest").mkdir()
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-12")


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(tiny_base, amazon, tmp_path):
    run = tmp_path / "run"
    args = [*PRICER, "train", "--base", str(tiny_base), "--train", f"{amazon / 'dev.jsonl'}[:64]",
            "--out", str(run), "--max-steps", "60", "--save-steps", "3", "--batch-size", "2", "logging_steps=50"]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoint-3" / "trainer_state.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (run / "pricer.json").exists(), "the first run finished before it could be killed"
    from pricer.llm.training import last_checkpoint

    done = int(last_checkpoint(run).rsplit("-", 1)[1])  # the newest complete one (a save the kill cut short is not)
    assert done >= 3
    second = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from {run}/checkpoint-{done}" in second.stdout
    assert json.loads((run / "train_result.json").read_text())["global_step"] == 60


@pytest.mark.slow
def test_nearest_products_go_into_training_and_predicting_prompts(tiny_base, amazon, tmp_path):
    from pricer.retrieval.index import PriceIndex

    items = read_items(f"{amazon / 'dev.jsonl'}[:30]")
    PriceIndex.build(items).save(tmp_path / "idx")
    result = run_cli("train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:30]", "--out", tmp_path / "run",
                     "--max-steps", "2", "--save-steps", "0", f"index={tmp_path / 'idx'}", "k=3")
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


@pytest.mark.slow
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
                     "--max-steps", "2", "--batch-size", "4", "--save-steps", "1", "padding_free=true")  # the LoRA-wrapped head
    assert result.returncode == 0, result.stderr[-3000:]
    for run in (tmp_path / "lora", f"{tmp_path / 'lora'}@checkpoint-1"):
        assert np.isfinite(load_predictor(run).predict([items[0].text])).all()

    result = run_cli("train", "--base", tiny_base, "--head", "regression", "--lora-r", "0", "--train", spec,
                     "--out", tmp_path / "mean", "--max-steps", "60", "--batch-size", "8", "--learning-rate", "3e-3",
                     "--save-steps", "0", "pooling=mean", "loss=huber")
    assert result.returncode == 0, result.stderr[-3000:]
    predictor = load_predictor(tmp_path / "mean")
    assert predictor.pooling == "mean"
    guess = np.log1p(predictor.predict([it.text for it in items]))
    assert np.abs(guess - truth).mean() < 0.5 * np.abs(truth.mean() - truth).mean()
    predictor.pooling = "last"  # the same weights read at the last token: not what they were trained for
    assert not np.allclose(np.log1p(predictor.predict([it.text for it in items])), guess, atol=1e-3)
    refused = run_cli("train", "--base", tiny_base, "--head", "regression", "--train", spec, "--out", tmp_path / "r",
                      "padding_free=true", "pooling=mean")
    assert refused.returncode == 2 and "needs padded batches" in refused.stderr
    bad = run_cli("train", "--base", tiny_base, "--head", "classifier", "--train", spec, "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "head must be lm or regression" in bad.stderr


@pytest.mark.slow
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


RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
TRAINING_RECIPES = [p for p in sorted(RECIPES_DIR.glob("*.toml")) if "[ensemble]" not in p.read_text()]
ENSEMBLE_RECIPES = [p for p in sorted(RECIPES_DIR.glob("*.toml")) if "[ensemble]" in p.read_text()]


@pytest.mark.parametrize("recipe", TRAINING_RECIPES, ids=lambda p: p.name)
def test_every_shipped_training_recipe_passes_the_validator(recipe):
    """What `pricer train --config` checks before loading anything: a 4- or 8-bit recipe is refused on this CPU for the
    reason it gives, every other recipe passes."""
    from pricer.llm.training import TrainConfig, check_config

    config = TrainConfig(**read_recipe(recipe))
    if config.quant == "none":
        check_config(config)
    else:
        with pytest.raises(PricerError, match="CUDA"):
            check_config(config)


@pytest.mark.parametrize("recipe", ENSEMBLE_RECIPES, ids=lambda p: p.name)
def test_every_shipped_ensemble_recipe_builds_with_members_that_exist(recipe):
    from pricer.predictors.ensemble import member_template
    from pricer.predictors.registry import ensemble_recipe, make_predictor

    ensemble = make_predictor(str(recipe))
    for member in ensemble_recipe(recipe)["members"]:
        if ".toml" in member:  # a recipe file, with settings over its own where given ("x.toml seed=7")
            assert (RECIPES_DIR.parent / member.split()[0]).exists(), member
            read_recipe(RECIPES_DIR.parent / member.split()[0])
            member_template(str(RECIPES_DIR.parent / member))
        else:
            make_predictor(member)
    assert ensemble.kind == "ensemble"


@pytest.mark.slow
def test_a_recipe_key_given_as_a_flag_is_named_with_the_way_to_give_it(tmp_path):
    result = run_cli("train", "--train", "x.jsonl", "--out", tmp_path, "--padding-free")
    assert result.returncode == 2
    assert "--padding-free: not a flag of pricer train; give it as a recipe setting, e.g. padding_free=VALUE" in result.stderr
    assert not list(tmp_path.iterdir())  # refused before anything was read or written
