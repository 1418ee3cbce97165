"""Benchmarks of the project's own inference and training code paths, at any model size.

Speed does not depend on the weights, so `random_weights` builds a model from a config (Llama 3.1 8B's shape by name)
straight on the GPU, with nothing to download. Inference goes through LLMPredictor (batched, length-bucketed, last-
position logits only); the reference's loop is the same decoder one item at a time. Training goes through the same
Trainer set-up as `pricer train`. FLOPs are counted as 2 x parameters per prompt token for a forward pass and 4 x
parameters per token for a LoRA step (forward, and backward through activations; the frozen weights get no gradient).
"""

import tempfile
import time
from pathlib import Path

import torch

from pricer.errors import PricerError

PRESETS = {
    "llama-3.1-8b": dict(
        model_type="llama", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
        intermediate_size=14336, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0,
        tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001,
    ),
    "llama-3.2-3b": dict(  # course v2's base
        model_type="llama", hidden_size=3072, num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8,
        intermediate_size=8192, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0,
        tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001,
    ),
}
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}  # dense bf16, the vendors' datasheets


def random_weights(spec: str, device: str, full_precision: bool = False):
    """A model with random weights from a preset name or a config.json path, built on the device in bf16 (fp32 on CPU
    or where asked)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if spec in PRESETS:
        values = dict(PRESETS[spec])
        config = AutoConfig.for_model(values.pop("model_type"), **values)
    elif Path(spec).exists():
        config = AutoConfig.from_pretrained(spec)
    else:
        raise PricerError(f"--random-weights takes {', '.join(PRESETS)} or a config.json path, not {spec!r}")
    dtype = torch.bfloat16 if str(device).startswith("cuda") and not full_precision else torch.float32  # "cuda:1" too
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model


def count_parameters(model) -> int:
    """Parameters as the matrix products see them: bitsandbytes packs two 4-bit weights into one stored element."""
    return sum(p.numel() * (2 if type(p).__name__ == "Params4bit" else 1) for p in model.parameters())


def peak_tflops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn) -> float:
    _sync()
    start = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - start


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def bench_infer(predictor, texts: list[str], batch_size: int, reference_items: int) -> dict:
    """items/s of the batched path and of the one-at-a-time reference loop, same model, same decoder."""
    n_params = count_parameters(predictor._model)
    replicas = len(predictor._models)
    prompts = predictor.prompt_ids(texts)
    tokens = sum(len(p) for p in prompts)
    predictor.batch_size = batch_size
    predictor.predict_details(texts[:batch_size])  # warm-up: kernels, allocator
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    seconds = _timed(lambda: predictor.predict_details(texts))
    peak_memory = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    predictor.batch_size, models = 1, predictor._models
    predictor._models = models[:1]  # the reference loop: one item at a time on one GPU
    reference = texts[:reference_items]
    reference_seconds = _timed(lambda: predictor.predict_details(reference))
    predictor.batch_size, predictor._models = batch_size, models
    flops = 2 * n_params * tokens  # one forward pass per item (topk); more for the distribution decoders
    peak = peak_tflops()
    return {
        "task": "infer",
        "device": device_name(),
        "decode": predictor.decode,
        "liger": predictor.liger,
        "parameters": n_params,
        "gpus": replicas,
        "items": len(texts),
        "batch_size": batch_size,
        "mean_prompt_tokens": tokens / len(texts),
        "seconds": seconds,
        "items_per_s": len(texts) / seconds,
        "forward_tflops_per_s": flops / seconds / 1e12,
        "share_of_peak": flops / seconds / 1e12 / (peak * replicas) if peak else None,
        "peak_memory_gib": peak_memory,  # of the first GPU
        "reference_items": len(reference),
        "reference_items_per_s": len(reference) / reference_seconds,
        "speedup": (len(texts) / seconds) / (len(reference) / reference_seconds),
    }


def _step_clock():
    """A Trainer callback that notes, at the end of every optimiser step (after the GPU has finished it), the time and
    the tokens seen so far (padding excluded, all processes)."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self.tokens: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):
            _sync()
            self.times.append(time.perf_counter())
            self.tokens.append(state.num_input_tokens_seen)

    return StepClock()


def bench_train(items, config, model=None, tokenizer=None, warmup_steps: int = 2) -> dict:
    """tokens/s of the real Trainer set-up (no checkpoints written), timed after `warmup_steps` steps: the first steps
    pay for kernel selection and allocator growth, which a run of hours does not notice."""
    from pricer.llm.training import build_trainer

    if config.max_steps <= warmup_steps:
        raise PricerError(f"--steps must be more than the {warmup_steps} warm-up steps")
    if warmup_steps < 1:
        raise PricerError("--warmup-steps must be at least 1 (the clock starts at the end of a step)")
    with tempfile.TemporaryDirectory() as run_dir:
        trainer, _ = build_trainer(items, Path(run_dir), config, model=model, tokenizer=tokenizer)
        clock = _step_clock()
        trainer.add_callback(clock)
        n_params = count_parameters(trainer.model)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        result = trainer.train()
    timed_steps = result.global_step - warmup_steps
    seconds = clock.times[-1] - clock.times[warmup_steps - 1]
    real_tokens = clock.tokens[-1] - clock.tokens[warmup_steps - 1]  # of the timed steps' batches, padding excluded
    world = trainer.args.world_size  # processes under `accelerate launch`, each with its own batch
    peak = peak_tflops()
    # LoRA: forward and the activations' gradients (2 + 2 FLOP a weight a token); full fine-tuning adds the weights' (2)
    flops = (6 if config.lora_r == 0 else 4) * n_params * real_tokens
    return {
        "task": "train",
        "device": device_name(),
        "parameters": n_params,
        "steps": result.global_step,
        "timed_steps": timed_steps,
        "processes": world,
        "batch_size": config.batch_size,
        "gradient_checkpointing": config.gradient_checkpointing,
        "compiled": config.compile,
        "padding_free": config.padding_free,
        "group_by_length": config.group_by_length,
        "liger": trainer.args.use_liger_kernel,  # False where asked but not applied (CPU)
        "lora_r": config.lora_r,
        "lora_dropout": config.lora_dropout,
        "seconds": seconds,
        "tokens_per_s": real_tokens / seconds,  # tokens of the items, padding excluded, after the warm-up
        "whole_run_tokens_per_s": clock.tokens[-1] / result.metrics["train_runtime"],  # warm-up included
        "train_tflops_per_s": flops / seconds / 1e12,
        "share_of_peak": flops / seconds / 1e12 / (peak * world) if peak else None,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
    }


def write_result(result: dict, path: str | Path | None) -> None:
    if path:
        from pricer.storage import atomic_write_json

        atomic_write_json(path, {**result, "date": time.strftime("%Y-%m-%d")})


def result_lines(result: dict) -> list[str]:
    return [f"{k}: {v:,.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in result.items()]

