"""LoRA / QLoRA fine-tuning of a causal LM to complete `Price is $` — the reference's week 7, as a recipe.

The transformers Trainer does the loop: cosine schedule with warm-up, checkpoints every N steps (each one a revision
the predictor can load: RUN_DIR@checkpoint-N), resume after an interruption, seeds, TensorBoard or W&B logging, and
data parallel training under `accelerate launch`, and tokens/s in every log line. What is ours: the examples (loss
only on the completion after `Price is $`), a batch layout that makes that loss cheap, and the run directory that
`pricer eval --model RUN_DIR` reads.

Why the loss is ours: it falls on the last few tokens of each example (the price), yet a causal LM computes logits,
in fp32 for the loss, at every position: for a 128K-token vocabulary that is most of the activation memory. So the
model is asked for its final hidden states and one position of logits, and the output layer is applied to the price
positions alone. Batches are padded on the right: with left padding a padded row attends to nothing, and CUDA's
attention kernels can return NaN there, which the backward pass spreads into every gradient.
"""

import hashlib
import json
import os
import shutil
import sys
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from pricer import PricerError
from pricer.data import Item
from pricer.llm import (
    MAX_PROMPT_TOKENS, LLMPredictor, build_prompt, completion, load_base_model, load_tokenizer, right_padded,
)
from pricer.predictors import Predictor, load_predictor
from pricer.storage import atomic_write_json


@dataclass
class TrainConfig:
    """The reference's hyper-parameters as defaults; a recipe file (TOML) or flags override any of them."""

    base: str = "smollm2-135m"
    head: str = "lm"  # "lm": the price is read from the digits it writes; "regression": a linear head on the last token
    quant: str = "none"
    lora_r: int = 32  # 0: full fine-tuning, every weight trained (small models)
    lora_alpha: int = 64
    lora_dropout: float = 0.1
    target_modules: list[str] | str = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])  # or "all-linear"
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 1e-4
    scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.001
    max_grad_norm: float = 0.3
    max_length: int = 182
    save_steps: int = 2000
    logging_steps: int = 10
    seed: int = 42
    report_to: str = "none"  # tensorboard, wandb
    gradient_checkpointing: bool = False
    compile: bool = False  # torch.compile: fuses the many small element-wise kernels that dominate a small model's step
    liger: bool = False  # liger-kernel's fused Triton kernels for the norms, rotary embedding and SwiGLU (GPU only)
    index: str | None = None  # a retrieval index (`pricer index build`): the k nearest products go into each prompt
    retrieval: bool = False  # or: build that index from the training items, inside the run directory
    k: int = 5


def read_recipe(path: str | Path) -> dict:
    """Keys of a TOML recipe file, checked against TrainConfig's fields."""
    path = Path(path)
    try:
        recipe = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PricerError(f"{path}: no such recipe file") from None
    except tomllib.TOMLDecodeError as e:
        raise PricerError(f"{path}: not valid TOML ({e})") from None
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(recipe.get("train", recipe)) - known)
    if unknown:
        raise PricerError(f"{path}: unknown training settings {', '.join(unknown)}")
    return recipe.get("train", recipe)


class CompletionExamples(torch.utils.data.Dataset):
    """Prompt + completion token ids; the labels hide the prompt (-100), so the loss falls on the price alone."""

    def __init__(self, items: list[Item], tokenizer, max_length: int, contexts: list[str] | None = None):
        self.examples = []
        for item, context in zip(items, contexts or [""] * len(items)):
            answer_ids = tokenizer.encode(completion(item.price), add_special_tokens=False)
            budget = min(MAX_PROMPT_TOKENS, max_length - len(answer_ids) - 2)  # room for special tokens
            prompt_ids = tokenizer.encode(build_prompt(item.text, tokenizer, budget, context), add_special_tokens=True)
            ids = prompt_ids + answer_ids
            labels = [-100] * len(prompt_ids) + answer_ids
            self.examples.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]


class PaddedCompletions:
    """Collator: pads on the right, and asks the model for its final hidden states instead of all its logits."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict:
        return {
            "input_ids": right_padded([e["input_ids"] for e in examples], self.pad_token_id),
            "attention_mask": right_padded([e["attention_mask"] for e in examples], 0),
            "labels": right_padded([e["labels"] for e in examples], -100),
            "output_hidden_states": True,
            "logits_to_keep": 1,  # the model's own logits: one position, unused
        }


def completion_loss_for(model):
    """The loss function (for the Trainer's compute_loss_func): the output layer applied at the price positions only,
    where the hidden state at t predicts token t + 1. Gemma-style logit soft-capping is kept."""
    output_layer = model.get_output_embeddings()
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)

    def completion_loss(outputs, labels, num_items_in_batch=None):
        hidden, targets = outputs.hidden_states[-1][:, :-1], labels[:, 1:]
        scored = targets != -100
        logits = output_layer(hidden[scored].to(output_layer.weight.dtype)).float()  # autocast may hand fp32 states
        if cap:
            logits = cap * torch.tanh(logits / cap)
        loss = torch.nn.functional.cross_entropy(logits, targets[scored], reduction="sum")
        return loss / (num_items_in_batch if num_items_in_batch is not None else scored.sum())

    return completion_loss


def _stop_on_nan():
    """A callback that ends training at the first log line whose gradient norm is not finite: from there on the weights
    are NaN and every further step (and checkpoint) is wasted."""
    import math

    from transformers import TrainerCallback

    class StopOnNaN(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            norm = (logs or {}).get("grad_norm")
            if norm is not None and not math.isfinite(float(norm)):
                raise PricerError(f"training diverged at step {state.global_step} (gradient norm {norm}); "
                                  "lower the learning rate, or resume from an earlier checkpoint")

    return StopOnNaN()


def last_checkpoint(run_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(run_dir)) if run_dir.is_dir() else None


def train(items: list[Item], run_dir: str | Path, config: TrainConfig) -> Path:
    """Fine-tune and save; rerun with the same run_dir to continue from its last checkpoint."""
    run_dir = Path(run_dir)
    saved = run_dir / "train_config.json"
    if saved.exists() and json.loads(saved.read_text())["base"] != config.base:
        raise PricerError(f"{run_dir} was trained from another base model; use a new --out")
    resume = last_checkpoint(run_dir)
    atomic_write_json(saved, asdict(config))
    index_for_predictor = config.index
    if config.retrieval and not config.index:
        _own_index(items, run_dir / "index")
        config, index_for_predictor = replace(config, index=str(run_dir / "index")), "index"  # relative to the run
    trainer, tokenizer = build_trainer(items, run_dir, config)
    if resume:
        print(f"resuming from {resume}")
    result = trainer.train(resume_from_checkpoint=resume)
    if trainer.is_world_process_zero():
        weights = "adapter" if config.lora_r else "model"
        trainer.model.save_pretrained(run_dir / weights)
        tokenizer.save_pretrained(run_dir / weights)
        atomic_write_json(run_dir / "train_result.json", {**result.metrics, "global_step": result.global_step})
        common = dict(base=config.base, adapter=weights, quant=config.quant, index=index_for_predictor, k=config.k)
        if config.head == "regression":
            from pricer.llm_head import LLMRegressor

            mean, std = trainer.train_dataset.scale  # the standardisation the head was trained on
            LLMRegressor(log_mean=mean, log_std=std, **common).save(run_dir)
        else:
            LLMPredictor(**common).save(run_dir)
    return run_dir


def _own_index(items: list[Item], path: Path) -> None:
    from pricer.retrieval import META_FILE, PriceIndex

    if not (path / META_FILE).exists():
        PriceIndex.build(items).save(path)


class RecipePredictor(Predictor):
    """A language model that `fit` trains from a recipe file, so that it can be a member of a stacked ensemble (which
    refits every member on each fold). Each training run is kept under the cache, named by the recipe and the items:
    fitting again reuses a finished run and resumes an interrupted one."""

    kind = "llm-recipe"

    def __init__(self, recipe: str = ""):
        self.recipe = recipe
        self.run: Predictor | None = None
        self.run_dir: Path | None = None

    def params(self):
        return {"recipe": self.recipe}

    def fit(self, items):
        config = TrainConfig(**read_recipe(self.recipe))
        digest = hashlib.sha256(json.dumps([asdict(config), [(it.text, it.price) for it in items]]).encode()).hexdigest()
        from pricer.llm import model_cache_dir

        self.run_dir = model_cache_dir().parent / "runs" / f"{Path(self.recipe).stem}-{digest[:16]}"
        if not (self.run_dir / "pricer.json").exists():
            train(items, self.run_dir, config)  # resumes from the run's last checkpoint, if an earlier fit was cut short
            for checkpoint in self.run_dir.glob("checkpoint-*"):
                shutil.rmtree(checkpoint)  # finished: only the final weights are needed
        else:
            print(f"reusing the finished run {self.run_dir}", file=sys.stderr)
        self.run = load_predictor(self.run_dir)
        return self

    def predict(self, texts):
        return self.run.predict(texts)

    def save_state(self, path):
        target = path / "run"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.run_dir, target, ignore=shutil.ignore_patterns("checkpoint-*"))

    def load_state(self, path):
        self.run_dir = path / "run"
        self.run = load_predictor(self.run_dir)


def _check_logger(report_to: str) -> None:
    import importlib.util

    needs = {"none": None, "tensorboard": "tensorboard", "wandb": "wandb"}
    if report_to not in needs:
        raise PricerError(f"--report-to must be none, tensorboard or wandb, not {report_to!r}")
    if needs[report_to] and importlib.util.find_spec(needs[report_to]) is None:
        raise PricerError(f"--report-to {report_to} needs `pip install {needs[report_to]}`")


def _contexts(items: list[Item], config: TrainConfig) -> list[str] | None:
    if not config.index:
        return None
    from pricer.retrieval import PriceIndex, neighbour_contexts

    return neighbour_contexts(PriceIndex.load(config.index), [it.text for it in items], config.k)


# The loss is ours (the output layer at the price positions only), so liger's fused linear cross-entropy stays off.
LIGER_KERNELS = {"rope": True, "rms_norm": True, "swiglu": True, "cross_entropy": False, "fused_linear_cross_entropy": False}


def _use_liger(wanted: bool, cuda: bool) -> bool:
    if wanted and not cuda:
        print("warning: liger's kernels are written for GPUs; training without them on the CPU", file=sys.stderr)
        return False
    if wanted:
        try:
            import liger_kernel  # noqa: F401
        except ImportError:
            raise PricerError("liger = true needs the liger-kernel package: pip install liger-kernel") from None
    return wanted


def build_trainer(items: list[Item], run_dir: Path, config: TrainConfig, model=None, tokenizer=None):
    """The Trainer over base + fresh LoRA adapter; `model` and `tokenizer` may be given (benchmarks use random weights)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import Trainer, TrainingArguments, set_seed

    from pricer.llm import best_device
    from pricer.llm_head import PaddedPrompts, PromptExamples, absolute_error_loss, load_head_model, log_price_scale

    regression, full = config.head == "regression", config.lora_r == 0
    if config.head not in ("lm", "regression"):
        raise PricerError(f"head must be lm or regression, not {config.head!r}")
    if config.quant != "none" and full:
        raise PricerError("--quant needs a LoRA adapter (lora_r > 0): 4- and 8-bit weights cannot be trained themselves")
    set_seed(config.seed)
    _check_logger(config.report_to)
    tokenizer = tokenizer or load_tokenizer(config.base)
    if model is None and regression:
        model = load_head_model(config.base, best_device(), full_precision=full, quant=config.quant)
    elif model is None:
        model = load_base_model(config.base, config.quant, dtype=torch.float32 if full else None)
    if config.quant != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    if not full:
        lora = LoraConfig(
            task_type="SEQ_CLS" if regression else "CAUSAL_LM",  # SEQ_CLS also trains the new head in full
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.target_modules if isinstance(config.target_modules, str) else list(config.target_modules),
        )
        model = get_peft_model(model, lora)
        model.print_trainable_parameters()

    cuda = torch.cuda.is_available()
    if cuda and torch.cuda.device_count() > 1 and "LOCAL_RANK" not in os.environ:
        print(
            f"warning: {torch.cuda.device_count()} GPUs in one process: the Trainer falls back to DataParallel, slower "
            "than one GPU here; use `accelerate launch --num_processes N -m pricer.cli train ...`",
            file=sys.stderr,
        )
    args = TrainingArguments(
        output_dir=str(run_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.scheduler,
        warmup_steps=config.warmup_ratio,  # transformers 5 reads a value below 1 as a fraction of the steps
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        optim="paged_adamw_32bit" if config.quant != "none" else "adamw_torch",
        bf16=cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        gradient_checkpointing=config.gradient_checkpointing,
        torch_compile=config.compile,
        use_liger_kernel=_use_liger(config.liger, cuda),
        liger_kernel_config=LIGER_KERNELS,
        save_strategy="steps" if config.save_steps > 0 else "no",
        save_steps=max(config.save_steps, 1),
        logging_steps=config.logging_steps,
        report_to=[] if config.report_to == "none" else [config.report_to],
        seed=config.seed,
        data_seed=config.seed,
        include_num_input_tokens_seen=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    contexts = _contexts(items, config)
    if regression:
        examples = PromptExamples(items, tokenizer, config.max_length, log_price_scale(items), contexts)
        collator, loss = PaddedPrompts(tokenizer.pad_token_id), absolute_error_loss
    else:
        examples = CompletionExamples(items, tokenizer, config.max_length, contexts)
        collator, loss = PaddedCompletions(tokenizer.pad_token_id), completion_loss_for(model)
    trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=collator, compute_loss_func=loss,
                      callbacks=[_stop_on_nan()])
    return trainer, tokenizer
