"""The reference's prompt: the question, the product text cut to a token budget, `Price is $`; the completion a model learns.
"""

from pricer.errors import PricerError
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
    return build_prompts([text], tokenizer, max_tokens, [context], question)[0]


def build_prompts(texts: list[str], tokenizer, max_tokens: int | list[int] = MAX_PROMPT_TOKENS,
                  contexts: list[str] | None = None, question: str = QUESTION) -> list[str]:
    """build_prompt for many texts (a budget for all or one each): the tokenizer measures them a batch at a time,
    which fast tokenizers spread over the CPU's cores."""
    contexts = contexts or [""] * len(texts)
    budgets = list(max_tokens) if isinstance(max_tokens, list) else [max_tokens] * len(texts)
    heads = [f"{c}\n{question}\n\n" if c else f"{question}\n\n" for c in contexts]
    tail = f"\n\n{PRICE_PREFIX}"
    with_context = [i for i, c in enumerate(contexts) if c]
    for i, n in zip(with_context, _lengths(tokenizer, [contexts[i] + "\n" for i in with_context])):
        budgets[i] += n
    bodies = [t.strip() for t in texts]
    prompts = [h + b + tail for h, b in zip(heads, bodies)]
    over = [n - b for n, b in zip(_lengths(tokenizer, prompts), budgets)]
    cut = [i for i, o in enumerate(over) if o > 0]
    body_ids = dict(zip(cut, _token_ids(tokenizer, [bodies[i] for i in cut])))
    keep = {i: len(ids) for i, ids in body_ids.items()}
    while cut := [i for i in cut if over[i] > 0 and keep[i] > 1]:  # tokens may merge at the cut: measure again
        for i in cut:
            keep[i] = max(keep[i] - over[i], 1)
            prompts[i] = heads[i] + tokenizer.decode(body_ids[i][: keep[i]]).strip() + tail
        for i, n in zip(cut, _lengths(tokenizer, [prompts[i] for i in cut])):
            over[i] = n - budgets[i]
    return prompts


def prompt_token_ids(texts: list[str], tokenizer, max_tokens: int | list[int] = MAX_PROMPT_TOKENS,
                     contexts: list[str] | None = None, question: str = QUESTION) -> list[list[int]]:
    """The prompts' token ids as the model reads them (with the tokenizer's special tokens, a BOS for Llama)."""
    prompts = build_prompts(texts, tokenizer, max_tokens, contexts, question)
    return _token_ids(tokenizer, prompts, special=True)


def _token_ids(tokenizer, texts: list[str], special: bool = False) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=special)["input_ids"] if texts else []


def _lengths(tokenizer, texts: list[str]) -> list[int]:
    return [len(ids) for ids in _token_ids(tokenizer, texts)]
