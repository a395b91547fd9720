"""Request bodies are bounded: over the bound the API answers 413, whether the size was
declared or the body streamed in chunks, and never reads more than the bound."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.limits import MAX_BODY_BYTES, BodyLimit


def echo_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodyLimit)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return app


client = TestClient(echo_app())


def test_a_body_within_the_bound_is_read() -> None:
    answered = client.post("/echo", content=b"x" * MAX_BODY_BYTES)

    assert (answered.status_code, answered.json()) == (200, {"received": MAX_BODY_BYTES})


def test_a_declared_body_over_the_bound_is_refused_413() -> None:
    answered = client.post("/echo", content=b"x" * (MAX_BODY_BYTES + 1))

    assert answered.status_code == 413
    assert "request body over" in answered.json()["detail"]


def test_a_chunked_body_over_the_bound_is_refused_413() -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"x" * (MAX_BODY_BYTES // 4)

    answered = client.post("/echo", content=chunks())

    assert answered.status_code == 413


def test_a_malformed_content_length_is_refused() -> None:
    answered = client.post("/echo", content=b"{}", headers={"content-length": "-1"})

    assert answered.status_code == 413
