"""A bound on request bodies, as ASGI middleware: a declared `content-length` over the bound
is answered 413 at once, and a body sent without one (chunked) is counted as it arrives and
cut off at the bound with the same answer, so no request can make the API buffer more."""

from __future__ import annotations

import json
from typing import Any

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a workflow definition of 1,000 tasks is ~200 KB

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        seen, too_large = 0, False

        async def counted() -> Message:
            # Past the bound the app is told the client left: it stops reading, and
            # whatever it answers is replaced by the 413 below.
            nonlocal seen, too_large
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not too_large:
                await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
