"""The decoders against a model whose next-token probabilities the test sets: a known price distribution."""

import math

import numpy as np
import pytest
import torch

from pricer.predictors.base import first_number
from pricer.llm.decoding import (
    DigitVocab,
    PriceDistribution,
    continuations_of,
    price_distributions,
    top_tokens,
    topk_price,
)


class DigitTokenizer:
    """Token ids: 0-9 are the digits, 10 is '.', 11 is 'x' (a word), 12 is '12' (a two-digit token, as in Llama 3)."""

    strings = [str(d) for d in range(10)] + [".", "x", "12"]

    def __len__(self):
        return len(self.strings)

    def decode(self, ids):
        return "".join(self.strings[i] for i in ids)


def model_with_prices(prices: dict[str, float], no_number: float = 0.0):
    """next_logprobs for a model that writes each price string with the given probability, then '.'.

    The probability of the next token after a prefix is the share of the remaining mass that continues with it.
    """
    tok = DigitTokenizer()
    total = sum(prices.values()) + no_number

    def next_logprobs(sequences):
        rows = []
        for seq in sequences:
            prefix = "".join(tok.strings[i] for i in seq[1:])  # seq[0] is the prompt token
            probs = torch.full((len(tok),), 1e-12)
            here = {p: w for p, w in prices.items() if p.startswith(prefix)}
            mass = sum(here.values()) + (no_number if not prefix else 0)
            for p, w in here.items():
                nxt = p[len(prefix) : len(prefix) + 1]
                probs[10 if nxt == "" else int(nxt)] += w / mass
            if not prefix:
                probs[11] += no_number / mass
            rows.append(torch.log(probs / probs.sum()))
        return torch.stack(rows)

    return tok, next_logprobs, total


def test_recovers_a_known_price_distribution():
    prices = {"5": 0.1, "19": 0.2, "20": 0.3, "199": 0.25, "350": 0.15}
    tok, next_logprobs, _ = model_with_prices(prices)
    (dist,) = price_distributions(continuations_of(next_logprobs, [[99]]), 1, DigitVocab(tok), beams=12)
    got = dict(zip(dist.values.tolist(), dist.probs.tolist()))
    assert got == pytest.approx({5.0: 0.1, 19.0: 0.2, 20.0: 0.3, 199.0: 0.25, 350.0: 0.15}, abs=1e-6)
    assert dist.mass == pytest.approx(1.0, abs=1e-6)
    assert dist.mean() == pytest.approx(0.1 * 5 + 0.2 * 19 + 0.3 * 20 + 0.25 * 199 + 0.15 * 350)
    assert dist.median() == 20.0  # cumulative 0.1, 0.3, 0.6: the median is where 0.5 is passed
    expected_log = math.expm1(sum(w * math.log1p(float(p)) for p, w in prices.items()))
    assert dist.logmean() == pytest.approx(expected_log)
    assert dist.quantile(0.1) == 5.0 and dist.quantile(0.9) == 350.0
    assert dist.median() < dist.mean() and dist.logmean() < dist.mean()  # the decoders differ as they should


def test_no_number_mass_is_reported_and_a_model_without_numbers_gives_none():
    tok, next_logprobs, _ = model_with_prices({"40": 0.5}, no_number=0.5)
    (dist,) = price_distributions(continuations_of(next_logprobs, [[99]]), 1, DigitVocab(tok))
    assert dist.values.tolist() == [40.0] and dist.mass == pytest.approx(0.5, abs=1e-6)
    _, words_only, _ = model_with_prices({}, no_number=1.0)
    assert price_distributions(continuations_of(words_only, [[99]]), 1, DigitVocab(tok)) == [None]


def test_beam_width_limits_what_is_found():
    prices = {str(p): 1 / 30 for p in range(100, 130)}  # 30 prices sharing the prefix 1
    tok, next_logprobs, _ = model_with_prices(prices)
    (narrow,) = price_distributions(continuations_of(next_logprobs, [[99]]), 1, DigitVocab(tok), beams=3)
    (wide,) = price_distributions(continuations_of(next_logprobs, [[99]]), 1, DigitVocab(tok), beams=40)
    assert len(narrow.values) < len(wide.values) == 30
    assert wide.mass == pytest.approx(1.0, abs=1e-6) and narrow.mass < 0.5


def test_several_prompts_in_one_batch():
    tok, cheap, _ = model_with_prices({"3": 1.0})
    results = price_distributions(continuations_of(cheap, [[99], [98]]), 2, DigitVocab(tok))
    assert [r.values.tolist() for r in results] == [[3.0], [3.0]]


def test_topk_is_the_references_weighted_mean_of_number_tokens():
    tok = DigitTokenizer()
    probs = torch.full((len(tok),), 1e-9)
    probs[12], probs[7], probs[11] = 0.5, 0.3, 0.2  # '12', '7', and a word
    top_probs, top_ids = top_tokens(torch.log(probs)[None], k=3)
    assert top_ids[0].tolist() == [12, 7, 11]
    value = topk_price(top_probs[0].tolist(), top_ids[0].tolist(), tok)
    assert value == pytest.approx((12 * 0.5 + 7 * 0.3) / 0.8)
    only_words = torch.full((len(tok),), 1e-9)
    only_words[11] = 1.0
    assert topk_price(*[t[0].tolist() for t in top_tokens(torch.log(only_words)[None], k=1)], tok) is None


def test_first_number_parses_replies():
    assert first_number("129.00 dollars") == 129.0
    assert first_number(" $1,299.99") == 1299.99
    assert first_number("no idea") is None


def test_digit_vocab_finds_multi_digit_tokens():
    vocab = DigitVocab(DigitTokenizer())
    assert sorted(vocab.digits.values()) == sorted([str(d) for d in range(10)] + ["12"])


@pytest.mark.parametrize("noise", [-1e-8, 0.0, 1e-8])
def test_quantile_is_stable_at_an_exact_cumulative_boundary(noise):
    d = PriceDistribution(values=np.array([19.0, 5.0, 350.0]), probs=np.array([0.6, 0.1 + noise, 0.3 - noise]), mass=1.0)
    assert d.quantile(0.1) == 5.0  # the cumulative share reaches 0.1 at 5, whichever side rounding put it on
    assert d.quantile(0.1 + 1e-3) == 19.0 and d.quantile(0.7) == 19.0 and d.quantile(0.7 + 1e-3) == 350.0
    assert d.quantile(0.0) == 5.0 and d.quantile(1.0) == 350.0


def test_distribution_point_rules():
    d = PriceDistribution(values=np.array([10.0, 1000.0]), probs=np.array([0.5, 0.5]), mass=1.0)
    assert d.point("mean") == 505.0 and d.point("logmean") == pytest.approx(math.sqrt(11 * 1001) - 1)
