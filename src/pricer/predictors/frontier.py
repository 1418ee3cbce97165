"""A frontier model behind any OpenAI-compatible chat endpoint, asked with the reference's prompt.

Base URL, model and key come from arguments or the environment (PRICER_FRONTIER_URL or OPENAI_BASE_URL, PRICER_FRONTIER_MODEL,
OPENAI_API_KEY). Every answer is cached on disk by (model, messages), so a rerun of an evaluation sends nothing twice.
With an index (pricer.retrieval), the five most similar known products and their prices go into the prompt, as in the
reference's week 8.
"""

import hashlib
import json
import os
import sqlite3
import time

from pricer.errors import PricerError
from pricer.data.items import CONTEXT_END, FRONTIER_QUESTION
from pricer.predictors.base import Predictor, first_number, prices_from_details
from pricer.storage import cache_dir

SYSTEM = "You estimate prices of items. Reply only with the price, no explanation."
DEFAULT_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


def user_message(text: str, similar: list[tuple[str, float]] | None = None) -> str:
    context = ""
    if similar:
        context = "To provide some context, here are some other items that might be similar to the item you need to estimate.\n\n"
        context += "".join(f"Potentially related product:\n{t}\nPrice is ${p:.2f}\n\n" for t, p in similar)
        context += f"{CONTEXT_END}\n\n"
    return f"{context}{FRONTIER_QUESTION}\n\n{text}"


class FrontierPredictor(Predictor):
    kind = "frontier"
    calibration_folds = 0  # nothing to fit: calibrated on a held-out file (`--calibrate FILE`)

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        index: str | None = None,
        k: int = 5,
        timeout: float = 30.0,
        retries: int = 3,
        input_cost: float = 0.15,  # dollars per million tokens (gpt-4o-mini's list price)
        output_cost: float = 0.60,
    ):
        self.model = model or os.environ.get("PRICER_FRONTIER_MODEL", DEFAULT_MODEL)
        self.base_url = (base_url or os.environ.get("PRICER_FRONTIER_URL") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_URL).rstrip("/")
        self.index, self.k, self.timeout, self.retries = index, k, timeout, retries
        self.input_cost, self.output_cost = input_cost, output_cost
        self.usage = {"requests": 0, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
        self._index = None
        self._db = None

    def fit(self, items):
        return self  # nothing to learn: the knowledge is the model's, the context the index's

    def _cache(self) -> sqlite3.Connection:
        if self._db is None:
            path = cache_dir() / "frontier.sqlite"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT)")
        return self._db

    def messages(self, text: str) -> list[dict]:
        similar = None
        if self.index:
            from pricer.retrieval.index import PriceIndex

            self._index = self._index or PriceIndex.load(self.index)
            similar = [(hit["text"], hit["price"]) for hit in self._index.query([text], self.k)[0]]
        return [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": user_message(text, similar)},
            {"role": "assistant", "content": "Price is $"},
        ]

    def ask(self, messages: list[dict]) -> str:
        key = hashlib.sha256(json.dumps([self.model, messages]).encode()).hexdigest()
        row = self._cache().execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        if row:
            self.usage["cached"] += 1
            return row[0]
        reply = self._post(messages)
        with self._cache() as db:
            db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?)", (key, reply))
        return reply

    def _post(self, messages: list[dict]) -> str:
        import httpx

        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise PricerError("the frontier predictor needs an API key: set OPENAI_API_KEY")
        body = {"model": self.model, "messages": messages, "max_tokens": 7, "seed": 42}
        last = None
        for attempt in range(self.retries + 1):
            try:
                response = httpx.post(
                    f"{self.base_url}/chat/completions", json=body, timeout=self.timeout,
                    headers={"Authorization": f"Bearer {key}"},
                )
            except httpx.HTTPError as e:
                last = f"cannot reach {self.base_url}: {type(e).__name__}"
            else:
                if response.status_code == 200:
                    data = response.json()
                    self._count(data.get("usage") or {})
                    return data["choices"][0]["message"]["content"]
                last = f"{self.base_url} answered {response.status_code}: {response.text[:200]}"
                if response.status_code not in (408, 409, 429) and response.status_code < 500:
                    break  # a request error will not mend itself
            if attempt < self.retries:
                time.sleep(min(2**attempt, 8))
        raise PricerError(last)

    def _count(self, usage: dict):
        prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        self.usage["requests"] += 1
        self.usage["prompt_tokens"] += prompt
        self.usage["completion_tokens"] += completion
        self.usage["cost_usd"] += (prompt * self.input_cost + completion * self.output_cost) / 1e6

    def predict_details(self, texts):
        details = []
        for text in texts:
            reply = self.ask(self.messages(text))
            details.append({"price": first_number(reply)})
        return details

    def predict(self, texts):
        return prices_from_details(self.predict_details(texts))


def frontier_from_spec(spec: str) -> FrontierPredictor:
    """`frontier`, `frontier:MODEL`; the endpoint and index from the environment (PRICER_FRONTIER_INDEX)."""
    model = spec.split(":", 1)[1] if ":" in spec else None
    return FrontierPredictor(model=model, index=os.environ.get("PRICER_FRONTIER_INDEX") or None)

