"""The operator's controls end to end, through a real master, worker and projector: pause,
stop and resume over HTTP (`compose.http_app`) and over the CLI (`python -m infra.cli`, as
an operator runs it), plus the workflow and worker listings. A control in the wrong state
is accepted (202) and ends as a `CommandRejected` on the instance.

Task `a` of the workflow below runs until the test creates its gate file, so the test, not
the clock, decides when it ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.service import NotFound
from infra import compose
from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import cli, wait_projector_running, wait_until

pytestmark = pytest.mark.integration

GATED = 'while [ ! -f "$GATE" ]; do sleep 0.05; done'


def gated(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "tasks": [
            {"code": "a", "command": GATED},
            {"code": "b", "command": "true", "depends": ["a"]},
        ],
    }


@pytest.fixture(scope="module")
def running(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One deployment with a master, a worker and the projector for the module's tests."""
    settings = fresh_settings(stack, tideflow_heartbeat_interval_s=0.5)
    prepare(settings)
    with Fleet(settings, log_dir=tmp_path_factory.mktemp("controls") / "logs") as fleet:
        for role in ("master", "worker", "projector"):
            fleet.start(role)
        wait_projector_running(settings)
        yield settings


def row(settings: Settings, instance_id: str) -> dict[str, Any] | None:
    """The instance as PostgreSQL shows it; None before it is projected."""
    service = compose.service(settings)
    try:
        return service.instance(instance_id)
    except NotFound:
        return None
    finally:
        service.close()


def wait_state(settings: Settings, instance_id: str, state: str) -> dict[str, Any]:
    return wait_until(
        lambda: (r := row(settings, instance_id)) is not None and r["state"] == state and r,
        timeout_s=60,
        what=f"{instance_id} in {state}",
    )


def wait_task(settings: Settings, instance_id: str, code: str, state: str) -> None:
    def there() -> bool:
        r = row(settings, instance_id)
        return r is not None and any(
            t["task_code"] == code and t["state"] == state for t in r["tasks"]
        )

    wait_until(there, timeout_s=60, what=f"{instance_id} task {code} {state}")


def attempts(found: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(t["task_code"], t["attempt"], t["state"]) for t in found["attempts"]]


def test_http_pause_then_resume_stop_and_a_refused_control(
    running: Settings, tmp_path: Path
) -> None:
    client = TestClient(compose.http_app(running))
    assert client.post("/workflows", json=gated("gated-http")).status_code == 201
    assert "gated-http" in [w["code"] for w in client.get("/workflows").json()]
    found = client.get("/workflows/gated-http").json()
    assert [t["code"] for t in found["tasks"]] == ["a", "b"]

    gate = tmp_path / "gate-paused"
    paused = client.post("/workflows/gated-http/runs", json={"params": {"GATE": str(gate)}})
    assert paused.status_code == 202
    iid = paused.json()["instance_id"]
    wait_task(running, iid, "a", "RUNNING_EXECUTION")
    assert client.post(f"/instances/{iid}/pause").status_code == 202
    wait_state(running, iid, "READY_PAUSE")  # `a` runs on; nothing new starts
    gate.touch()
    assert attempts(wait_state(running, iid, "PAUSE")) == [("a", 1, "SUCCESS")]  # no `b`
    assert client.post(f"/instances/{iid}/resume").status_code == 202
    done = wait_state(running, iid, "SUCCESS")
    assert attempts(done) == [("a", 1, "SUCCESS"), ("b", 1, "SUCCESS")]

    stopped = client.post(
        "/workflows/gated-http/runs", json={"params": {"GATE": str(tmp_path / "never")}}
    ).json()["instance_id"]
    wait_task(running, stopped, "a", "RUNNING_EXECUTION")
    assert client.post(f"/instances/{stopped}/stop").status_code == 202
    assert attempts(wait_state(running, stopped, "STOP")) == [("a", 1, "KILL")]

    assert client.post(f"/instances/{stopped}/pause").status_code == 202  # wrong state
    refused = wait_until(
        lambda: client.get(f"/instances/{stopped}").json()["rejections"], what="the refusal"
    )
    assert [(r["command_type"], r["reason"]) for r in refused] == [
        ("PauseWorkflow", "INVALID_STATE")
    ]
    assert "found STOP" in refused[0]["message"]
    history = client.get(f"/instances/{stopped}/history").json()
    assert history[-1]["event_type"] == "CommandRejected"

    assert client.post(f"/instances/{iid}/restart").status_code == 404
    assert client.post("/instances/missing/pause").status_code == 404


def test_http_lists_the_worker_with_its_latest_heartbeat(running: Settings) -> None:
    client = TestClient(compose.http_app(running))

    workers = wait_until(lambda: client.get("/workers").json(), what="a projected heartbeat")

    assert len(workers) == 1
    assert workers[0]["worker_group"] == "default"
    assert workers[0]["slots_total"] == running.tideflow_worker_slots
    assert workers[0]["last_heartbeat_at"] >= workers[0]["started_at"]


def test_a_list_filter_that_names_nothing_is_refused_with_the_choices(running: Settings) -> None:
    client = TestClient(compose.http_app(running))

    refused = client.get("/instances", params={"state": "bogus"})

    assert refused.status_code == 422
    [problem] = refused.json()["problems"]
    assert problem.startswith("query.state:") and "'SUCCESS'" in problem and "'7'" in problem
    assert client.get("/instances", params={"state": "success"}).status_code == 200
    assert client.get("/instances", params={"state": "7"}).status_code == 200


def test_the_api_refuses_a_body_over_its_bound(running: Settings) -> None:
    client = TestClient(compose.http_app(running))

    refused = client.post("/workflows", content=b"{" + b" " * (1 << 20) + b"}")

    assert refused.status_code == 413


def test_cli_lists_the_worker_with_its_group_and_slots(running: Settings) -> None:
    (worker,) = wait_until(lambda: compose.service(running).workers(), what="a heartbeat")

    listed = cli(running, "workers")

    assert "worker_id" in listed and "slots_total" in listed
    assert worker["worker_id"] in listed
    assert "default" in listed


def test_cli_pause_resume_stop_and_workflow_list(running: Settings, tmp_path: Path) -> None:
    definition = tmp_path / "gated-cli.yaml"
    definition.write_text(
        "code: gated-cli\n"
        "tasks:\n"
        f"  - {{code: a, command: '{GATED}'}}\n"
        "  - {code: b, command: 'true', depends: [a]}\n"
    )
    assert "gated-cli: registered version 1" in cli(running, "workflow", "apply", str(definition))
    assert "gated-cli" in cli(running, "workflow", "list")

    gate = tmp_path / "gate-paused"
    out = cli(running, "run", "gated-cli", "-p", f"GATE={gate}")
    iid = out.split("instance ", 1)[1].split()[0]
    wait_task(running, iid, "a", "RUNNING_EXECUTION")
    assert f"pause requested for {iid}" in cli(running, "pause", iid)
    wait_state(running, iid, "READY_PAUSE")
    gate.touch()
    assert attempts(wait_state(running, iid, "PAUSE")) == [("a", 1, "SUCCESS")]
    cli(running, "resume", iid)
    assert attempts(wait_state(running, iid, "SUCCESS")) == [
        ("a", 1, "SUCCESS"),
        ("b", 1, "SUCCESS"),
    ]

    service = compose.service(running)
    stopped = service.start("gated-cli", {"GATE": str(tmp_path / "never")})["instance_id"]
    service.close()
    wait_task(running, stopped, "a", "RUNNING_EXECUTION")
    cli(running, "stop", stopped)
    assert attempts(wait_state(running, stopped, "STOP")) == [("a", 1, "KILL")]
    assert "STOP" in cli(running, "status", stopped)
