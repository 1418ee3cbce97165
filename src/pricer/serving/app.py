"""The price service: any predictor behind FastAPI.

GET / is the web page (serving/page.html): one product priced with its verdict and nearest known products, a file of
products priced into a table, and the current deals. Its JSON: POST /v1/estimate, POST /v1/price/file, GET /v1/deals.
POST /v1/price, POST /v1/price/batch, GET /health, the OpenAPI page at /docs, and the OpenAI-compatible pair
GET /v1/models and POST /v1/chat/completions (streamed as server-sent events when asked), which answer with this
service's own model, so the frontier predictor or any OpenAI client can be pointed at it.
The model is loaded once. Requests that arrive together are gathered into one batch on the way to the model; when the
model fails on a batch, its items are retried one by one, so only the request that made it fail gets the error.
Facing a network: request bodies over a limit are refused (413) before they are read whole, and with an API key set,
every /v1/ route and the API's documents (/docs, /redoc, /openapi.json) want `Authorization: Bearer KEY` (401
without it) while /health stays open and says only that the service is up.
This module holds the routes; the request bodies are in schemas.py, the body limit in middleware.py, the batcher and
the board of deals in workers.py.
"""

import asyncio
import csv
import hmac
import io
import json
import math
import re
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from pricer import PricerError, __version__
from pricer.data.items import MAX_TEXT_CHARS, product_text_of_prompt
from pricer.data.text import product_text
from pricer.deals.offers import TABULAR, tabular_rows
from pricer.deals.verdict import verdict
from pricer.serving.middleware import MAX_BODY_BYTES, BodyLimit
from pricer.serving.schemas import FILE_BODY, BatchIn, ChatIn, ErrorOut, EstimateIn, ProductIn
from pricer.serving.workers import DealBoard, MicroBatcher


def create_app(predictor, model_name: str, max_batch: int = 64, api_key: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, index=None, deal_sources: list[str] | None = None,
               deals_every: float = 900) -> FastAPI:
    """index: a PriceIndex for the nearest known products; deal_sources: feeds or offer files scanned at start and
    every deals_every seconds for GET /v1/deals."""
    batcher = MicroBatcher(predictor.estimate, max_size=max_batch)
    deals = DealBoard(deal_sources or [], deals_every, predictor.calibration)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        if deal_sources:
            deals.start(batcher)
        yield
        await deals.stop()
        await batcher.stop()

    errors = {400: {"model": ErrorOut, "description": "The body is not valid JSON"},
              413: {"model": ErrorOut, "description": "The request body is over the limit"},
              422: {"model": ErrorOut, "description": "The request is not one this route can answer; `detail` says why"},
              500: {"model": ErrorOut, "description": "The model failed on this request"}}
    if api_key:
        errors[401] = {"model": ErrorOut, "description": "No API key, or a wrong one"}
    app = FastAPI(title="pricer", version=__version__, lifespan=lifespan, description=__doc__, responses=errors)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    stats = {"requests": 0, "items": 0, "failures": 0}
    started = int(time.time())

    async def check_api_key(request: Request, call_next):
        if request.url.path.startswith("/v1/") or request.url.path in KEYED_DOCS:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                reason = "a wrong API key" if given else "no API key"
                return JSONResponse(
                    status_code=401, headers={"WWW-Authenticate": "Bearer"},
                    content={"detail": f"{reason}: send the header `Authorization: Bearer KEY`",
                             "error": {"message": f"{reason} was sent", "type": "invalid_request_error", "code": "invalid_api_key"}},
                )
        return await call_next(request)

    if api_key:  # without a key no request pays for the middleware
        app.middleware("http")(check_api_key)

    def answer(detail: dict) -> dict:
        price = detail.get("price")
        out = {"price": None if price is None or not math.isfinite(price) else round(price, 2)}
        if "low" in detail:
            out["interval_80"] = [round(detail["low"], 2), round(detail["high"], 2)]
        return out

    def judge(result: dict, offer: float) -> dict:
        """The verdict on an offer from an answer of priced(): by its interval, with the calibrated chance that the
        product is worth more than the offer where the model has a calibration."""
        low, high = result.get("interval_80", (None, None))
        calibration = predictor.calibration
        chance = calibration.chance_above(result["price"], offer) if calibration is not None and low is not None else None
        return verdict(result["price"], offer, low, high, chance)

    async def priced(texts: list[str]) -> list[dict]:
        stats["requests"] += 1
        stats["items"] += len(texts)
        try:
            return [answer(d) for d in await batcher.submit(texts)]
        except Exception as e:
            stats["failures"] += 1
            raise HTTPException(status_code=500, detail=f"the model failed on this request: {type(e).__name__}: {e}")

    def status() -> dict:
        return {"status": "ok", "model": model_name, "kind": predictor.kind, "version": __version__,
                "auth": bool(api_key), "index": index is not None, "deals": bool(deal_sources), **stats}

    @app.get("/health")
    async def health():
        """That the service is up; without an API key also what /v1/status says."""
        return {"status": "ok", "auth": True} if api_key else status()  # open to anyone: with a key, nothing to use

    @app.get("/v1/status")
    async def service_status():
        """The model served (name, kind), pricer's version, whether a key, an index and deals are in use, and the
        requests, items and failures so far."""
        return status()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(PAGE)

    @app.post("/v1/estimate")
    async def estimate(product: EstimateIn):
        """The page's answer: the estimate, its 80% interval where the model has one, the nearest known products
        (with --index) and, given an offer, a verdict on it."""
        text = product.joined()
        (result,) = await priced([text])
        out = {**result, "model": model_name}
        if index is not None and product.k:
            hits = await asyncio.get_running_loop().run_in_executor(None, index.query, [text], product.k)
            out["neighbours"] = [{"title": h["title"], "price": h["price"], "similarity": round(h["similarity"], 3)}
                                 for h in hits[0]]
        if product.offer is not None and result["price"] is not None:
            out["verdict"] = judge(result, product.offer)
        return out

    @app.post("/v1/price/file", openapi_extra=FILE_BODY)
    async def price_file(request: Request, name: str = "products.csv", format: Literal["json", "csv"] = "json"):
        """A CSV, JSONL or JSON file of products (title, description or text, optional price = the offer), sent as the
        request body (its type from Content-Type, else from `name`'s suffix) or as the `file` field of a form
        (`curl -F file=@products.csv`); answers the priced table as JSON, or as a CSV download with format=csv."""
        name, data = await uploaded_file(request, name)
        suffix = file_suffix(request.headers.get("content-type", ""), name)
        try:
            rows = tabular_rows(name, data, suffix)
        except PricerError as e:
            raise HTTPException(status_code=422, detail=str(e)[:500]) from None
        rows = [r for r in rows if (r["title"] or r["description"])]
        if not rows:
            raise HTTPException(status_code=422, detail=f"{name}: no products (rows with a title or a description)")
        if len(rows) > MAX_FILE_ROWS:
            raise HTTPException(status_code=422, detail=f"{name}: {len(rows):,} products, over {MAX_FILE_ROWS:,}")
        results = await priced([product_text(r["title"], r["description"]) for r in rows])
        table = []
        for row, result in zip(rows, results):
            line = {"title": row["title"] or row["description"][:80], "offer": row["price"], "estimate": result["price"]}
            if "interval_80" in result:
                line["low"], line["high"] = result["interval_80"]
            if row["price"] is not None and result["price"] is not None:
                judged = judge(result, row["price"])
                line.update(discount=judged["discount"], saving=judged["saving"], verdict=judged["verdict"])
            table.append(line)
        if format == "csv":
            return Response(table_csv(table), media_type="text/csv", headers={
                "Content-Disposition": f'attachment; filename="{safe_file_stem(name)}-priced.csv"'})
        return {"rows": table, "model": model_name}

    @app.get("/v1/deals", responses={404: {"model": ErrorOut, "description": "No deal sources were given"}})
    async def current_deals():
        """The offers of `pricer serve --deals`, best estimated discount first (rescanned every --deals-every s)."""
        if not deal_sources:
            raise HTTPException(status_code=404, detail="no deal sources: start the service with --deals SOURCE")
        return deals.state

    @app.post("/v1/price")
    async def price(product: ProductIn):
        (result,) = await priced([product.joined()])
        return {**result, "model": model_name, "version": __version__}

    @app.post("/v1/price/batch")
    async def price_batch(batch: BatchIn):
        results = await priced([p.joined() for p in batch.items])
        return {"prices": results, "model": model_name, "version": __version__}

    @app.get("/v1/models")
    async def models():
        """OpenAI-compatible: the one model this service serves (the chat route prices with it whatever `model`
        a request names)."""
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": started, "owned_by": "pricer"}]}

    @app.post("/v1/chat/completions", responses={200: {"content": {"application/json": {}, "text/event-stream": {}},
                                                          "description": "The reply, or with `stream` its events"}})
    async def chat(request: ChatIn):
        """OpenAI-compatible: the last user message is the product (a course or frontier prompt's question and similar
        products are left out, so the chat prices the text the page would); the reply is `Price is $X.XX`, streamed
        as server-sent events with `stream: true`."""
        users = [product_text_of_prompt(m.text()) for m in request.messages if m.role == "user"]
        product = users[-1][:MAX_TEXT_CHARS] if users and users[-1].strip() else None
        result = (await priced([product]))[0] if product else {"price": None}
        content = f"Price is ${result['price']:.2f}" if result["price"] is not None else "I cannot tell."
        prompt_tokens = sum(len(m.text().split()) for m in request.messages)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 4, "total_tokens": prompt_tokens + 4}
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "created": int(time.time()), "model": request.model or model_name}
        if request.stream:
            with_usage = bool((request.stream_options or {}).get("include_usage"))
            return StreamingResponse(chat_events(head, content, usage if with_usage else None), media_type="text/event-stream")
        return {
            **head,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": usage,
        }

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        """FastAPI's answer without the `input` it would echo back (a large body would come back whole)."""
        issues = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": issues[:20]})

    return app


MAX_FILE_ROWS = 10_000
KEYED_DOCS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}  # with a key, the API's map wants it too
PAGE = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")


def table_csv(rows: list[dict]) -> str:
    columns = ["title", "offer", "estimate", "low", "high", "discount", "saving", "verdict"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def spreadsheet_safe(value):
    """A text cell that a spreadsheet would run as a formula, with a leading quote (OWASP's CSV injection advice)."""
    return "'" + value if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")) else value


def safe_file_stem(name: str) -> str:
    """A file name's stem fit for a Content-Disposition header: letters, digits, dot, dash and underscore only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name.replace("\\", "/")).stem)[:100] or "products"


def file_suffix(content_type: str, name: str) -> str:
    """How to read an uploaded file: its declared type where that says, else its name's suffix."""
    declared = content_type.split(";")[0].strip().lower()
    by_type = {"text/csv": ".csv", "application/json": ".json", "application/jsonl": ".jsonl",
               "application/x-ndjson": ".jsonl", "application/jsonlines": ".jsonl"}
    if declared in by_type:
        return by_type[declared]
    suffix = Path(name).suffix.lower()
    if suffix not in TABULAR:
        raise HTTPException(status_code=422, detail=f"give a .csv, .jsonl or .json file (got {safe_file_stem(name)}"
                                                    f"{re.sub(r'[^A-Za-z0-9.]', '', suffix)[:10]})")
    return suffix


async def uploaded_file(request: Request, name: str) -> tuple[str, bytes]:
    """(file name, bytes) of an upload: the body itself, or the `file` field of a multipart form."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return name, await request.body()
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception as e:  # a broken form is the client's mistake, whatever the parser raised
        raise HTTPException(status_code=422, detail=f"not a readable multipart form ({type(e).__name__})") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise HTTPException(status_code=422, detail="a multipart upload needs its file in the field `file`")
    return upload.filename or name, await upload.read()


def chat_events(head: dict, content: str, usage: dict | None):
    """The chat answer as OpenAI's stream: a chunk with the role and content, one that finishes, [DONE]."""
    def chunk(delta: dict, finish: str | None, **extra) -> str:
        body = {**head, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": content}, None)
    yield chunk({}, "stop")
    if usage:
        yield f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"
