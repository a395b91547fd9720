"""The HTTP task: one request, its check, and the response exported as `<task>.response`.

The request is built from the dispatch's `HttpSpec` and the attempt's resolved parameters
(`streams.core.render`): values are percent-encoded into the URL (a value cannot add a path
segment or a query parameter, nor change the host), pasted into the body, and refused in a
header name or value when they hold CR or LF (they would forge headers). `PARAMETER` entries
go to the query string; `BODY` entries form a JSON object body when no `body` is given;
`HEADERS` entries are headers. Redirects are not followed (a check sees what the URL said).
The connect and read timeouts are the spec's; a kill takes effect when the call returns,
which the read timeout bounds.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from typing import Any

import httpx

from streams.core import render
from streams.core.attempt_params import response_name
from streams.core.enums import Outcome
from streams.core.params import VALUE_LIMIT
from streams.core.task_specs import HttpCheck, HttpParamType, HttpSpec
from streams.core.worker_messages import TaskAssignment
from streams.worker.config import TaskResources
from streams.worker.result import NOT_STARTED, Result

OUTPUT_LIMIT = 8 * 1024
_tls_lock = threading.Lock()
_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every attempt: httpx builds one per client by default,
    loading the CA bundle each time (44 ms per attempt on the 2-core machine; a local call
    takes 3 ms with the shared context)."""
    global _tls
    with _tls_lock:
        if _tls is None:
            _tls = ssl.create_default_context()
        return _tls


def check_problem(spec: HttpSpec, status: int, body: str) -> str | None:
    """Why the response fails the task's check, or None when it passes."""
    match spec.check:
        case HttpCheck.STATUS_CODE_DEFAULT:
            return None if status == 200 else f"expected status 200, found {status}"
        case HttpCheck.STATUS_CODE_CUSTOM:
            wanted = int(spec.condition.strip())
            return None if status == wanted else f"expected status {wanted}, found {status}"
        case HttpCheck.BODY_CONTAINS:
            found = spec.condition in body
            return None if found else f"expected the body to contain {spec.condition!r}"
        case HttpCheck.BODY_NOT_CONTAINS:
            found = spec.condition in body
            return f"expected the body not to contain {spec.condition!r}" if found else None


def request_parts(spec: HttpSpec, params: dict[str, str]) -> dict[str, Any] | str:
    """The keyword arguments of `httpx.Client.request`, or why the request cannot be made."""
    query: list[tuple[str, str]] = []
    fields: dict[str, str] = {}
    headers: dict[str, str] = {}
    for p in spec.params:
        value = render.text(p.value, params)
        if p.type is HttpParamType.HEADERS:
            if any(c in p.name + value for c in "\r\n\x00"):
                return f"header {p.name!r}: a CR, LF or NUL in a header is refused"
            headers[p.name] = value
        elif p.type is HttpParamType.BODY:
            fields[p.name] = value
        else:
            query.append((p.name, value))
    parts: dict[str, Any] = {
        "method": spec.method.value,
        "url": render.url(spec.url, params),
        "params": query,
        "headers": headers,
    }
    if spec.body:
        parts["content"] = render.text(spec.body, params).encode()
    elif fields:
        parts["json"] = fields
    return parts


def run(a: TaskAssignment, resources: TaskResources, killed: Callable[[], bool]) -> Result:
    spec = a.spec.http if a.spec else None
    if spec is None:
        return Result(Outcome.FAILURE, NOT_STARTED, "[tideflow] no http settings dispatched")
    parts = request_parts(spec, a.env)
    if isinstance(parts, str):
        return Result(Outcome.FAILURE, NOT_STARTED, f"[tideflow] {parts}\n")
    timeout = httpx.Timeout(
        connect=spec.connect_timeout_s,
        read=spec.read_timeout_s,
        write=spec.read_timeout_s,
        pool=spec.connect_timeout_s,
    )
    line = f"{parts['method']} {parts['url']}"
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, verify=_tls_context()) as client:
            response = client.request(**parts)
    except httpx.TimeoutException as exc:
        return Result(Outcome.FAILURE, 1, f"{line}: timed out ({type(exc).__name__})\n")
    except (httpx.HTTPError, ValueError) as exc:
        return Result(Outcome.FAILURE, 1, f"{line}: {exc}\n")
    body = response.text
    problem = check_problem(spec, response.status_code, body)
    output = f"{line} -> {response.status_code}\n{body}"
    if len(output) > OUTPUT_LIMIT:
        output = output[-OUTPUT_LIMIT:]
    if problem is not None:
        return Result(Outcome.FAILURE, 1, f"{output}\n[tideflow] check failed: {problem}\n")
    exported = body if len(body.encode()) <= VALUE_LIMIT else ""
    return Result(Outcome.SUCCESS, 0, output, {response_name(a.task_code): exported})
