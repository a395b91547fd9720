"""The controls of issue 11 end to end, through a real master, worker and projector, over
HTTP (`compose.http_app`) and the CLI (`python -m infra.cli`): rerun (REPEAT_RUNNING), force
success, stop one task, the run flag, dry run, start nodes with a scope, EXECUTE_TASK. A
control in the wrong state is accepted (202) and ends as a `CommandRejected`. The last test
replays the whole log into a fresh schema and compares it with the live read models.

Task `a` of the gated workflow runs until the test creates its gate file, so the test, not
the clock, decides when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra import compose
from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from projections.replay import compare, replay
from streams.core.commands import StartWorkflow
from streams.core.enums import TaskDependType
from streams.core.events import CommandRejected
from streams.core.rejections import Reason
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import instance_events, wait_projector_running, wait_until
from tests.integration.test_controls import attempts, cli, gated, row, wait_state, wait_task

pytestmark = pytest.mark.integration

QUICK = {
    "code": "quick",
    "tasks": [
        {"code": "a", "command": "true"},
        {"code": "b", "command": "true", "depends": ["a"]},
    ],
}

BRANCHES = {
    "code": "branches",
    "tasks": [
        {"code": "a", "command": "exit 3"},
        {"code": "b", "command": "true"},
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
        for definition in (QUICK, BRANCHES, gated("gated")):
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


# -- force success --------------------------------------------------------------------------


def test_http_force_success_of_the_only_failure_makes_the_instance_succeed(
    running: Settings,
) -> None:
    client = TestClient(compose.http_app(running))
    iid = client.post("/workflows/branches/runs").json()["instance_id"]
    wait_state(running, iid, "FAILURE")

    assert client.post(f"/instances/{iid}/tasks/a/force-success").status_code == 202

    done = wait_state(running, iid, "SUCCESS")
    states = {t["task_code"]: (t["state"], t["state_code"], t["exit_code"]) for t in done["tasks"]}
    assert states == {"a": ("FORCED_SUCCESS", 13, 3), "b": ("SUCCESS", 7, 0)}

    assert client.post(f"/instances/{iid}/tasks/b/force-success").status_code == 202
    refused = wait_until(lambda: client.get(f"/instances/{iid}").json()["rejections"],
                         what="the refusal")  # fmt: skip
    assert [(r["command_type"], r["reason"], r["message"]) for r in refused] == [
        ("ForceTaskSuccess", "INVALID_STATE", "expected task b FAILURE or KILL, found SUCCESS")
    ]
    assert client.post(f"/instances/{iid}/tasks/a/succeed").status_code == 404
    assert client.post("/instances/missing/tasks/a/force-success").status_code == 404


# -- stop one task --------------------------------------------------------------------------


def test_http_stop_task_kills_it_and_the_instance_ends_failure(
    running: Settings, tmp_path: Path
) -> None:
    client = TestClient(compose.http_app(running))
    body = {"params": {"GATE": str(tmp_path / "never")}}
    iid = client.post("/workflows/gated/runs", json=body).json()["instance_id"]
    wait_task(running, iid, "a", "RUNNING_EXECUTION")

    assert client.post(f"/instances/{iid}/tasks/a/stop").status_code == 202

    failed = wait_state(running, iid, "FAILURE")
    assert attempts(failed) == [("a", 1, "KILL")]  # b never runs
    assert failed["failure_reason"] == "failed: a (KILL after 1 attempt)"


def test_cli_stop_task_then_force_success_then_resume_runs_what_was_left(
    running: Settings, tmp_path: Path
) -> None:
    out = cli(running, "run", "gated", "-p", f"GATE={tmp_path / 'never'}")
    iid = out.split("instance ", 1)[1].split()[0]
    wait_task(running, iid, "a", "RUNNING_EXECUTION")

    assert f"stop requested for task a of {iid}" in cli(running, "stop-task", iid, "a")
    assert attempts(wait_state(running, iid, "FAILURE")) == [("a", 1, "KILL")]
    assert "force-success requested" in cli(running, "force-success", iid, "a")
    wait_task(running, iid, "a", "FORCED_SUCCESS")
    assert (found := row(running, iid)) is not None and found["state"] == "FAILURE"  # b never ran
    cli(running, "resume", iid)

    done = wait_state(running, iid, "SUCCESS")
    assert attempts(done) == [("a", 1, "FORCED_SUCCESS"), ("b", 1, "SUCCESS")]
    assert "FORCED_SUCCESS" in cli(running, "status", iid)


# -- run flag -------------------------------------------------------------------------------


def test_http_a_disabled_task_is_skipped_and_its_dependant_runs_after_its_upstream(
    running: Settings,
) -> None:
    client = TestClient(compose.http_app(running))
    skipping = {
        "code": "skipping",
        "tasks": [
            {"code": "a", "command": "true"},
            {"code": "b", "command": "exit 9", "depends": ["a"], "run": False},
            {"code": "c", "command": "true", "depends": ["b"]},
        ],
    }
    assert client.post("/workflows", json=skipping).status_code == 201
    assert [t["run"] for t in client.get("/workflows/skipping").json()["tasks"]] == [
        True, False, True
    ]  # fmt: skip
    iid = client.post("/workflows/skipping/runs").json()["instance_id"]

    done = wait_state(running, iid, "SUCCESS")

    assert attempts(done) == [("a", 1, "SUCCESS"), ("c", 1, "SUCCESS")]  # no row for b


def test_cli_a_task_disabled_in_yaml_never_runs(running: Settings, tmp_path: Path) -> None:
    definition = tmp_path / "skip-cli.yaml"
    definition.write_text(
        "code: skip-cli\n"
        "tasks:\n"
        "  - {code: a, command: 'exit 9', run: false}\n"
        "  - {code: b, command: 'true', depends: [a]}\n"
    )
    assert "skip-cli: registered version 1" in cli(running, "workflow", "apply", str(definition))
    out = cli(running, "run", "skip-cli", "--wait")
    iid = out.split("instance ", 1)[1].split()[0]

    assert attempts(wait_state(running, iid, "SUCCESS")) == [("b", 1, "SUCCESS")]
    assert "1/1" in out  # the progress counts the tasks that run


# -- dry run --------------------------------------------------------------------------------

MARKING = 'touch "$MARK"; exit 9'


def test_http_a_dry_run_is_orchestrated_and_succeeds_without_running_anything(
    running: Settings, tmp_path: Path
) -> None:
    client = TestClient(compose.http_app(running))
    marking = {
        "code": "marking",
        "tasks": [
            {"code": "a", "command": MARKING},
            {"code": "b", "command": MARKING, "depends": ["a"]},
        ],
    }
    assert client.post("/workflows", json=marking).status_code == 201
    mark = tmp_path / "ran"
    body = {"params": {"MARK": str(mark)}, "dry_run": True}
    iid = client.post("/workflows/marking/runs", json=body).json()["instance_id"]

    done = wait_state(running, iid, "SUCCESS")

    assert done["dry_run"] is True
    assert attempts(done) == [("a", 1, "SUCCESS"), ("b", 1, "SUCCESS")]
    assert {t["output"] for t in done["tasks"]} == {"[tideflow] dry run: not executed\n"}
    assert not mark.exists()
    real = client.post("/workflows/marking/runs", json={"params": {"MARK": str(mark)}}).json()
    assert wait_state(running, real["instance_id"], "FAILURE")["dry_run"] is False
    assert mark.exists()  # the same workflow, not dry: it ran


def test_cli_run_dry_run_succeeds_without_running_anything(
    running: Settings, tmp_path: Path
) -> None:
    definition = tmp_path / "marking-cli.yaml"
    definition.write_text(f"code: marking-cli\ntasks:\n  - {{code: a, command: '{MARKING}'}}\n")
    cli(running, "workflow", "apply", str(definition))
    mark = tmp_path / "ran"

    out = cli(running, "run", "marking-cli", "--dry-run", "-p", f"MARK={mark}", "--wait")

    assert "SUCCESS" in out
    iid = out.split("instance ", 1)[1].split()[0]
    assert wait_state(running, iid, "SUCCESS")["dry_run"] is True
    assert not mark.exists()


# -- start nodes and scope (startNodeList, taskDependType) ----------------------------------

FANNED = {
    "code": "fanned",
    "tasks": [
        {"code": "a", "command": "true"},
        {"code": "b", "command": "true", "depends": ["a"]},
        {"code": "c", "command": "true", "depends": ["b"]},
        {"code": "x", "command": "exit 9"},
    ],
}


def test_http_start_nodes_with_task_pre_run_them_and_their_upstream_only(
    running: Settings,
) -> None:
    client = TestClient(compose.http_app(running))
    assert client.post("/workflows", json=FANNED).status_code == 201
    body = {"start_nodes": ["b"], "scope": "TASK_PRE"}

    iid = client.post("/workflows/fanned/runs", json=body).json()["instance_id"]

    assert attempts(wait_state(running, iid, "SUCCESS")) == [
        ("a", 1, "SUCCESS"), ("b", 1, "SUCCESS")
    ]  # fmt: skip
    unknown = client.post("/workflows/fanned/runs", json={"start_nodes": ["b", "nope"]})
    assert unknown.status_code == 422
    assert unknown.json()["problems"] == [
        "start node: expected a task of the workflow, found 'nope'"
    ]
    bad_scope = {"start_nodes": ["b"], "scope": "TASK_SIDEWAYS"}
    assert client.post("/workflows/fanned/runs", json=bad_scope).status_code == 422


def test_a_start_with_an_unknown_start_node_sent_straight_is_refused_invalid_dag(
    running: Settings,
) -> None:
    service = compose.service(running)
    iid = f"unknown-node-{uuid.uuid4()}"
    try:
        service.send(
            StartWorkflow(
                command_id=f"start/{iid}", instance_id=iid, workflow=service.definition("quick"),
                at=datetime.now(UTC), start_nodes=("nope",), scope=TaskDependType.TASK_ONLY,
            )
        )  # fmt: skip
    finally:
        service.close()

    def refusal() -> list[CommandRejected]:
        return [e for e in instance_events(running, iid) if isinstance(e, CommandRejected)]

    refused = wait_until(refusal, timeout_s=30, what="the refusal")
    assert [(e.reason, e.message) for e in refused] == [
        (Reason.INVALID_DAG, "start node: expected a task of the workflow, found 'nope'")
    ]
    assert [type(e) for e in instance_events(running, iid)] == [CommandRejected]


def test_cli_run_start_node_with_task_post_runs_it_and_its_downstream(
    running: Settings, tmp_path: Path
) -> None:
    definition = tmp_path / "fanned-cli.yaml"
    definition.write_text(
        "code: fanned-cli\n"
        "tasks:\n"
        "  - {code: a, command: 'exit 9'}\n"
        "  - {code: b, command: 'true', depends: [a]}\n"
        "  - {code: c, command: 'true', depends: [b]}\n"
        "  - {code: x, command: 'exit 9'}\n"
    )
    cli(running, "workflow", "apply", str(definition))

    out = cli(running, "run", "fanned-cli", "--start-node", "b", "--scope", "TASK_POST", "--wait")

    iid = out.split("instance ", 1)[1].split()[0]
    assert attempts(wait_state(running, iid, "SUCCESS")) == [
        ("b", 1, "SUCCESS"), ("c", 1, "SUCCESS")
    ]  # fmt: skip
    assert "2/2" in out  # the progress counts the chosen tasks
    refused = subprocess.run(
        [sys.executable, "-m", "infra.cli", "run", "fanned-cli", "--start-node", "nope"],
        env={**os.environ, **running.to_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2, refused.stderr
    assert "invalid start nodes" in refused.stderr
    assert "found 'nope'" in refused.stderr


# -- EXECUTE_TASK: chosen tasks again inside a finished instance ----------------------------

FIXABLE = {
    "code": "fixable",
    "tasks": [
        {"code": "a", "command": "true"},
        {"code": "b", "command": 'test -e "$FIX"', "depends": ["a"]},
        {"code": "c", "command": "true", "depends": ["b"]},
    ],
}


def test_http_execute_tasks_reruns_the_failed_task_and_its_downstream_then_cli_one_task(
    running: Settings, tmp_path: Path
) -> None:
    client = TestClient(compose.http_app(running))
    assert client.post("/workflows", json=FIXABLE).status_code == 201
    fix = tmp_path / "fix"
    body = {"params": {"FIX": str(fix)}}
    iid = client.post("/workflows/fixable/runs", json=body).json()["instance_id"]
    wait_state(running, iid, "FAILURE")
    fix.touch()

    execute = {"start_nodes": ["b"], "scope": "TASK_POST"}
    assert client.post(f"/instances/{iid}/execute-tasks", json=execute).status_code == 202

    done = wait_attempts(running, iid, 4, "SUCCESS")
    assert sorted(valid(done)) == [("a", 1, True), ("b", 1, False), ("b", 2, True),
                                   ("c", 1, True)]  # fmt: skip
    out = cli(running, "execute-tasks", iid, "--start-node", "a", "--scope", "TASK_ONLY")
    assert "execute-tasks requested for a" in out
    again = wait_attempts(running, iid, 5, "SUCCESS")
    assert sorted((t["task_code"], t["attempt"]) for t in again["tasks"]) == [
        ("a", 2), ("b", 2), ("c", 1)
    ]  # fmt: skip
    nope = {"start_nodes": ["nope"]}
    assert client.post(f"/instances/{iid}/execute-tasks", json=nope).status_code == 202
    refused = wait_until(lambda: client.get(f"/instances/{iid}").json()["rejections"],
                         what="the refusal")  # fmt: skip
    assert [(r["command_type"], r["reason"], r["message"]) for r in refused] == [
        ("RerunTasks", "NOT_FOUND", f"expected a task that instance {iid} runs, found 'nope'")
    ]
    assert (
        client.post(f"/instances/{iid}/execute-tasks", json={"start_nodes": []}).status_code == 422
    )
    assert client.post("/instances/missing/execute-tasks", json=execute).status_code == 404


# -- replay ---------------------------------------------------------------------------------


def test_replay_of_the_controls_equals_the_live_read_models(running: Settings) -> None:
    """Run last in the module: every instance above has ended, so nothing is in flight."""
    fresh = f"{running.tideflow_db_schema}_replay"

    replay(running.kafka, running.db, fresh)

    assert compare(running.db, running.tideflow_db_schema, fresh) == []
