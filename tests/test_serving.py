"""The service on a real loopback port: endpoints, validation, failures, load, clients that vanish."""

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from conftest import Server, free_port, pricer_serve, run_cli
from pricer.data.items import read_items
from pricer.predictors.base import Predictor
from pricer.predictors.frontier import FrontierPredictor, user_message
from pricer.predictors.registry import load_predictor, make_predictor
from pricer.serving.app import create_app
from pricer.serving.loadtest import load_test


class FailsOnPoison(Predictor):
    """A real predictor, except that it fails on any batch holding the word 'poison'."""

    kind = "fails-on-poison"

    def __init__(self, inner):
        self.inner = inner

    def predict(self, texts):
        if any("poison" in t for t in texts):
            raise RuntimeError("cannot price poison")
        return self.inner.predict(texts)


@pytest.fixture(scope="module")
def tfidf(amazon):
    return make_predictor("tfidf").fit(read_items(f"{amazon / 'dev.jsonl'}[:1250]"))


@pytest.fixture(scope="module")
def service(tfidf):
    with Server(create_app(FailsOnPoison(tfidf), "tfidf-test")) as url:
        yield url


def test_price_endpoints(service, tfidf):
    text = "Moen bathroom vanity light fixture, brushed nickel, 2 globes"
    r = httpx.post(f"{service}/v1/price", json={"text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["price"] == pytest.approx(round(float(tfidf.predict([text])[0]), 2)) and body["model"] == "tfidf-test"
    fields = httpx.post(f"{service}/v1/price", json={"title": "Moen light", "features": ["brushed nickel", "2 globes"], "details": {"Brand": "Moen"}})
    assert fields.status_code == 200 and fields.json()["price"] > 0
    batch = httpx.post(f"{service}/v1/price/batch", json={"items": [{"text": text}, {"text": "A pencil"}]})
    assert batch.status_code == 200 and len(batch.json()["prices"]) == 2
    health = httpx.get(f"{service}/health").json()
    assert health["status"] == "ok" and health["kind"] == "fails-on-poison"
    assert httpx.get(f"{service}/openapi.json").json()["paths"].keys() >= {"/v1/price", "/v1/price/batch", "/health"}
    assert httpx.get(f"{service}/docs").status_code == 200


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("/v1/price", {"text": "   "}, "non-empty text"),
        ("/v1/price", {}, "non-empty text"),
        ("/v1/price", {"text": "x" * 20_001}, "at most 20000 characters"),
        ("/v1/price", {"text": 42}, "valid string"),
        ("/v1/price/batch", {"items": [{"text": "a"}] * 257}, "at most 256"),
        ("/v1/price/batch", {"items": []}, "at least 1"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(service, path, body, message):
    r = httpx.post(f"{service}{path}", json=body)
    assert r.status_code == 422 and message in r.text, r.text


def test_a_model_failure_fails_that_request_only(service):
    bad = httpx.post(f"{service}/v1/price", json={"text": "poison ivy killer"})
    assert bad.status_code == 500 and "cannot price poison" in bad.json()["detail"]
    assert httpx.post(f"{service}/v1/price", json={"text": "garden hose"}).status_code == 200


def test_a_failing_request_does_not_fail_those_batched_with_it(service):
    texts = ["garden hose", "poison bait station", "rake", "leaf blower", "poison ivy spray", "shovel"] * 4

    def one(text):
        return text, httpx.post(f"{service}/v1/price", json={"text": text}, timeout=30).status_code

    with ThreadPoolExecutor(len(texts)) as pool:  # sent together, so the batcher gathers them into shared batches
        codes = list(pool.map(one, texts))
    assert all((code == 500) == ("poison" in text) for text, code in codes), codes


@pytest.mark.slow
def test_load_500_requests_from_32_clients_and_clients_that_vanish(service, amazon, tmp_path):
    texts = [it.text for it in read_items(f"{amazon / 'dev.jsonl'}[1250:]")]
    vanished = []
    for i in range(3):  # clients that go away mid-request: a half-sent body, and a request whose answer nobody reads
        s = socket.create_connection(("127.0.0.1", int(service.rsplit(":", 1)[1])))
        body = json.dumps({"text": texts[i]}).encode()
        head = f"POST /v1/price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        s.sendall(head + (body[: len(body) // 2] if i % 2 == 0 else body))
        vanished.append(s)

    for s in vanished:
        s.close()
    stats = load_test(service, texts, requests=500, clients=32)
    assert stats["ok"] == 500 and stats["errors"] == {}, stats
    assert 0 < stats["p50_ms"] <= stats["p99_ms"]
    print(f"\nload: {stats}")
    assert httpx.get(f"{service}/health").json()["status"] == "ok"


@pytest.mark.slow
def test_the_loadtest_command_counts_failures_and_says_so_in_its_exit_code(service, amazon, tmp_path):
    ok = run_cli("loadtest", service, "--data", f"{amazon / 'dev.jsonl'}[1250:1300]", "--requests", "60", "--clients", "4")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "60 requests from 4 clients: 60 ok, errors none" in ok.stdout
    poisoned = tmp_path / "poison.jsonl"
    poisoned.write_text("".join(json.dumps({"text": f"poison {i}", "price": 5}) + "\n" for i in range(3)))
    failing = run_cli("loadtest", service, "--data", poisoned, "--requests", "6", "--clients", "2")
    assert failing.returncode == 1 and "0 ok" in failing.stdout, failing.stdout


def test_frontier_predictor_against_the_local_service(service, tfidf, monkeypatch, tmp_path, amazon):
    monkeypatch.setenv("OPENAI_API_KEY", "local-test-key")
    monkeypatch.setenv("PRICER_CACHE", str(tmp_path))
    frontier = FrontierPredictor(model="tfidf-test", base_url=f"{service}/v1", retries=0)
    texts = ["Moen bathroom vanity light fixture", "A box of 500 paper clips"]
    prices = frontier.predict(texts)
    assert prices == pytest.approx(np.round(tfidf.predict(texts), 2))  # the product, not the question around it
    with_context = user_message(texts[0], [("A similar vanity light", 80.0)])
    answer = httpx.post(f"{service}/v1/chat/completions", json={"messages": [{"role": "user", "content": with_context}]})
    page = httpx.post(f"{service}/v1/price", json={"text": texts[0]}).json()["price"]
    assert answer.json()["choices"][0]["message"]["content"] == f"Price is ${page:.2f}"
    assert frontier.usage["requests"] == 2 and frontier.usage["prompt_tokens"] > 0 and frontier.usage["cost_usd"] > 0
    again = FrontierPredictor(model="tfidf-test", base_url=f"{service}/v1", retries=0)
    assert np.array_equal(again.predict(texts), prices) and again.usage["requests"] == 0 and again.usage["cached"] == 2
    assert "low" not in again.estimate(texts)[0]  # an endpoint has no interval of its own

    monkeypatch.setenv("PRICER_FRONTIER_URL", f"{service}/v1")
    held = tmp_path / "held.jsonl"  # a calibration slice: the endpoint prices it, its residuals make the interval
    held.write_text("".join(json.dumps(it.to_dict()) + "\n" for it in read_items(f"{amazon / 'dev.jsonl'}[1300:1330]")))
    calibrated = load_predictor("frontier:tfidf-test", calibrate=held)
    assert calibrated.calibration.items == 30 and calibrated.calibration.source == "held.jsonl"
    assert all(d["low"] < d["price"] < d["high"] for d in calibrated.estimate(texts))


@pytest.mark.slow
def test_frontier_without_key_or_network_is_one_line(amazon, tmp_path):
    data = f"{amazon / 'dev.jsonl'}[1250:1252]"
    no_key = run_cli("eval", "--model", "frontier", "--data", data, "--out", tmp_path / "a", env={"OPENAI_API_KEY": "", "PRICER_CACHE": str(tmp_path)})
    assert no_key.returncode == 2 and "OPENAI_API_KEY" in no_key.stderr and len(no_key.stderr.strip().splitlines()) == 1
    closed = f"http://127.0.0.1:{free_port()}/v1"
    no_net = run_cli("eval", "--model", "frontier", "--data", data, "--out", tmp_path / "b",
                     env={"OPENAI_API_KEY": "k", "PRICER_FRONTIER_URL": closed, "PRICER_CACHE": str(tmp_path)})
    assert no_net.returncode == 2 and "cannot reach" in no_net.stderr and len(no_net.stderr.strip().splitlines()) == 1


@pytest.fixture
def served_with_key(amazon, tmp_path):
    """The real `pricer serve` command in its own process, its API key taken from PRICER_API_KEY."""
    make_predictor("tfidf").fit(read_items(f"{amazon / 'dev.jsonl'}[:300]")).save(tmp_path / "m")
    with pricer_serve("--model", tmp_path / "m", env={"PRICER_API_KEY": "sk-test"}) as url:
        yield url


@pytest.mark.slow
def test_the_official_openai_client_lists_prices_and_streams(served_with_key):
    import openai

    client = openai.OpenAI(base_url=f"{served_with_key}/v1", api_key="sk-test", max_retries=0)
    assert [m.id for m in client.models.list()] == ["m"]
    messages = [{"role": "user", "content": "A cordless drill with two batteries"}]
    whole = client.chat.completions.create(model="m", messages=messages).choices[0].message.content
    assert whole.startswith("Price is $") and float(whole.removeprefix("Price is $")) > 0
    chunks = list(client.chat.completions.create(model="m", messages=messages, stream=True,
                                                 stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole and chunks[-1].usage.prompt_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


@pytest.mark.slow
def test_without_the_api_key_v1_is_refused_and_health_stays_open(served_with_key):
    import openai

    for key in ("wrong-key", ""):
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{served_with_key}/v1", api_key=key or "x", max_retries=0).models.list()
    bare = httpx.post(f"{served_with_key}/v1/price", json={"text": "A cordless drill"})
    assert bare.status_code == 401 and "Authorization: Bearer" in bare.json()["detail"]
    assert httpx.get(f"{served_with_key}/health").json() == {"status": "ok", "auth": True}  # nothing more
    for document in ("/docs", "/redoc", "/openapi.json", "/v1/status"):
        assert httpx.get(f"{served_with_key}{document}").status_code == 401, document
    status = httpx.get(f"{served_with_key}/v1/status", headers={"Authorization": "Bearer sk-test"}).json()
    assert status["model"] == "m" and status["auth"] is True
    keyed = httpx.post(f"{served_with_key}/v1/price", json={"text": "A cordless drill"}, headers={"Authorization": "Bearer sk-test"})
    assert keyed.status_code == 200 and keyed.json()["price"] > 0 and keyed.json()["model"] == "m"


def test_a_body_over_the_limit_is_refused_before_it_is_read(tfidf):
    with Server(create_app(tfidf, "tfidf-test", max_body_bytes=1_000_000)) as url:
        declared = httpx.post(f"{url}/v1/price", content=b"{" + b" " * 20_000_000 + b"}", headers={"content-type": "application/json"})
        assert declared.status_code == 413 and "over the limit of 1,000,000" in declared.json()["detail"]

        def chunks():  # no Content-Length: the limit is found while the body arrives
            for _ in range(20):
                yield b" " * 1_000_000

        streamed = httpx.post(f"{url}/v1/price", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and "over the limit" in streamed.json()["detail"]
        assert httpx.post(f"{url}/v1/price", json={"text": "garden hose"}).status_code == 200


def test_files_as_people_send_them(service):
    csv_body = b"title,price\nStainless steel kitchen faucet,40\n=HYPERLINK(\"http://x\"),10\n"
    form = httpx.post(f"{service}/v1/price/file", files={"file": ("products.csv", csv_body, "text/csv")})
    assert form.status_code == 200 and len(form.json()["rows"]) == 2, form.text
    typed = httpx.post(f"{service}/v1/price/file", content=b'{"title": "Garden hose, 50 ft"}\n',
                       headers={"content-type": "application/jsonl"})
    assert typed.status_code == 200 and typed.json()["rows"][0]["estimate"] > 0
    odd = b'{"title": 5}\n{"title": ["Drill", "18V"]}\n{"title": {"nested": {"deep": 1}}, "description": "A lamp"}\n'
    answered = httpx.post(f"{service}/v1/price/file?name=odd.jsonl", content=odd)
    assert answered.status_code == 200 and [r["title"] for r in answered.json()["rows"]] == ["5", "Drill 18V", "A lamp"]


def test_a_csv_download_escapes_formulas_and_its_file_name(service):
    body = b"title,price\n=HYPERLINK(\"http://evil\"),10\n+cmd,5\n@sum,3\nPlain lamp,20\n"
    for name in ('a"; filename*=evil.exe; x=".csv', "a\r\nSet-Cookie: x=1.csv"):
        r = httpx.post(f"{service}/v1/price/file", params={"name": name, "format": "csv"}, content=body)
        assert r.status_code == 200, r.text
        disposition = r.headers["content-disposition"]
        assert disposition.count('"') == 2 and "\r" not in disposition and "set-cookie" not in r.headers
    cells = [line.split(",")[0] for line in r.text.splitlines()[1:]]
    assert cells[:3] == ['"\'=HYPERLINK(""http://evil"")"', "'+cmd", "'@sum"] and cells[3] == "Plain lamp"


def test_bad_bodies_are_422_without_the_input_echoed(service):
    big = httpx.post(f"{service}/v1/price", json={"text": "x" * 900_000})
    assert big.status_code == 422 and len(big.content) < 1_000
    part = httpx.post(f"{service}/v1/chat/completions",
                      json={"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]})
    assert part.status_code == 422 and any("text" in issue["loc"] for issue in part.json()["detail"])
    empty = httpx.post(f"{service}/v1/chat/completions", json={"messages": [{"role": "system", "content": "hi"}]})
    assert empty.status_code == 200 and empty.json()["choices"][0]["message"]["content"] == "I cannot tell."
    blank_title = httpx.post(f"{service}/v1/price", json={"text": "A lamp", "title": "  "})
    assert blank_title.status_code == 422 and "title is blank" in blank_title.text


def test_a_small_request_is_batched_before_the_rest_of_a_bulk_one(tfidf):
    import asyncio
    import time

    from pricer.serving.workers import MicroBatcher

    batches = []

    def predict(texts):  # the real model, a little slower per batch, as a larger one would be
        batches.append(list(texts))
        time.sleep(0.02)
        return tfidf.predict_details(texts)

    async def scenario():
        batcher = MicroBatcher(predict, max_size=64)
        batcher.start()
        bulk = asyncio.create_task(batcher.submit([f"desk lamp model {i}" for i in range(1000)]))  # a file
        while not batches:
            await asyncio.sleep(0.001)
        (single,) = await batcher.submit(["garden hose, 50 ft"])
        results = await bulk
        await batcher.stop()
        return single, results

    single, results = asyncio.run(scenario())
    at = next(n for n, batch in enumerate(batches) if "garden hose, 50 ft" in batch)
    assert at <= 2 and len(batches) >= 16 and len(results) == 1000 and single["price"] > 0


@pytest.mark.slow
def test_slow_clients_are_cut_and_configuration_mistakes_are_one_line(tfidf, tmp_path):
    import time

    tfidf.save(tmp_path / "m")
    with pricer_serve("--model", tmp_path / "m") as url:
        port = int(url.rsplit(":", 1)[1])
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        start = time.time()
        open_ones = list(slow)
        while open_ones and time.time() - start < 30:  # a byte a second: never a whole request head
            for s in list(open_ones):
                try:
                    s.sendall(b"G")
                    s.settimeout(0.01)
                    if s.recv(1) == b"":
                        open_ones.remove(s)
                except (BlockingIOError, socket.timeout):
                    pass
                except OSError:
                    open_ones.remove(s)
            time.sleep(1.0)
        cut_after = time.time() - start
        assert httpx.post(f"{url}/v1/price", json={"text": "garden hose"}).status_code == 200
        for s in slow:
            s.close()
        assert not open_ones and cut_after < 20, f"{len(open_ones)} slow connections still open after {cut_after:.0f} s"

        busy = run_cli("serve", "--model", tmp_path / "m", "--port", port)
        assert busy.returncode == 2 and len(busy.stderr.strip().splitlines()) == 1 and "another --port" in busy.stderr

    empty_key = run_cli("serve", "--model", tmp_path / "m", "--port", free_port(), env={"PRICER_API_KEY": ""})
    assert empty_key.returncode == 2 and "API key is empty" in empty_key.stderr
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("years of work")
    refused = run_cli("fit", "constant-mean", "--train", tmp_path / "m" / "pricer.json", "--out", tmp_path / "notes")
    assert refused.returncode == 2 and "not a pricer model" in refused.stderr
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["thesis.tex"]
