"""Every worker task type in one workflow on the real stack (master, worker, projector as
processes): values pass SHELL -> PYTHON -> SQL -> HTTP -> SHELL through OUT parameters, the
worker resolves its python environment and data source by name, and startup values with code
in them, sent through the API and the CLI, reach every task as data: no marker file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra import compose
from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from streams.core.events import TaskDispatched, TaskSucceeded
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import instance_events, wait_finished, wait_projector_running

pytestmark = pytest.mark.integration

SEEN: list[str] = []


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        SEEN.append(self.path)
        payload = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def flow(server: str) -> dict[str, Any]:
    return {
        "code": "values",
        "params": {"region": "eu"},
        "tasks": [
            {
                "code": "produce",
                "command": "echo '${setValue(n=41)}'; echo \"[${day}]\"",
                "params": [{"name": "n", "direct": "OUT"}],
            },
            {
                "code": "compute",
                "type": "python",
                "environment": "py",
                "depends": ["produce"],
                "command": (
                    "n = int(${n})\nday = ${day}\n"
                    "print('${setValue(m=%d)}' % (n + 1))\nprint([day])\n"
                ),
                "params": [{"name": "m", "direct": "OUT"}],
            },
            {
                "code": "store",
                "type": "sql",
                "depends": ["compute"],
                "sql": {"datasource": "wh"},
                "command": "SELECT ${m}::int * 2 AS doubled, ${day}::text AS day",
                "params": [{"name": "doubled", "direct": "OUT"}],
            },
            {
                "code": "call",
                "type": "http",
                "depends": ["store"],
                "http": {
                    "url": server + "/v/${doubled}",
                    "params": [{"name": "r", "value": "${region}"}],
                },
            },
            {
                "code": "show",
                "depends": ["call"],
                "command": 'echo "[${call.response}] [${day}] [${system.biz.curdate}]"',
            },
        ],
    }


@pytest.fixture(scope="module")
def running(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, str]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = f"http://127.0.0.1:{httpd.server_address[1]}"
    settings = fresh_settings(
        stack,
        tideflow_heartbeat_interval_s=0.5,
        tideflow_python_envs={"py": sys.executable},
        tideflow_datasources={"wh": stack.dsn},
    )
    prepare(settings)
    with Fleet(settings, log_dir=tmp_path_factory.mktemp("types") / "logs") as fleet:
        for role in ("master", "worker", "projector"):
            fleet.start(role)
        wait_projector_running(settings)
        assert (
            TestClient(compose.http_app(settings)).post("/workflows", json=flow(server)).is_success
        )
        yield settings, server
    httpd.shutdown()


def check_run(settings: Settings, iid: str, day: str, marker: Path) -> None:
    service = compose.service(settings)
    try:
        final = wait_finished(service, iid, 60)
    finally:
        service.close()
    assert final["state"] == "SUCCESS", final
    events = instance_events(settings, iid)
    outputs = {e.task_code: e for e in events if isinstance(e, TaskSucceeded)}
    assert outputs["produce"].out_params == {"n": "41"}
    assert outputs["compute"].out_params == {"m": "42"}
    assert outputs["store"].out_params == {"doubled": "84"}
    assert json.loads(outputs["call"].out_params["call.response"])["path"] == "/v/84?r=eu"
    assert f"[{day}]" in outputs["produce"].output
    assert repr([day]) in outputs["compute"].output
    assert f"[{day}]" in outputs["show"].output and '"/v/84?r=eu"' in outputs["show"].output
    dispatched = {e.task_code: e for e in events if isinstance(e, TaskDispatched)}
    assert dispatched["show"].params["call.response"] == outputs["call"].out_params["call.response"]
    assert "n" not in dispatched["store"].params  # only direct upstream values: compute's m
    assert not marker.exists()


def test_values_pass_through_every_task_type_and_an_api_value_stays_data(
    running: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, _ = running
    marker = tmp_path / "pwned"
    day = f"$(touch {marker})`touch {marker}`; touch {marker}\n'\"%"
    client = TestClient(compose.http_app(settings))
    response = client.post("/workflows/values/runs", json={"params": {"day": day}})
    assert response.status_code == 202, response.text
    check_run(settings, response.json()["instance_id"], day, marker)


def test_a_cli_value_with_code_in_it_stays_data(
    running: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, _ = running
    marker = tmp_path / "pwned"
    day = f"x; touch {marker} && $(touch {marker}) || `touch {marker}`"
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "run", "values", "-p", f"day={day}"],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    match = re.search(r"instance (\S+)", done.stdout)
    assert match, done.stdout
    check_run(settings, match.group(1), day, marker)
