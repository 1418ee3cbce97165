"""The reference's prompt: the question, the product text cut to a token budget, `Price is $`; the completion a model learns.
"""

from pricer import PricerError
from pricer.data.items import COURSE_QUESTIONS

# The question of each course version; a recipe's `prompt` names one, or gives a question of its own.
QUESTIONS = dict(zip(("v1", "v2"), COURSE_QUESTIONS))
QUESTION = QUESTIONS["v1"]


def question_of(prompt: str) -> str:
    """`v1`, `v2`, or a question given in full."""
    question = QUESTIONS.get(prompt, prompt)
    if not question.strip():
        raise PricerError(f"prompt must be v1, v2 or a question, not {prompt!r}")
    return question.strip()


PRICE_PREFIX = "Price is $"


MAX_PROMPT_TOKENS = 174  # the reference trains on 182-token sequences: a BOS, the prompt, up to 7 completion tokens


def completion(price: float) -> str:
    return f"{round(price)}.00"


def build_prompt(text: str, tokenizer, max_tokens: int = MAX_PROMPT_TOKENS, context: str = "",
                 question: str = QUESTION) -> str:
    """The reference's prompt, ending in `Price is $`, after an optional context (similar products and prices);
    the product text is cut so the prompt fits max_tokens plus the context's own tokens."""
    if context:
        max_tokens += len(tokenizer.encode(context + "\n", add_special_tokens=False))
    head, tail = f"{context}\n{question}\n\n" if context else f"{question}\n\n", f"\n\n{PRICE_PREFIX}"
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
