"""Fine-tuning of a causal LM (LoRA, QLoRA or every weight) to price a product: it learns to complete `Price is $`
with the price's digits (the course's week 7, as a recipe), or a regression head learns the log price.

The transformers Trainer does the loop: cosine schedule with warm-up, checkpoints every N steps (each one a revision
the predictor can load: RUN_DIR@checkpoint-N), resume after an interruption, seeds, TensorBoard or W&B logging, and
data parallel training under `accelerate launch`, and tokens/s in every log line. What is ours: the examples and
their loss (completions.py for the price digits, head.py for a regression head) and the run directory that
`pricer eval --model RUN_DIR` reads.
"""

import hashlib
import json
import logging
import os
import shutil
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from pricer.errors import PricerError, first_line
from pricer.data.items import Item
from pricer.llm.checkpoints import checkpoint_folders
from pricer.llm.models import LIGER_KERNELS, check_quant, load_base_model, load_tokenizer
from pricer.llm.predictor import LLMPredictor
from pricer.llm.prompts import question_of
from pricer.predictors.base import Predictor, parse_settings
from pricer.predictors.registry import load_predictor
from pricer.retrieval.embeddings import DEFAULT_EMBEDDER
from pricer.storage import atomic_write_json, read_toml

log = logging.getLogger(__name__)


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
    pooling: str = "last"  # regression head: "last" prompt token, or "mean" over the prompt's tokens
    loss: str = "l1"  # regression head: "l1" or "huber" on the standardised log price
    head_lr_scale: float = 1.0  # regression head: its learning rate is this many times the body's (it starts from zero)
    scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.001
    max_grad_norm: float = 0.3
    max_skipped_share: float = 0.05  # steps with non-finite gradients are skipped; past this share of the run, it stops
    max_length: int = 182
    save_steps: int = 2000
    keep_checkpoints: int = 0  # 0 keeps every checkpoint (each a revision to choose from); N keeps the newest N
    logging_steps: int = 10
    seed: int = 42
    report_to: str = "none"  # tensorboard, wandb
    gradient_checkpointing: bool = False
    compile: bool = False  # torch.compile: fuses the many small element-wise kernels that dominate a small model's step
    liger: bool = False  # liger-kernel's fused Triton kernels for the norms, rotary embedding and SwiGLU (GPU only)
    padding_free: bool = False  # a batch's examples end to end in one row: no FLOP on padding (flex attention on GPUs)
    group_by_length: bool = False  # batches of similar lengths (about 10% of a random batch of the pool is padding)
    index: str | None = None  # a retrieval index (`pricer index build`): the k nearest products go into each prompt
    retrieval: bool = False  # or: build that index from the training items, inside the run directory
    retrieval_embedder: str = DEFAULT_EMBEDDER  # the sentence model of that index (all-mpnet-base-v2: make mpnet)
    k: int = 5
    prompt: str = "v1"  # the question before the product: v1 (course v1), v2 (course v2), or a question of its own
    push_to_hub: str | None = None  # USER/RUN: every checkpoint pushed as a commit, as the reference did
    hub_private: bool = True


def read_recipe(path: str | Path) -> dict:
    """Keys of a TOML recipe file, checked against TrainConfig's fields."""
    recipe = read_toml(path)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(recipe.get("train", recipe)) - known)
    if unknown:
        raise PricerError(f"{path}: unknown training settings {', '.join(unknown)}")
    return recipe.get("train", recipe)


def parse_overrides(pairs: list[str]) -> dict:
    """`key=value` pairs from the command line as recipe settings, checked and typed against TrainConfig's fields."""
    defaults = {f.name: f.default_factory() if f.default is MISSING else f.default for f in fields(TrainConfig)}
    return parse_settings(pairs, defaults, "recipe setting")


def skip_non_finite_steps(max_share: float):
    """A callback that skips an optimizer step whose gradients are not all finite (the weights stay as they were; the
    learning-rate schedule goes on), counts and logs it, and ends training with one line once more than `max_share` of
    the run's steps have been skipped. Its count is saved in every checkpoint, so a resumed run keeps it."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import ExportableState

    class SkipNonFiniteSteps(TrainerCallback, ExportableState):
        def __init__(self, skipped: int = 0):  # the Trainer rebuilds it from state() on resume: the share stays this run's
            self.max_share, self.skipped = max_share, skipped

        def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            if not grads or torch.stack([g.isfinite().all() for g in grads]).all():
                return
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None  # optimizers pass over a parameter without a gradient: no update, no moment change
            self.skipped += 1
            allowed = self.max_share * state.max_steps
            log.warning(f"step {state.global_step + 1}: non-finite gradients, step skipped ({self.skipped} so far; "
                        f"at most {allowed:.0f} allowed)")
            if self.skipped > allowed:
                raise PricerError(
                    f"training stopped at step {state.global_step + 1}: {self.skipped} steps had non-finite gradients, "
                    f"more than {self.max_share:.0%} of the run's {state.max_steps}; lower the learning rate, or raise "
                    "max_skipped_share; rerun to resume from the last checkpoint")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs is not None and "loss" in logs:
                logs["skipped_steps"] = self.skipped

        def state(self) -> dict:
            return {"args": {}, "attributes": {"skipped": self.skipped}}

    return SkipNonFiniteSteps()


def skipped_steps(trainer) -> int:
    """How many optimizer steps of this run were skipped for non-finite gradients."""
    return sum(getattr(cb, "skipped", 0) for cb in trainer.callback_handler.callbacks if type(cb).__name__ == "SkipNonFiniteSteps")


def last_checkpoint(run_dir: Path) -> str | None:
    """The newest complete checkpoint. The Trainer writes trainer_state.json last, so a folder without it (or with
    it half written) is one that an interruption cut short while saving; it is passed over, and written again when
    training reaches its step."""
    def complete(folder: Path) -> bool:
        try:
            return isinstance(json.loads((folder / "trainer_state.json").read_text()), dict)
        except (OSError, ValueError):
            return False

    return next((str(folder) for folder in reversed(checkpoint_folders(run_dir)) if complete(folder)), None)


def train(items: list[Item], run_dir: str | Path, config: TrainConfig) -> Path:
    """Fine-tune and save; rerun with the same run_dir to continue from its last checkpoint."""
    check_config(config)
    run_dir = Path(run_dir)
    saved = run_dir / "train_config.json"
    if saved.exists() and json.loads(saved.read_text())["base"] != config.base:
        raise PricerError(f"{run_dir} was trained from another base model; use a new --out")
    resume = last_checkpoint(run_dir)
    atomic_write_json(saved, asdict(config))
    index_for_predictor = config.index
    if config.retrieval and not config.index:
        _own_index(items, run_dir / "index", config.retrieval_embedder)
        config, index_for_predictor = replace(config, index=str(run_dir / "index")), "index"  # relative to the run
    trainer, tokenizer = build_trainer(items, run_dir, config)
    if resume:
        print(f"resuming from {resume}")
    result = trainer.train(resume_from_checkpoint=resume)
    if trainer.is_world_process_zero():
        weights = "adapter" if config.lora_r else "model"
        trainer.model.save_pretrained(run_dir / weights)
        tokenizer.save_pretrained(run_dir / weights)
        atomic_write_json(run_dir / "train_result.json",
                          {**result.metrics, "global_step": result.global_step, "skipped_steps": skipped_steps(trainer)})
        common = dict(base=config.base, adapter=weights, quant=config.quant, index=index_for_predictor, k=config.k,
                      question=question_of(config.prompt))
        if config.head == "regression":
            from pricer.llm.head import LLMRegressor

            mean, std = trainer.train_dataset.scale  # the standardisation the head was trained on
            LLMRegressor(log_mean=mean, log_std=std, pooling=config.pooling, **common).save(run_dir)
        else:
            LLMPredictor(**common).save(run_dir)
    return run_dir


def _own_index(items: list[Item], path: Path, embedder: str) -> None:
    from pricer.retrieval.index import META_FILE, PriceIndex

    if not (path / META_FILE).exists():
        PriceIndex.build(items, embedder).save(path)


class RecipePredictor(Predictor):
    """A language model that `fit` trains from a recipe file, so that it can be a member of a stacked ensemble (which
    refits every member on each fold). Each training run is kept under the cache, named by the recipe and the items:
    fitting again reuses a finished run and resumes an interrupted one."""

    kind = "llm-recipe"
    calibration_folds = 0  # five more trainings would cost hours: calibrated on a held-out file (`--calibrate FILE`)

    def __init__(self, recipe: str = "", overrides: dict | None = None):
        self.recipe, self.overrides = recipe, overrides or {}
        self.run: Predictor | None = None
        self.run_dir: Path | None = None

    def fit(self, items):
        config = TrainConfig(**{**read_recipe(self.recipe), **self.overrides})
        digest = hashlib.sha256(json.dumps([asdict(config), [(it.text, it.price) for it in items]]).encode()).hexdigest()
        from pricer.llm.models import model_cache_dir

        self.run_dir = model_cache_dir().parent / "runs" / f"{Path(self.recipe).stem}-{digest[:16]}"
        if not (self.run_dir / "pricer.json").exists():
            train(items, self.run_dir, config)  # resumes from the run's last checkpoint, if an earlier fit was cut short
            for checkpoint in self.run_dir.glob("checkpoint-*"):
                shutil.rmtree(checkpoint)  # finished: only the final weights are needed
        else:
            log.info(f"reusing the finished run {self.run_dir}")
        self.run = load_predictor(self.run_dir)
        return self

    def predict(self, texts):
        return self.run.predict(texts)

    def parts(self):
        return [self.run] if self.run is not None else []

    def discard(self) -> None:
        """Delete this fit's run (weights, index: gigabytes for a larger model) once nothing will load it again."""
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def save_state(self, path):
        target = path / "run"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.run_dir, target, ignore=shutil.ignore_patterns("checkpoint-*"))

    def load_state(self, path):
        self.run_dir = path / "run"
        self.run = load_predictor(self.run_dir)


def head_scaled_optimizer(model, config: TrainConfig):
    """AdamW in which the regression head learns head_lr_scale times faster than the body, or None (the Trainer's own
    optimizer) where nothing is scaled. The head starts at zero while the body starts trained."""
    if config.head != "regression" or config.head_lr_scale == 1:
        return None
    head, body = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head if {"score", "classifier"} & set(name.split(".")) else body).append(param)
    return torch.optim.AdamW(
        [{"params": body}, {"params": head, "lr": config.learning_rate * config.head_lr_scale}],
        lr=config.learning_rate, weight_decay=config.weight_decay,
    )


def training_arguments(config: TrainConfig, run_dir: Path, cuda: bool):
    """The Trainer's settings from a recipe."""
    from transformers import TrainingArguments

    return TrainingArguments(
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
        activation_checkpointing=config.gradient_checkpointing,
        torch_compile=config.compile,
        use_liger_kernel=_use_liger(config.liger, cuda),
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        liger_kernel_config=LIGER_KERNELS,
        save_strategy="steps" if config.save_steps > 0 else "no",
        save_steps=max(config.save_steps, 1),
        save_total_limit=config.keep_checkpoints or None,  # a full-tuned 1.5B checkpoint with its optimizer is 18 GB
        logging_steps=config.logging_steps,
        report_to=[] if config.report_to == "none" else [config.report_to],
        seed=config.seed,
        data_seed=config.seed,
        include_num_input_tokens_seen="non_padding",  # the tokens of the examples, summed over the processes
        restore_callback_states_from_checkpoint=True,  # the count of skipped steps goes on after a resume
        remove_unused_columns=False,
        dataloader_num_workers=0,
        push_to_hub=bool(config.push_to_hub),  # each save a commit: `pricer checkpoints USER/RUN` lists them
        hub_model_id=config.push_to_hub,
        hub_strategy="every_save",
        hub_private_repo=config.hub_private,
    )


def check_config(config: TrainConfig) -> None:
    """Settings that cannot work, refused in one line before any model or the Trainer is loaded."""
    if config.head not in ("lm", "regression"):
        raise PricerError(f"head must be lm or regression, not {config.head!r}")
    check_quant(config.quant)
    if config.quant != "none" and config.lora_r == 0:
        raise PricerError("--quant needs a LoRA adapter (lora_r > 0): 4- and 8-bit weights cannot be trained themselves")
    check_quant(config.quant, cuda=torch.cuda.is_available())
    from pricer.llm.head import LOSSES, POOLINGS

    if config.pooling not in POOLINGS or config.loss not in LOSSES:
        raise PricerError(f"pooling must be one of {', '.join(POOLINGS)} and loss one of {', '.join(LOSSES)}, not "
                          f"{config.pooling!r} and {config.loss!r}")
    if (config.pooling, config.loss) != ("last", "l1") and config.head != "regression":
        raise PricerError("pooling and loss apply to a regression head (head = \"regression\")")
    if config.pooling == "mean" and config.padding_free:
        raise PricerError("pooling = \"mean\" needs padded batches: set padding_free = false")
    if config.head_lr_scale != 1 and (config.head != "regression" or config.quant != "none"):
        raise PricerError("head_lr_scale applies to a regression head on an unquantised base")
    if not 0 <= config.max_skipped_share < 1:
        raise PricerError(f"max_skipped_share must be at least 0 and below 1, not {config.max_skipped_share}")
    _check_logger(config.report_to)
    question_of(config.prompt)
    if config.push_to_hub:
        check_hub_push(config.push_to_hub)


def check_hub_push(repo_id: str) -> None:
    """--push-to-hub needs a USER/RUN name, the hub in reach and a token; refused in one line before training."""
    from huggingface_hub import constants, get_token

    from pricer.llm.adapters import HUB_ID

    if not HUB_ID.match(repo_id):
        raise PricerError(f"--push-to-hub {repo_id!r}: give a hub repository as USER/RUN")
    if constants.HF_HUB_OFFLINE:
        raise PricerError(f"--push-to-hub {repo_id}: HF_HUB_OFFLINE is set, so nothing can be pushed")
    if not get_token():
        raise PricerError(f"--push-to-hub {repo_id}: no Hugging Face token (set HF_TOKEN or run `hf auth login`)")


def _check_logger(report_to: str) -> None:
    import importlib.util

    needs = {"none": None, "tensorboard": "tensorboard", "wandb": "wandb"}
    if report_to not in needs:
        raise PricerError(f"report_to must be none, tensorboard or wandb, not {report_to!r}")
    if needs[report_to] and importlib.util.find_spec(needs[report_to]) is None:
        raise PricerError(f"report_to={report_to} needs `pip install {needs[report_to]}`")


def _contexts(items: list[Item], config: TrainConfig) -> list[str] | None:
    if not config.index:
        return None
    from pricer.retrieval.index import PriceIndex, neighbour_contexts

    return neighbour_contexts(PriceIndex.load(config.index), [it.text for it in items], config.k)


def _use_liger(wanted: bool, cuda: bool) -> bool:
    if wanted and not cuda:
        log.warning("liger's kernels are written for GPUs; training without them on the CPU")
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
    from transformers import Trainer, set_seed

    from pricer.llm.completions import CompletionExamples, PackedCompletions, PaddedCompletions, completion_loss_for
    from pricer.llm.head import PackedPrompts, PaddedPrompts, PromptExamples, head_loss_for, load_head_model, log_price_scale
    from pricer.llm.models import best_device

    check_config(config)
    regression, full = config.head == "regression", config.lora_r == 0
    set_seed(config.seed)
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
    if config.padding_free and cuda:
        # SDPA would read the joins as a dense mask over the whole row and fall off its fast kernels: 3x slower at the 8B
        # shape (docs/performance.md). Flex attention skips the masked blocks; it compiles for about 100 s first.
        model.set_attn_implementation("flex_attention")
    if cuda and torch.cuda.device_count() > 1 and "LOCAL_RANK" not in os.environ:
        log.warning(
            f"{torch.cuda.device_count()} GPUs in one process: the Trainer falls back to DataParallel, slower "
            "than one GPU here; use `accelerate launch --num_processes N -m pricer.cli train ...`"
        )
    args = training_arguments(config, run_dir, cuda)
    contexts = _contexts(items, config)
    if regression:
        examples = PromptExamples(items, tokenizer, config.max_length, log_price_scale(items), contexts,
                                  question_of(config.prompt))
        collator = PackedPrompts() if config.padding_free else PaddedPrompts(tokenizer.pad_token_id, config.pooling)
        loss = head_loss_for(model, config.pooling, config.loss, packed=config.padding_free)
    else:
        examples = CompletionExamples(items, tokenizer, config.max_length, contexts, question_of(config.prompt))
        collator = PackedCompletions() if config.padding_free else PaddedCompletions(tokenizer.pad_token_id)
        loss = completion_loss_for(model)
    try:
        trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=collator, compute_loss_func=loss,
                          callbacks=[skip_non_finite_steps(config.max_skipped_share)],
                          optimizers=(head_scaled_optimizer(model, config), None))
    except Exception as e:
        if not config.push_to_hub:
            raise
        raise PricerError(f"--push-to-hub {config.push_to_hub}: the hub repository could not be made ({first_line(e)})") from None
    return trainer, tokenizer
