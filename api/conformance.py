"""What makes the API honour its own OpenAPI document (checked by schemathesis with every
check, tests/integration/test_openapi_conformance.py):

* one error body, `Problem`, for every 4xx/5xx the API answers (FastAPI's own request
  validation errors included), and each route declares exactly the error statuses it can give;
* query times are ISO 8601 strings only (pydantic would also take a number as a Unix time,
  which the document's `date-time` does not allow);
* a 405 names every method the path has in `Allow` (Starlette names only the first route's).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match


class Problem(BaseModel):
    """Why a request was not served: a sentence, and every problem named when there are
    several (an invalid definition, parameters that could run code)."""

    detail: str
    problems: list[str] = Field(default_factory=list)


_WHY = {
    400: "the body cannot be read (not UTF-8 or not JSON)",
    404: "no such workflow, instance or page",
    405: "the path does not take this method (Allow names those it takes)",
    409: "other registrations kept taking the next version; retry",
    413: "request body over 1 MiB",
    422: "the request names every problem: a field, a filter, a definition, parameters",
    503: "written, but the read models do not show it yet; retry",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of a route, for its OpenAPI operation."""
    return {code: {"model": Problem, "description": _WHY[code]} for code in codes}


def problem(status: int, detail: str, problems: list[str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, "problems": problems or []})


_ISO = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def _iso_only(value: object) -> object:
    if isinstance(value, str) and not _ISO.match(value):
        raise ValueError("expected an ISO 8601 time such as 2026-11-30T02:00:00Z")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]


def install(app: FastAPI) -> None:
    """Problem bodies for request validation errors and 405s with every allowed method."""

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        return problem(422, "invalid request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, str(exc.detail))
        if exc.status_code == 405:
            # The path is the first route's that matches it (as routing picks it: a literal
            # /schedules/preview before /schedules/{id}); every route of that path counts.
            matching = [
                route
                for route in app.router.routes
                if route.matches({**request.scope, "method": "__none__"})[0] is not Match.NONE
            ]
            path = getattr(matching[0], "path", None) if matching else None
            allowed = {
                method
                for route in matching
                if getattr(route, "path", None) == path
                for method in getattr(route, "methods", None) or ()
            }
            response.headers["Allow"] = ", ".join(sorted(allowed))
        elif exc.headers:
            response.headers.update(exc.headers)
        return response
