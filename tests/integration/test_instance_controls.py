"""The controls of issue 11 end to end, through a real master, worker and projector, over
HTTP (`compose.http_app`) and the CLI (`python -m infra.cli`): rerun (REPEAT_RUNNING). A
control in the wrong state is accepted (202) and ends as a `CommandRejected`. The last test
replays the whole log into a fresh schema and compares it with the live read models.

Task `a` of the gated workflow runs until the test creates its gate file, so the test, not
the clock, decides when it ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra import compose
from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from projections.replay import compare, replay
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import wait_projector_running, wait_until
from tests.integration.test_controls import attempts, cli, gated, row, wait_state, wait_task

pytestmark = pytest.mark.integration

QUICK = {
    "code": "quick",
    "tasks": [
        {"code": "a", "command": "true"},
        {"code": "b", "command": "true", "depends": ["a"]},
    ],
}


@pytest.fixture(scope="module")
def running(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One deployment with a master, a worker and the projector for the module's tests."""
    settings = fresh_settings(stack, tideflow_heartbeat_interval_s=0.5)
    prepare(settings)
    with Fleet(settings, log_dir=tmp_path_factory.mktemp("instance-controls") / "logs") as fleet:
        for role in ("master", "worker", "projector"):
            fleet.start(role)
        wait_projector_running(settings)
        client = TestClient(compose.http_app(settings))
        for definition in (QUICK, gated("gated")):
            assert client.post("/workflows", json=definition).status_code == 201
        yield settings


def valid(found: dict[str, Any]) -> list[tuple[str, int, bool]]:
    return [(t["task_code"], t["attempt"], t["valid"]) for t in found["attempts"]]


def wait_attempts(settings: Settings, instance_id: str, count: int, state: str) -> dict[str, Any]:
    """The instance once it has `count` attempt rows and is in `state`."""
    return wait_until(
        lambda: (
            (r := row(settings, instance_id)) is not None
            and len(r["attempts"]) == count
            and r["state"] == state
            and r
        ),
        timeout_s=60,
        what=f"{instance_id}: {count} attempts, {state}",
    )


# -- rerun (REPEAT_RUNNING) -----------------------------------------------------------------


def test_http_rerun_of_a_finished_instance_runs_the_dag_again_under_the_same_id(
    running: Settings,
) -> None:
    client = TestClient(compose.http_app(running))
    iid = client.post("/workflows/quick/runs").json()["instance_id"]
    first = wait_state(running, iid, "SUCCESS")

    assert client.post(f"/instances/{iid}/rerun").status_code == 202

    again = wait_attempts(running, iid, 4, "SUCCESS")
    assert valid(again) == [("a", 1, False), ("b", 1, False), ("a", 2, True), ("b", 2, True)]
    assert [(t["task_code"], t["attempt"]) for t in again["tasks"]] == [("a", 2), ("b", 2)]
    assert again["started_at"] > first["started_at"]
    kinds = [e["event_type"] for e in client.get(f"/instances/{iid}/history").json()]
    assert kinds.count("WorkflowRerun") == 1 and kinds.count("WorkflowSucceeded") == 2


def test_http_rerun_of_a_running_instance_is_refused(running: Settings, tmp_path: Path) -> None:
    client = TestClient(compose.http_app(running))
    gate = tmp_path / "gate"
    iid = client.post("/workflows/gated/runs", json={"params": {"GATE": str(gate)}}).json()[
        "instance_id"
    ]
    wait_task(running, iid, "a", "RUNNING_EXECUTION")

    assert client.post(f"/instances/{iid}/rerun").status_code == 202

    refused = wait_until(lambda: client.get(f"/instances/{iid}").json()["rejections"],
                         what="the refusal")  # fmt: skip
    assert [(r["command_type"], r["reason"]) for r in refused] == [
        ("RerunWorkflow", "INVALID_STATE")
    ]
    assert refused[0]["message"] == (
        "expected FAILURE or PAUSE or STOP or SUCCESS, found RUNNING_EXECUTION"
    )
    gate.touch()
    assert attempts(wait_state(running, iid, "SUCCESS")) == [
        ("a", 1, "SUCCESS"),
        ("b", 1, "SUCCESS"),
    ]
    assert client.post("/instances/missing/rerun").status_code == 404


def test_cli_rerun_of_a_stopped_instance_runs_every_task_again(
    running: Settings, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    out = cli(running, "run", "gated", "-p", f"GATE={gate}")
    iid = out.split("instance ", 1)[1].split()[0]
    wait_task(running, iid, "a", "RUNNING_EXECUTION")
    cli(running, "stop", iid)
    assert attempts(wait_state(running, iid, "STOP")) == [("a", 1, "KILL")]
    gate.touch()  # the rerun's attempt of `a` ends at once

    assert f"rerun requested for {iid}" in cli(running, "rerun", iid)

    again = wait_attempts(running, iid, 3, "SUCCESS")
    assert valid(again) == [("a", 1, False), ("a", 2, True), ("b", 1, True)]
    assert "SUCCESS" in cli(running, "status", iid)


# -- replay ---------------------------------------------------------------------------------


def test_replay_of_the_controls_equals_the_live_read_models(running: Settings) -> None:
    """Run last in the module: every instance above has ended, so nothing is in flight."""
    fresh = f"{running.tideflow_db_schema}_replay"

    replay(running.kafka, running.db, fresh)

    assert compare(running.db, running.tideflow_db_schema, fresh) == []
