"""A bounded load test of a running price service: N requests from C concurrent clients, latency percentiles."""

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def load_test(url: str, texts: list[str], requests: int = 500, clients: int = 32, timeout: float = 30.0) -> dict:
    """POST /v1/price `requests` times from `clients` threads; status counts and latency in milliseconds."""
    import httpx

    local = threading.local()  # one client (one kept-alive connection) per thread, as a real client would hold

    def one(i):
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=timeout)
            opened.append(local.client)
        start = time.perf_counter()
        try:
            code = local.client.post(f"{url}/v1/price", json={"text": texts[i % len(texts)]}).status_code
        except httpx.HTTPError as e:
            code = type(e).__name__
        return code, time.perf_counter() - start

    opened = []
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(requests)))
    for client in opened:
        client.close()
    wall = time.perf_counter() - started
    latencies = sorted(t for _, t in results)
    codes = [c for c, _ in results]
    return {
        "requests": requests,
        "clients": clients,
        "ok": codes.count(200),
        "errors": {str(c): codes.count(c) for c in set(codes) if c != 200},
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[max(int(0.99 * len(latencies)) - 1, 0)],
        "requests_per_s": requests / wall,
    }
