"""POST each new deal as JSON to a webhook (a push service, a chat hook), retried with back-off; a receiver that is
down or slow is reported and never stops the scan."""

import hashlib
import time

import httpx


class Webhook:
    def __init__(self, url: str, attempts: int = 4, backoff: float = 0.5, timeout: float = 5.0):
        if not url.startswith(("http://", "https://")):
            from pricer.errors import PricerError

            raise PricerError(f"--notify {url!r}: give an http(s) URL")
        self.url, self.attempts, self.backoff, self.timeout = url, attempts, backoff, timeout
        self.last_error = ""

    def send(self, payload: dict, key: str | None = None) -> bool:
        """True once the receiver answers 2xx; False after every attempt failed (last_error says how). key: the deal's,
        sent as the Idempotency-Key header (a digest of it) on every attempt, so a receiver can drop a repeat."""
        headers = {"Idempotency-Key": idempotency_key(key)} if key is not None else {}
        for attempt in range(self.attempts):
            try:
                response = httpx.post(self.url, json=payload, timeout=self.timeout, headers=headers)
                if response.is_success:
                    return True
                self.last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as e:
                self.last_error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            if attempt < self.attempts - 1:
                time.sleep(self.backoff * 2**attempt)
        return False


def idempotency_key(deal_key: str) -> str:
    """A header-safe token for a deal's key (a URL, or a title and price): the same deal, the same token."""
    return hashlib.sha256(deal_key.encode()).hexdigest()[:32]
