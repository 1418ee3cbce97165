"""The price service: any predictor behind FastAPI.

POST /v1/price, POST /v1/price/batch, GET /health, the OpenAPI page at /docs, and POST /v1/chat/completions, an
OpenAI-compatible endpoint that answers with this service's own model (so the frontier predictor can be pointed at it).
The model is loaded once. Requests that arrive together are gathered into one batch on the way to the model; when the
model fails on a batch, its items are retried one by one, so only the request that made it fail gets the error.
"""

import asyncio
import json
import math
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from pricer import __version__
from pricer.data import MAX_TEXT_CHARS

MAX_BATCH = 256


class ProductIn(BaseModel):
    """A product as free text, or as the fields of a listing (joined the way curation joins them)."""

    text: str | None = Field(None, description="The product text; or give the fields below.")
    title: str | None = None
    description: str | list[str] | None = None
    features: str | list[str] | None = None
    details: str | dict | None = None

    @model_validator(mode="after")
    def _has_text(self):
        text = self.joined()
        if not text.strip():
            raise ValueError("give a non-empty text, or a title")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"text of {len(text):,} characters is over the limit of {MAX_TEXT_CHARS:,}")
        return self

    def joined(self) -> str:
        if self.text is not None:
            return self.text
        parts = [self.title or ""]
        for part in (self.description, self.features):
            if part:
                parts.append("\n".join(part) if isinstance(part, list) else part)
        if self.details:
            parts.append(json.dumps(self.details) if isinstance(self.details, dict) else self.details)
        return "\n".join(p for p in parts if p)


class BatchIn(BaseModel):
    items: list[ProductIn] = Field(..., min_length=1, max_length=MAX_BATCH)


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatIn(BaseModel):
    model: str | None = None
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: int | None = None


class MicroBatcher:
    """Gathers the texts of concurrent requests into batches of up to max_size, waiting at most max_wait seconds."""

    def __init__(self, predict_batch, max_size: int = 64, max_wait: float = 0.005):
        self.predict_batch, self.max_size, self.max_wait = predict_batch, max_size, max_wait
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def start(self):
        self.task = asyncio.create_task(self._run())

    async def stop(self):
        if self.task:
            self.task.cancel()

    async def submit(self, texts: list[str]) -> list[dict]:
        futures = []
        for text in texts:
            future = asyncio.get_running_loop().create_future()
            await self.queue.put((text, future))
            futures.append(future)
        return list(await asyncio.gather(*futures))

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self.queue.get()]
            deadline = loop.time() + self.max_wait
            while len(pending) < self.max_size:
                try:
                    pending.append(await asyncio.wait_for(self.queue.get(), max(deadline - loop.time(), 0)))
                except asyncio.TimeoutError:
                    break
            pending = [(t, f) for t, f in pending if not f.done()]  # a client that went away
            if not pending:
                continue
            try:
                results = await loop.run_in_executor(None, self.predict_batch, [t for t, _ in pending])
            except Exception:  # the model failed on something in the batch: try each item alone, fail only the culprits
                for text, f in pending:
                    try:
                        (result,) = await loop.run_in_executor(None, self.predict_batch, [text])
                    except Exception as e:
                        result = e
                    if not f.done():
                        f.set_exception(result) if isinstance(result, Exception) else f.set_result(result)
                continue
            for (_, f), result in zip(pending, results):
                if not f.done():
                    f.set_result(result)


def create_app(predictor, model_name: str, max_batch: int = 64) -> FastAPI:
    from pricer.evaluation import predict_details

    def predict_batch(texts):
        return predict_details(predictor, texts)

    batcher = MicroBatcher(predict_batch, max_size=max_batch)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="pricer", version=__version__, lifespan=lifespan, description=__doc__)
    stats = {"requests": 0, "items": 0, "failures": 0}

    def answer(detail: dict) -> dict:
        price = detail.get("price")
        out = {"price": None if price is None or not math.isfinite(price) else round(price, 2)}
        if "low" in detail:
            out["interval_80"] = [round(detail["low"], 2), round(detail["high"], 2)]
        return out

    async def priced(texts: list[str]) -> list[dict]:
        stats["requests"] += 1
        stats["items"] += len(texts)
        try:
            return [answer(d) for d in await batcher.submit(texts)]
        except Exception as e:
            stats["failures"] += 1
            raise HTTPException(status_code=500, detail=f"the model failed on this request: {type(e).__name__}: {e}")

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name, "kind": predictor.kind, "version": __version__, **stats}

    @app.post("/v1/price")
    async def price(product: ProductIn):
        (result,) = await priced([product.joined()])
        return {**result, "model": model_name, "version": __version__}

    @app.post("/v1/price/batch")
    async def price_batch(batch: BatchIn):
        results = await priced([p.joined() for p in batch.items])
        return {"prices": results, "model": model_name, "version": __version__}

    @app.post("/v1/chat/completions")
    async def chat(request: ChatIn):
        """OpenAI-compatible: the last user message is the product; the reply is `Price is $X.XX`."""
        users = [m.content for m in request.messages if m.role == "user"]
        if not users or not users[-1].strip():
            raise HTTPException(status_code=422, detail="no user message with a product in it")
        (result,) = await priced([users[-1][:MAX_TEXT_CHARS]])
        content = f"Price is ${result['price']:.2f}" if result["price"] is not None else "I cannot tell."
        prompt_tokens = sum(len(m.content.split()) for m in request.messages)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model or model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 4, "total_tokens": prompt_tokens + 4},
        }

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError):
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    return app
