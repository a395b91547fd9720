"""SHELL parameters and OUT values, PYTHON environments, and the HTTP task against a real
local HTTP server: attempts run for real, no broker. Every attack tries to create a marker
file; none ever does."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from streams.core.definition import parse_workflow
from streams.core.enums import Outcome, TaskType
from streams.core.task_specs import TaskSpec
from streams.core.worker_messages import TaskAssignment
from streams.worker.config import TaskResources
from streams.worker.runner import run_attempt

AT = datetime(2024, 1, 1, tzinfo=UTC)


def assignment(type: TaskType, command: str = "", **extra: Any) -> TaskAssignment:
    return TaskAssignment(
        instance_id="i-1",
        task_code="t",
        attempt=1,
        worker_id="w",
        type=type,
        command=command,
        at=AT,
        **extra,
    )


def attacks(marker: Path) -> list[str]:
    m = str(marker)
    return [
        f"$(touch {m})",
        f"`touch {m}`",
        f"x; touch {m}",
        f"x && touch {m}",
        f"a\ntouch {m}",
        f"'; touch {m}; '",
        f'"; touch {m}; "',
        f"$(touch {m})'\"`",
    ]


# -- SHELL --------------------------------------------------------------------------------


def test_shell_values_with_code_in_them_stay_data(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for value in attacks(marker):
        params = {"v": value, "my.v": value, "system.datetime": "20261130020000"}
        script = 'echo "[${v}]"; echo [${my.v}]; echo $[yyyyMMdd]'
        result = run_attempt(assignment(TaskType.SHELL, script, env=params))
        assert result.outcome is Outcome.SUCCESS, result.output
        assert f"[{value}]" in result.output
        assert "20261130" in result.output
        assert not marker.exists(), value


def test_shell_set_value_markers_become_out_values_even_before_the_kept_tail() -> None:
    script = (
        "echo '${setValue(early=1)}'; head -c 20000 /dev/zero | tr '\\0' x; echo; "
        "echo '#{setValue(late=a b)}'"
    )
    result = run_attempt(assignment(TaskType.SHELL, script))
    assert result.out_params == {"early": "1", "late": "a b"}


def test_a_task_does_not_see_the_workers_data_source_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIDEFLOW_DATASOURCES", '{"wh": "postgresql://u:secret@h/db"}')
    result = run_attempt(assignment(TaskType.SHELL, 'echo "[${TIDEFLOW_DATASOURCES:-none}]"'))
    assert "[none]" in result.output


# -- PYTHON -------------------------------------------------------------------------------


def test_python_runs_with_the_named_environment_and_exports_values() -> None:
    script = "import sys\nday = ${day}\nprint(sys.executable)\nprint('${setValue(d=%s)}' % day)\n"
    resources = TaskResources(python={"py": sys.executable})
    result = run_attempt(
        assignment(
            TaskType.PYTHON, script, env={"day": "2026-11-30"}, spec=TaskSpec(environment="py")
        ),
        resources,
    )
    assert result.outcome is Outcome.SUCCESS, result.output
    assert sys.executable in result.output
    assert result.out_params == {"d": "2026-11-30"}


def test_python_values_with_code_in_them_stay_data(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    py = [
        f"' + __import__('os').system('touch {marker}') + '",
        f'"); __import__("os").system("touch {marker}"); ("',
        f"\\'); open('{marker}', 'w'); ('",
    ]
    for value in [*attacks(marker), *py]:
        script = "v = ${v}\nprint(repr(v))\nprint('${v}')\nprint(\"${v}\")\n"
        result = run_attempt(assignment(TaskType.PYTHON, script, env={"v": value}))
        assert result.outcome is Outcome.SUCCESS, result.output
        assert repr(value) in result.output
        assert not marker.exists(), value


def test_an_unknown_python_environment_fails_without_running() -> None:
    result = run_attempt(
        assignment(TaskType.PYTHON, "print(1)", spec=TaskSpec(environment="nope")), TaskResources()
    )
    assert result.outcome is Outcome.FAILURE
    assert "no python environment 'nope'" in result.output


# -- HTTP ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        _Handler.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        status = 201 if self.path.startswith("/created") else 200
        if self.path.startswith("/slow"):
            threading.Event().wait(2)
        payload = json.dumps({"ok": True, "path": self.path}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except BrokenPipeError:  # the client gave up (the timeout test)
            pass

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def http_task(http: dict[str, Any], env: dict[str, str] | None = None) -> TaskAssignment:
    wf = parse_workflow({"code": "w", "tasks": [{"code": "t", "type": "http", "http": http}]})
    return assignment(TaskType.HTTP, spec=wf.tasks[0].spec, env=env or {})


def test_http_sends_query_body_and_headers_and_exports_the_response(server: str) -> None:
    _Handler.seen.clear()
    a = http_task(
        {
            "url": server + "/items/${id}",
            "method": "post",
            "body": '{"day": "${day}"}',
            "params": [
                {"name": "q", "value": "${day}"},
                {"name": "X-Day", "value": "${day}", "type": "headers"},
            ],
        },
        {"id": "a/b?c", "day": "2026-11-30"},
    )
    result = run_attempt(a)
    assert result.outcome is Outcome.SUCCESS, result.output
    seen = _Handler.seen[-1]
    assert seen["method"] == "POST"
    assert seen["path"] == "/items/a%2Fb%3Fc?q=2026-11-30"  # the value cannot add a segment
    assert seen["headers"]["X-Day"] == "2026-11-30"
    assert json.loads(seen["body"]) == {"day": "2026-11-30"}
    assert json.loads(result.out_params["t.response"])["ok"] is True


@pytest.mark.parametrize(
    ("path", "check", "condition", "ok"),
    [
        ("/x", "status_code_default", "", True),
        ("/created", "status_code_default", "", False),
        ("/created", "status_code_custom", "201", True),
        ("/x", "body_contains", '"ok": true', True),
        ("/x", "body_contains", "nope", False),
        ("/x", "body_not_contains", "nope", True),
        ("/x", "body_not_contains", "ok", False),
    ],
)
def test_http_checks(server: str, path: str, check: str, condition: str, ok: bool) -> None:
    result = run_attempt(http_task({"url": server + path, "check": check, "condition": condition}))
    assert (result.outcome is Outcome.SUCCESS) is ok, result.output


def test_http_read_timeout_fails_the_task(server: str) -> None:
    result = run_attempt(http_task({"url": server + "/slow", "read_timeout": "300ms"}))
    assert result.outcome is Outcome.FAILURE
    assert "timed out" in result.output


def test_http_header_values_with_cr_or_lf_are_refused(server: str) -> None:
    _Handler.seen.clear()
    a = http_task(
        {"url": server + "/x", "params": [{"name": "X-A", "value": "${v}", "type": "headers"}]},
        {"v": "a\r\nX-Injected: 1"},
    )
    result = run_attempt(a)
    assert result.outcome is Outcome.FAILURE
    assert "CR, LF or NUL" in result.output
    assert _Handler.seen == []  # nothing was sent


def test_an_http_attempt_past_the_task_timeout_ends_timeout(server: str) -> None:
    a = http_task({"url": server + "/slow", "read_timeout": "10s"})
    result = run_attempt(replace(a, timeout_s=0.3))
    assert result.outcome is Outcome.TIMEOUT
