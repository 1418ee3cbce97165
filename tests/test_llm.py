import json
import math

import numpy as np
import pytest

from conftest import run_cli
from pricer import PricerError
from pricer.data.items import read_items
from pricer.llm.models import load_tokenizer
from pricer.llm.predictor import LLMPredictor
from pricer.llm.prompts import PRICE_PREFIX, build_prompt, build_prompts
from pricer.predictors.registry import load_predictor


def test_prompt_is_the_references_and_fits_the_budget(tokenizer):
    prompt = build_prompt("A red kettle\nBoils fast", tokenizer)
    assert prompt == f"How much does this cost to the nearest dollar?\n\nA red kettle\nBoils fast\n\n{PRICE_PREFIX}"
    long = build_prompt("word " * 2000, tokenizer, max_tokens=100)
    assert long.endswith(PRICE_PREFIX) and len(tokenizer.encode(long, add_special_tokens=False)) <= 100


def test_prompts_built_in_a_batch_are_those_built_one_by_one_and_fit_their_budgets(tokenizer):
    """The batched builder (what prediction and training use) cuts each text on its own budget, context included."""
    texts = ["A red kettle", "word " * 300, "Steel pan " * 80, "  padded text  "]
    contexts = ["", "Similar: a kettle $20", "", "Similar: a pan $9"]
    budgets = [174, 60, 40, 25]
    prompts = build_prompts(texts, tokenizer, budgets, contexts)
    assert prompts == [build_prompt(t, tokenizer, b, c) for t, b, c in zip(texts, budgets, contexts)]
    for prompt, text, budget, context in zip(prompts, texts, budgets, contexts):
        allowed = budget + (len(tokenizer.encode(context + "\n", add_special_tokens=False)) if context else 0)
        assert prompt.endswith(PRICE_PREFIX) and len(tokenizer.encode(prompt, add_special_tokens=False)) <= allowed
        body = prompt.removesuffix(f"\n\n{PRICE_PREFIX}").split("\n\n", 1)[1]
        assert text.strip().startswith(body)
    assert len(prompts[1]) < len(texts[1])  # the long text was cut


@pytest.mark.slow
def test_eval_of_a_run_that_writes_prices_with_every_decoder(priced_run, amazon, tmp_path):
    """median through the real command; the other decoders through the same evaluation in this process (a new
    process per decoder would spend its time importing transformers). Every decoder reads a price for every item."""
    from pricer.evaluation.tester import evaluate

    items = read_items(f"{amazon / 'dev.jsonl'}[1250:1254]")
    result = run_cli("eval", "--model", priced_run, "--data", f"{amazon / 'dev.jsonl'}[1250:]", "--size", "4",
                     "--decode", "median", "--out", tmp_path / "median", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "80% interval: holds the price for" in " ".join(result.stdout.split())  # its coverage, printed
    predictor = load_predictor(priced_run)
    for decode in ("greedy", "topk", "mean", "logmean"):
        predictor.decode = decode
        evaluate(predictor, items, tmp_path / decode, name=decode)
    for decode in ("greedy", "topk", "mean", "median", "logmean"):
        out = tmp_path / decode
        summary = json.loads((out / "summary.json").read_text())
        rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
        assert summary["n"] == 4 and len(rows) == 4 and summary["no_price"] == 0, decode
        assert all(math.isfinite(r["guess"]) and r["guess"] >= 0 and not r.get("no_price") for r in rows), decode
        if decode in ("mean", "median", "logmean"):
            assert all(0 < r["low"] < r["high"] for r in rows), decode
            assert summary["interval_items"] == 4 and 0 <= summary["interval_coverage"] <= 1, decode
        else:
            assert "interval_coverage" not in summary, decode
    medians = [json.loads(line) for line in (tmp_path / "median" / "items.jsonl").read_text().splitlines()]
    assert all(r["low"] <= r["guess"] <= r["high"] for r in medians)  # the 10% and 90% points hold the 50% one
    means = [json.loads(line)["guess"] for line in (tmp_path / "mean" / "items.jsonl").read_text().splitlines()]
    assert len(set(means)) == 4  # a price read from each text, not one number for all


@pytest.mark.slow
def test_a_language_model_run_is_calibrated_on_held_out_items(priced_run, amazon, tmp_path):
    """A training run cannot be refitted on folds: `pricer calibrate` gives it its interval from items it did not
    learn from (it learned dev[:40]), written into the run's folder and used by every command after."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(priced_run, run)
    calibrated = run_cli("calibrate", "--model", run, "--data", f"{amazon / 'dev.jsonl'}[40:100]")
    assert calibrated.returncode == 0, calibrated.stderr[-3000:]
    assert (run / "intervals.json").exists() and "80% interval calibrated on" in calibrated.stdout
    predictor = load_predictor(run)
    (detail,) = predictor.estimate([read_items(f"{amazon / 'dev.jsonl'}[100:101]")[0].text])
    low, high = predictor.calibration.interval([detail["price"]])
    assert 0 < detail["low"] == low[0] < detail["high"] == high[0]  # (a tiny model's interval need not hold its guess)


@pytest.mark.slow
def test_a_runs_untrained_model_writes_no_price_and_says_so(tiny_run, amazon, tmp_path):
    """The tiny LoRA run on a random base: its greedy replies hold no number, which the Tester counts and flags."""
    result = run_cli("eval", "--model", tiny_run, "--data", f"{amazon / 'dev.jsonl'}[1250:]", "--size", "3",
                     "--decode", "greedy", "--out", tmp_path, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert summary["no_price"] == sum(bool(r.get("no_price")) for r in rows) == 3
    assert all(r["guess"] == 0 for r in rows)


@pytest.mark.slow
def test_checkpoint_revision_loads_and_a_missing_one_is_named(tiny_run, priced_run):
    predictor = load_predictor(f"{tiny_run}@checkpoint-2")
    assert predictor.adapter == "checkpoint-2"
    assert load_predictor(f"{tiny_run}@4").adapter == "checkpoint-4"
    with pytest.raises(PricerError, match="no checkpoint-9 .*checkpoint-2"):
        load_predictor(f"{tiny_run}@checkpoint-9")
    texts = ["A blue bicycle bell", "Stainless steel frying pan, 28 cm, induction"]
    half, whole = [], []
    for n, prices in ((10, half), (20, whole)):
        predictor = load_predictor(f"{priced_run}@checkpoint-{n}")
        predictor.decode = "mean"
        prices.extend(predictor.predict(texts))
    half, whole = np.array(half), np.array(whole)
    assert np.all(np.abs(np.log(half / whole)) > 0.1), (half, whole)  # each revision's own weights, not the last


def test_unknown_decoder_is_refused():
    with pytest.raises(PricerError, match="--decode must be one of"):
        LLMPredictor(decode="mode")


@pytest.mark.slow
def test_real_smollm2_learns_prices_and_its_adapter_loads_back(amazon, tmp_path):
    """The real 135M model, a few steps on CPU: the loss falls and the saved adapter predicts."""
    run = tmp_path / "smol"
    result = run_cli(
        "train", "--base", "smollm2-135m", "--train", f"{amazon / 'dev.jsonl'}[:16]", "--out", run,
        "--max-steps", "8", "--batch-size", "4", "--learning-rate", "1e-3", "logging_steps=1", "--save-steps", "100",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((run / "checkpoint-8" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 8 and sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses
    predicted = run_cli("predict", "--model", run, "--decode", "median", read_items(f"{amazon / 'dev.jsonl'}[1250:1251]")[0].text)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert predicted.stdout.startswith("$") and float(predicted.stdout.split()[0][1:].replace(",", "")) > 0


@pytest.mark.slow
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


@pytest.mark.slow
def test_replica_processes_agree_with_one_process(tiny_run, amazon):
    """`--gpus N` runs a process per GPU; here two processes on the CPU, over the saved run."""
    from pricer.llm.replicas import ReplicaProcesses

    texts = [it.text for it in read_items(f"{amazon / 'dev.jsonl'}[:9]")]
    predictor = load_predictor(tiny_run)
    predictor.decode, predictor.batch_size = "mean", 2  # the mean differs from text to text: an order that is lost shows
    here = [d["price"] for d in predictor.predict_details(texts)]
    assert len(set(here)) == len(texts)
    processes = ReplicaProcesses(predictor.one_replica(), ["cpu", "cpu"])
    try:
        assert [d["price"] for d in processes.predict_details(texts)] == pytest.approx(here, rel=1e-5)
        assert [d["price"] for d in processes.predict_details(texts[:1])] == pytest.approx(here[:1], rel=1e-5)
        assert len(processes._pool._processes) == 2
    finally:
        processes.close()
    broken = ReplicaProcesses(LLMPredictor(base=str(tiny_run / "no-such-model")), ["cpu", "cpu"])
    try:
        with pytest.raises(PricerError, match="no-such-model"):  # an error in a process reaches the caller as it was
            broken.predict_details(texts)
    finally:
        broken.close()


@pytest.mark.slow
def test_digit_search_with_cached_prompts_equals_the_search_that_rereads_them(tiny_base, amazon):
    """The KV-cache path (each prompt run once, the beams' digits fed after it) finds the same prices with the same
    probabilities as re-reading prompt + digits for every beam and step."""
    import torch
    from transformers import AutoModelForCausalLM

    from pricer.llm.decoding import continuations_of, price_distributions
    from pricer.llm.prompt_cache import CachedPrompts

    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    predictor = LLMPredictor.from_loaded(model, load_tokenizer(str(tiny_base)), batch_size=4)
    prompts = predictor.prompt_ids([it.title for it in read_items(f"{amazon / 'dev.jsonl'}[:6]")])  # lengths differ
    assert len({len(p) for p in prompts}) > 1
    with torch.inference_mode():
        cached = predictor.distributions(prompts)
        reread = price_distributions(continuations_of(predictor.next_logprobs, prompts), len(prompts), predictor._vocab)
        one_row_passes = price_distributions(CachedPrompts(model, prompts, predictor._tokenizer.pad_token_id, 1),
                                             len(prompts), predictor._vocab)
    for a, b, c in zip(cached, reread, one_row_passes):
        assert sorted(a.values) == sorted(b.values) == sorted(c.values)
        assert a.mean() == pytest.approx(b.mean(), rel=1e-4) and a.mass == pytest.approx(b.mass, rel=1e-4)
        assert c.mean() == pytest.approx(a.mean(), rel=1e-4)


def test_beam_passes_shrink_to_the_gpus_free_memory():
    from pricer.llm.prompt_cache import rows_that_fit

    mib, gib = 2**20, 2**30
    assert rows_that_fit(1536, 128, 25 * mib, None) == 1536  # the CPU: no limit
    assert rows_that_fit(1536, 128, 25 * mib, 60 * gib) == 1536  # the 8B at batch 128 on an 80 GB card
    assert 64 < rows_that_fit(768, 64, 25 * mib, 17 * gib) < 768  # a 4-bit 8B on a 24 GB card: smaller passes
    assert rows_that_fit(768, 64, 25 * mib, 1 * gib) == 64  # never fewer than the batch of prompts


def test_liger_asked_on_the_cpu_warns_and_prices_as_without(priced_run, caplog):
    """liger's kernels are Triton (CUDA): on the CPU the predictor says so and runs its plain forward pass."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(priced_run / "model", dtype=torch.float32)
    tokenizer = load_tokenizer(str(priced_run / "model"))
    fused = LLMPredictor.from_loaded(model, tokenizer, decode="mean", batch_size=4, liger=True)
    assert "liger" in caplog.text and caplog.records[-1].levelname == "WARNING"
    plain = LLMPredictor.from_loaded(model, tokenizer, decode="mean", batch_size=4)
    texts = ["A blue bicycle bell", "Steel frying pan, 28 cm"]
    prices = plain.predict_details(texts)
    assert all(d["price"] > 0 for d in prices) and prices[0] != prices[1]
    assert fused.predict_details(texts) == prices


@pytest.mark.slow
def test_the_page_answer_carries_a_language_models_interval(tiny_run):
    """/v1/estimate, served on loopback, with a distribution decoder: the 80% interval and the verdict judged on it."""
    import httpx

    from conftest import Server
    from pricer.serving.app import create_app

    predictor = load_predictor(tiny_run)
    predictor.decode = "median"
    with Server(create_app(predictor, "tiny")) as url:
        answer = httpx.post(f"{url}/v1/estimate", json={"title": "A blue bicycle bell", "offer": 0.5}, timeout=120).json()
    low, high = answer["interval_80"]
    assert low <= answer["price"] <= high
    assert answer["verdict"]["why"].endswith(f"its 80% range ${low:,.2f}-${high:,.2f}")
    assert answer["verdict"]["verdict"] == ("good deal" if 0.5 < low else "fair price")


@pytest.mark.slow
def test_select_chooses_the_trained_checkpoint_and_run_at_best_loads_it(priced_run, amazon, tmp_path):
    """`pricer checkpoints` lists each revision with its logged loss; `pricer select` scores them on items the run never
    saw and records the trained one (checkpoint-20), which `RUN@best` then loads through the CLI."""
    from pricer.evaluation.selection import score_checkpoints

    listed = run_cli("checkpoints", priced_run)
    assert listed.returncode == 0, listed.stderr
    history = json.loads((priced_run / "checkpoint-20" / "trainer_state.json").read_text())["log_history"]
    logged = {h["step"]: h["loss"] for h in history if "loss" in h}
    rows = {line.split()[1]: line for line in listed.stdout.splitlines() if "checkpoint-" in line}
    assert set(rows) == {"checkpoint-10", "checkpoint-20"}
    assert f"{logged[10]:.4f}" in rows["checkpoint-10"] and f"{logged[20]:.4f}" in rows["checkpoint-20"]
    assert logged[20] < logged[10]

    data = f"{amazon / 'dev.jsonl'}[1250:1274]"
    selected = run_cli("select", priced_run, "--data", data, "--metric", "mae", "--decode", "mean", "--out", tmp_path / "s")
    assert selected.returncode == 0, selected.stderr[-3000:]
    best = json.loads((priced_run / "best.json").read_text())
    assert best["revision"] == "checkpoint-20"
    text = read_items(data)[0].text
    at_best, at_20 = (run_cli("predict", "--model", f"{priced_run}@{rev}", "--decode", "mean", text)
                      for rev in ("best", "checkpoint-20"))
    assert at_best.returncode == 0 and at_best.stdout == at_20.stdout, at_best.stderr[-2000:]

    with pytest.raises(PricerError, match="--metric must be one of"):
        score_checkpoints(str(priced_run), read_items(data), tmp_path / "x", metric="accuracy")
    (priced_run / "best.json").unlink()
    with pytest.raises(PricerError, match="no checkpoint chosen yet"):
        load_predictor(f"{priced_run}@best")
