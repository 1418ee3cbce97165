"""A regression head on a causal LM: the last prompt token's hidden state (or the mean over the prompt's tokens), through
one linear layer, is the log price.

The reference reads the price out of the digits the model writes. A small model tuned on a few thousand items spreads
its digit probabilities thinly, and the cross-entropy it learns from does not know that $199 is close to $200. A head
fitted with an absolute-error loss on the log price learns the quantity that is scored. The prompt is the reference's
(with the nearest known products, if an index is given); transformers' `AutoModelForSequenceClassification` with one
output is the head, LoRA or full fine-tuning (`lora_r = 0`) trains it; `pricer train` with `head = "regression"`.
"""


import numpy as np
import torch

from pricer.data.items import Item
from pricer.llm.batching import device_of, flattened, right_padded
from pricer.llm.models import load_base_model, load_tokenizer
from pricer.llm.predictor import LLMPredictor
from pricer.llm.prompts import MAX_PROMPT_TOKENS, QUESTION, prompt_token_ids
from pricer.predictors.base import constructor_params, prices_from_details

MAX_DEVIATIONS = 6.0


def log_price_scale(items: list[Item]) -> tuple[float, float]:
    """Mean and standard deviation of log(1 + price): the head learns standardised values."""
    logs = np.log1p([it.price for it in items])
    return float(logs.mean()), float(logs.std() or 1.0)


class PromptExamples(torch.utils.data.Dataset):
    """Prompt token ids and the standardised log price as a float label."""

    def __init__(self, items: list[Item], tokenizer, max_length: int, scale: tuple[float, float], contexts=None,
                 question: str = QUESTION):
        self.scale = scale
        mean, std = scale
        budget = min(MAX_PROMPT_TOKENS, max_length - 2)
        prompts = prompt_token_ids([it.text for it in items], tokenizer, budget, contexts, question)
        self.examples = [
            {"input_ids": ids, "labels": (np.log1p(item.price) - mean) / std} for ids, item in zip(prompts, items)
        ]

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]


POOLINGS = ("last", "mean")  # the head reads the last prompt token's hidden state, or the mean over the prompt's tokens
LOSSES = ("l1", "huber")
HUBER_DELTA = 0.25  # standard deviations of log price: quadratic within about 30% of the price, absolute beyond


class PaddedPrompts:
    """Collator: pads on the right (see training.py for why). Pooling "last": the head finds each row's last token that
    is not padding, the label is one number a row. Pooling "mean": the label sits at the row's last token, -100 before
    and after it, which tells the loss where the row ends (the Trainer counts the labels that are not -100 as the
    batch's examples, so there is one a row)."""

    def __init__(self, pad_token_id: int, pooling: str = "last"):
        self.pad_token_id, self.pooling = pad_token_id, pooling

    def __call__(self, examples: list[dict]) -> dict:
        ids = [e["input_ids"] for e in examples]
        batch = {"input_ids": right_padded(ids, self.pad_token_id), "attention_mask": right_padded([[1] * len(i) for i in ids], 0)}
        if self.pooling == "mean":
            labels = right_padded([[-100.0] * (len(e["input_ids"]) - 1) + [float(e["labels"])] for e in examples], -100.0)
            return {**batch, "labels": labels.float(), "output_hidden_states": True}
        return {**batch, "labels": torch.tensor([e["labels"] for e in examples], dtype=torch.float32)}


class PackedPrompts:
    """Collator for padding-free training: the examples end to end in one row (see batching.flattened); the label is
    at each example's last token and -100 elsewhere, so the head is read exactly where the padded layout reads it."""

    def __call__(self, examples: list[dict]) -> dict:
        labels = [value for e in examples for value in [-100.0] * (len(e["input_ids"]) - 1) + [e["labels"]]]
        return {**flattened(examples), "labels": torch.tensor([labels], dtype=torch.float32),
                "output_hidden_states": True}


def head_of(model) -> torch.nn.Module:
    """The one-output linear layer on top (`score` or `classifier`; inside a LoRA model, its trained copy)."""
    return next(module for name, module in model.named_modules() if name.split(".")[-1] in ("score", "classifier"))


def mean_pooled(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each row's hidden states averaged over the positions where mask is true."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1)


def up_to_last_label(labels: torch.Tensor) -> torch.Tensor:
    """For right-padded rows labelled at their last token: true at that token and every one before it."""
    last = (labels != -100).int().argmax(1)
    return torch.arange(labels.shape[1], device=labels.device)[None, :] <= last[:, None]


def price_error(values: torch.Tensor, labels: torch.Tensor, loss: str = "l1") -> torch.Tensor:
    """The summed error in standardised log price. L1's minimiser is the median, the point that minimises the $ error
    too; Huber is divided by its delta, so beyond it the gradient is L1's and the learning rate means the same."""
    if loss == "huber":
        return torch.nn.functional.huber_loss(values, labels, reduction="sum", delta=HUBER_DELTA) / HUBER_DELTA
    return torch.nn.functional.l1_loss(values, labels, reduction="sum")


def head_loss_for(model, pooling: str = "last", loss: str = "l1", packed: bool = False):
    """The loss function for the Trainer's compute_loss_func, for PaddedPrompts (or, `packed`, PackedPrompts) batches:
    the error averaged over the examples of the whole (accumulated, all-process) batch as the Trainer counts them."""
    head = head_of(model)

    def head_loss(outputs, labels, num_items_in_batch=None):
        if packed:  # the head applied to the final hidden state at each labelled position
            labelled = labels != -100
            values, targets = head(outputs.hidden_states[-1][labelled])[:, 0], labels[labelled]
        elif pooling == "mean":
            labelled = labels != -100
            values = head(mean_pooled(outputs.hidden_states[-1], up_to_last_label(labels)))[:, 0]
            targets = labels[labelled]  # one a row
        else:  # the model's own reading of each row's last token
            values, targets = outputs.logits[:, 0], labels
        total = price_error(values.float(), targets.float(), loss)
        return total / (num_items_in_batch if num_items_in_batch is not None else len(targets))

    return head_loss


def load_head_model(base: str, device: str, full_precision: bool = False, quant: str = "none"):
    """The base (in 4 or 8 bits where asked) with a fresh one-output head; fp32 weights for full fine-tuning (the
    Trainer's bf16 is autocast)."""
    from transformers import AutoModelForSequenceClassification

    tokenizer = load_tokenizer(base)
    model = load_base_model(base, quant, device, quiet=True, dtype=torch.float32 if full_precision else None,
                            model_class=AutoModelForSequenceClassification, num_labels=1)
    head = getattr(model, "score", None) or getattr(model, "classifier", None)
    if isinstance(head, torch.nn.Linear):  # bitsandbytes leaves the output layer unquantised
        # A fresh head starts at the mean price: a random one on hidden states as large as Gemma's starts some 20
        # standard deviations off, which an absolute-error loss walks back only slowly. (A trained head is loaded
        # over this afterwards.)
        torch.nn.init.zeros_(head.weight)
    model.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last token that is not padding
    return model


class LLMRegressor(LLMPredictor):
    """Base (+ LoRA adapter, or fully tuned weights) with a regression head; same prompts and batching as `llm`."""

    kind = "llm-regressor"

    def __init__(self, log_mean: float = 0.0, log_std: float = 1.0, adapter: str = "adapter", pooling: str = "last",
                 **params):
        params.pop("decode", None)
        super().__init__(decode="mean", adapter=adapter, **params)
        self.log_mean, self.log_std, self.pooling = log_mean, log_std, pooling

    def params(self):
        params = constructor_params(self, LLMPredictor)  # this __init__ takes the language model's as **params
        params = {k: v for k, v in params.items() if k not in ("decode", "beams", "top_k", "max_new_tokens")}
        return {**params, "log_mean": self.log_mean, "log_std": self.log_std, "pooling": self.pooling}

    def _bare_model(self, tuned_whole, device):
        if tuned_whole is None:
            return load_head_model(self.base, device, quant=self.quant)  # the adapter's trained head is loaded over it
        from transformers import AutoModelForSequenceClassification

        return load_base_model(str(tuned_whole), device=device, quiet=True, model_class=AutoModelForSequenceClassification)

    def predict_details_here(self, texts: list[str]) -> list[dict]:
        prompts = self.prompt_ids(texts)
        values = np.empty(len(prompts))

        collate = PaddedPrompts(self._tokenizer.pad_token_id)  # the training layout, whatever the base reads first

        def forward(model, rows):
            batch = collate([{"input_ids": prompts[i], "labels": 0.0} for i in rows])
            device = device_of(model)
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            if self.pooling == "mean":
                hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
                out = head_of(model)(mean_pooled(hidden, mask.bool()))
            else:
                out = model(input_ids=ids, attention_mask=mask).logits
            values[rows] = out[:, 0].float().cpu().numpy()

        self._on_replicas(forward, self._length_batches(prompts))
        values = np.clip(values, -MAX_DEVIATIONS, MAX_DEVIATIONS)  # no astronomic prices from a head gone astray
        prices = np.expm1(self.log_mean + self.log_std * values)
        return [{"price": float(max(p, 0.0))} for p in prices]

    def predict(self, texts):
        return prices_from_details(self.predict_details(texts))
