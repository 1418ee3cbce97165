"""The service's guard at the door: request bodies over a limit are refused before they are read whole, and a client
that is slow to send its request's head is cut."""

import h11
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_BODY_BYTES = 1_000_000


class BodyLimit:
    """ASGI middleware: a body over max_bytes gets 413, decided from Content-Length before anything is read, or, for a
    body sent in chunks, as soon as the bytes received pass the limit."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse(status_code=413, content={"detail": self._message(int(declared))})
            return await response(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(status_code=413, detail=self._message(received, at_least=True))
            return message

        await self.app(scope, counted, send)

    def _message(self, size: int, at_least: bool = False) -> str:
        return (f"request body of {'over ' if at_least else ''}{size:,} bytes is over the limit of {self.max_bytes:,} "
                "(pricer serve --max-body-bytes)")


HEAD_TIMEOUT = 10.0  # seconds a connection may take to send a request's line and headers


class HeadDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's head: a client that has not sent a whole request line
    and headers HEAD_TIMEOUT seconds after connecting (or after its previous answer) is disconnected, however slowly
    it keeps dribbling bytes (slow loris). uvicorn's own keep-alive timeout is reset by every byte."""

    head_timeout = HEAD_TIMEOUT

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE and self._head_deadline is not None:
            self._head_deadline.cancel()  # the head arrived
            self._head_deadline = None

    def connection_lost(self, exc) -> None:
        if getattr(self, "_head_deadline", None) is not None:
            self._head_deadline.cancel()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if getattr(self, "_head_deadline", None) is not None:
            self._head_deadline.cancel()
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
