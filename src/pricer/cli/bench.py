"""`pricer bench`: speed of the inference and training code paths."""

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from pricer.cli.common import App, GpusOpt, _read, app, console
from pricer.errors import PricerError


bench_app = App(no_args_is_help=True, help="Speed of the inference and training code paths.")


app.add_typer(bench_app, name="bench")


BaseOpt = Annotated[Optional[str], typer.Option(help="A base model (alias, directory, hub id).")]


RandomOpt = Annotated[Optional[str], typer.Option(help="Build the model from a config with random weights: llama-3.1-8b or a config.json.")]


TokenizerOpt = Annotated[Optional[str], typer.Option(help="Tokenizer for --random-weights: llama3 (default) or a transformers id/dir.")]


def _bench_model(base, random_weights, tokenizer, quant="none", devices=None, full_precision=False):
    """The model (one per device where several are given) and its tokenizer; fp32 weights for full fine-tuning, as
    `pricer train` loads them (bf16 autocast computes, the optimiser updates fp32 masters)."""
    from pricer.data.curation import load_tokenizer as load_curation_tokenizer
    from pricer.llm.models import best_device, load_base_model, load_tokenizer

    if bool(base) == bool(random_weights):
        raise PricerError("give one of --base or --random-weights")
    if base:
        import torch

        dtype = torch.float32 if full_precision else None
        models = [load_base_model(base, quant, device=d, dtype=dtype) for d in devices or [best_device()]]
        return (models if devices else models[0]), load_tokenizer(base)
    from pricer.llm.bench import random_weights as build

    tok = load_curation_tokenizer(tokenizer or "llama3")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    models = [build(random_weights, d, full_precision) for d in devices or [best_device()]]
    return (models if devices else models[0]), tok


@bench_app.command("infer")
def bench_infer_cmd(
    data: Annotated[str, typer.Option(help="Items whose texts are priced.")],
    base: BaseOpt = None,
    random_weights: RandomOpt = None,
    tokenizer: TokenizerOpt = None,
    quant: str = "none",
    items: int = 512,
    batch_size: int = 64,
    decode: str = "topk",
    reference_items: Annotated[int, typer.Option(help="Items for the one-at-a-time reference loop.")] = 32,
    gpus: GpusOpt = 1,
    liger: Annotated[bool, typer.Option(help="liger-kernel's fused norms, rotary and SwiGLU (GPU only).")] = False,
    out: Annotated[Optional[Path], typer.Option(help="JSON file for the figures.")] = None,
):
    """items/s of batched price inference against the reference's one-item loop."""
    from pricer.llm.batching import inference_devices
    from pricer.llm.bench import bench_infer, result_lines, write_result
    from pricer.llm.predictor import LLMPredictor

    models, tok = _bench_model(base, random_weights, tokenizer, quant, devices=inference_devices(gpus))
    predictor = LLMPredictor.from_loaded(models, tok, decode=decode, batch_size=batch_size, liger=liger)
    texts = [it.text for it in _read(data)]
    texts = (texts * -(-items // len(texts)))[:items]  # the data again as often as --items needs
    result = bench_infer(predictor, texts, batch_size, reference_items)
    write_result(result, out)
    console.print("\n".join(result_lines(result)))


@bench_app.command("train")
def bench_train_cmd(
    data: Annotated[str, typer.Option(help="Training items.")],
    base: BaseOpt = None,
    random_weights: RandomOpt = None,
    tokenizer: TokenizerOpt = None,
    quant: str = "none",
    steps: int = 30,
    warmup_steps: Annotated[int, typer.Option(help="Steps run before the clock starts (compilation, allocator).")] = 2,
    batch_size: int = 16,
    lora_r: int = 32,
    lora_targets: Annotated[str, typer.Option(help="Comma-separated modules that get LoRA, or `all-linear`.")] = "q_proj,k_proj,v_proj,o_proj",
    lora_dropout: float = 0.1,
    gradient_checkpointing: bool = False,
    compile: Annotated[bool, typer.Option(help="torch.compile the model (the Trainer's torch_compile).")] = False,
    liger: Annotated[bool, typer.Option(help="liger-kernel's fused norms, rotary and SwiGLU (GPU only).")] = False,
    padding_free: Annotated[bool, typer.Option(help="A batch's examples end to end in one row: no FLOP on padding.")] = False,
    group_by_length: Annotated[bool, typer.Option(help="Batches of similar lengths: less padding.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="JSON file for the figures.")] = None,
):
    """tokens/s of LoRA training (or full fine-tuning, --lora-r 0) through the same Trainer set-up as `pricer train`."""
    from pricer.llm.bench import bench_train, result_lines, write_result
    from pricer.llm.training import TrainConfig

    model, tok = _bench_model(base, random_weights, tokenizer, quant, full_precision=lora_r == 0)
    targets = "all-linear" if lora_targets == "all-linear" else lora_targets.split(",")
    config = TrainConfig(base=base or random_weights, quant=quant, max_steps=steps, batch_size=batch_size, lora_r=lora_r,
                         lora_alpha=2 * lora_r, target_modules=targets, lora_dropout=lora_dropout, compile=compile, liger=liger,
                         padding_free=padding_free, group_by_length=group_by_length,
                         gradient_checkpointing=gradient_checkpointing, save_steps=0, logging_steps=max(steps, 1))
    world = int(os.environ.get("WORLD_SIZE", 1))
    # a full batch for every process and step (a short last batch would make torch.compile compile again), and as many
    # items as a run's length-grouped sampler sorts together (transformers' "megabatches" of up to 50 batches)
    pool = max(steps, 200) * batch_size * world
    items = _read(data)
    items = (items * -(-pool // len(items)))[:pool]
    result = bench_train(items, config, model=model, tokenizer=tok, warmup_steps=warmup_steps)
    write_result(result, out)
    console.print("\n".join(result_lines(result)))
