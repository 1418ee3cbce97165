"""Reading a price out of a language model's next-token distribution.

The decoders only need log-probabilities of the next token: `next_logprobs(sequences) -> [n, vocab]` after whole
sequences, or, for the digit search, `continuations(pairs) -> [n, vocab]` after prompt i followed by a few tokens (so a
model can keep each prompt's KV cache and feed only the new tokens). Either can be a fake whose probabilities a test
controls.

- greedy: the reference's model_predict, the first number in a short greedy continuation (see predictor.py).
- topk: the reference's improved predictor, the probability-weighted mean of the top-K next tokens that are numbers.
  Right where a whole price is one token (Llama 3); with digit-by-digit tokenizers it sees only the first digit.
- the price distribution: a beam search over digit tokens that finds the most probable whole prices and their
  probabilities, for any tokenizer. Its mean, median (best point for absolute error) or log-mean (best for squared log
  error), and an 80% interval.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from pricer.errors import PricerError

MIN_SHARE = 1e-6  # prices holding less than this share of the found mass are noise, dropped
MIN_MASS = 1e-6  # a model that puts less than this on all numbers together gave no number
QUANTILE_TOLERANCE = 1e-6  # cumulative shares this close to q count as reaching it (float32 softmax noise is ~1e-7)


class DigitVocab:
    """Which token ids spell digits only (`7`, `42`, `999` in Llama 3; `0`-`9` in SmolLM2 and Gemma)."""

    def __init__(self, tokenizer):
        self.vocab_size = len(tokenizer)
        self.digits: dict[int, str] = {}
        for token_id in range(self.vocab_size):
            text = tokenizer.decode([token_id])
            if text.isdigit() and text.isascii():
                self.digits[token_id] = text
        if not self.digits:
            raise ValueError("this tokenizer has no digit tokens")
        self.ids = torch.tensor(sorted(self.digits))
        self.texts = [self.digits[i] for i in self.ids.tolist()]


@dataclass
class PriceDistribution:
    values: np.ndarray  # whole prices found
    probs: np.ndarray  # their probabilities, normalised to sum to 1
    mass: float  # how much of the model's probability the found prices hold before normalising

    def mean(self) -> float:
        return float(np.dot(self.values, self.probs))

    def quantile(self, q: float) -> float:
        """The smallest price whose cumulative probability reaches q.

        "Reaches" allows QUANTILE_TOLERANCE of slack, so a boundary that is exact in the model (a cumulative 0.1 at
        q = 0.1) gives the same answer whichever side of it float rounding lands on.
        """
        order = np.argsort(self.values)
        cumulative = np.cumsum(self.probs[order]) / self.probs.sum()
        index = np.searchsorted(cumulative, q - QUANTILE_TOLERANCE)
        return float(self.values[order][min(index, len(order) - 1)])

    def median(self) -> float:
        return self.quantile(0.5)

    def logmean(self) -> float:
        """exp(E[log(1 + price)]) - 1: the point that minimises the expected squared log error."""
        return float(math.expm1(np.dot(np.log1p(self.values), self.probs)))

    def point(self, rule: str) -> float:
        return {"mean": self.mean, "median": self.median, "logmean": self.logmean}[rule]()


def top_tokens(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most probable next tokens of each row of logits (or log-probabilities): their probabilities and ids."""
    return torch.softmax(logits.float(), dim=-1).topk(k)


def topk_price(probs: list[float], token_ids: list[int], tokenizer) -> float | None:
    """The reference's improved decoder over one row's top tokens: the probability-weighted mean of those that are
    numbers."""
    prices, weights = [], []
    for p, token_id in zip(probs, token_ids):
        try:
            value = float(tokenizer.decode([token_id]))
        except ValueError:
            continue
        if value > 0 and math.isfinite(value):
            prices.append(value)
            weights.append(p)
    return float(np.dot(prices, weights) / sum(weights)) if prices else None


def continuations_of(next_logprobs, prompts: list[list[int]]):
    """`continuations` over a `next_logprobs` that reads whole sequences (recomputing each prompt every time)."""
    return lambda pairs: next_logprobs([prompts[i] + ids for i, ids in pairs])


def price_distributions(
    continuations, n_prompts: int, vocab: DigitVocab, beams: int = 12, max_digits: int = 4
) -> list[PriceDistribution | None]:
    """For each of n prompts, the most probable whole prices that follow it and their probabilities.

    A beam is a run of digit tokens. At each step every live beam asks for the next-token distribution: the mass
    on non-digit tokens ends the number there (a price found, `12` then `.`), the digit tokens extend it. Each prompt
    keeps its `beams` most probable runs. None for a prompt whose model puts no mass on any number.
    """
    found: list[dict[int, float]] = [{} for _ in range(n_prompts)]
    live = [(i, "", [], 0.0) for i in range(n_prompts)]  # (prompt index, digits so far, token ids, log-prob)
    digit_ids = vocab.ids.tolist()
    for _ in range(max_digits + 1):
        if not live:
            break
        logprobs = continuations([(i, ids) for i, _, ids, _ in live])
        digit_logprobs = logprobs.index_select(1, vocab.ids.to(logprobs.device)).float().cpu()  # a copy of a few rows
        ends = (1.0 - digit_logprobs.exp().sum(dim=1)).clamp(min=0.0).tolist()  # the mass that ends the number here
        top = digit_logprobs.topk(min(beams, digit_logprobs.shape[1]), dim=1)
        grown: dict[int, list] = {}
        for (i, digits, ids, logp), end, values, indices in zip(live, ends, top.values.tolist(), top.indices.tolist()):
            if digits:
                value = int(digits)
                found[i][value] = found[i].get(value, 0.0) + math.exp(logp) * end
            if len(digits) >= max_digits:
                continue
            for lp, j in zip(values, indices):
                text = vocab.texts[j]
                if len(digits) + len(text) <= max_digits and lp > -30:
                    grown.setdefault(i, []).append((i, digits + text, ids + [digit_ids[j]], logp + lp))
        live = [beam for i in sorted(grown) for beam in sorted(grown[i], key=lambda b: -b[3])[:beams]]
    results = []
    for prices in found:
        floor = MIN_SHARE * sum(prices.values())
        prices = {v: p for v, p in prices.items() if p > floor and v > 0}
        if sum(prices.values()) < MIN_MASS:
            results.append(None)
            continue
        values = np.array(list(prices), dtype=float)
        probs = np.array(list(prices.values()))
        results.append(PriceDistribution(values=values, probs=probs / probs.sum(), mass=float(probs.sum())))
    return results


DECODERS = ("greedy", "topk", "mean", "median", "logmean")


def check_decode(decode: str) -> str:
    if decode not in DECODERS:
        raise PricerError(f"--decode must be one of {', '.join(DECODERS)}, not {decode!r}")
    return decode
