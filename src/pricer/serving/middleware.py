"""The service's guard at the door: request bodies over a limit are refused before they are read whole."""

from fastapi import HTTPException
from fastapi.responses import JSONResponse

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
