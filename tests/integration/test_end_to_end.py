"""The whole event-sourced path on the real broker and PostgreSQL: API/CLI -> commands ->
master -> events + dispatch -> worker -> acks -> master ... -> projector -> read models."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.definitions import load_file
from infra import compose
from infra.processes import Fleet
from infra.settings import Settings
from projections.replay import compare, replay
from streams.core.commands import StartWorkflow
from streams.core.events import (
    CommandRejected,
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskStarted,
    TaskSucceeded,
    WorkflowDefinitionRegistered,
    WorkflowFailed,
    WorkflowStarted,
)
from streams.kafka.partitioning import partition_for
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from tests.integration.helpers import (
    assert_read_model_matches_log,
    folded,
    instance_events,
    task_codes,
    wait_finished,
    wait_projected,
    wait_projector_running,
    wait_until,
    workflow,
)

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "infra" / "examples" / "nightly-etl.yaml"


def start_roles(fleet: Fleet, *roles: str) -> None:
    for role in roles:
        fleet.start(role)
    if {"projector", "worker"} <= set(roles):
        wait_projector_running(fleet.settings)


def test_example_workflow_succeeds_each_attempt_runs_once_and_read_models_match_log(
    deployment: Settings, fleet: Fleet
) -> None:
    start_roles(fleet, "master", "worker", "projector")
    service = compose.service(deployment)
    example = load_file(EXAMPLE)
    service.register(example)
    instance_id = service.start(example.code)["instance_id"]

    final = wait_finished(service, instance_id)

    assert final["state"] == "SUCCESS"
    events = instance_events(deployment, instance_id)
    started = Counter((e.task_code, e.attempt) for e in events if isinstance(e, TaskStarted))
    dispatched = Counter((e.task_code, e.attempt) for e in events if isinstance(e, TaskDispatched))
    assert set(started.values()) == {1} and set(dispatched.values()) == {1}
    attempts = Counter(code for code, _ in started)
    assert attempts == {t.code: (2 if t.code == "extract-inventory" else 1) for t in example.tasks}
    assert [e.task_code for e in events if isinstance(e, TaskFailed)] == ["extract-inventory"]
    assert_read_model_matches_log(service, folded(deployment, instance_id))
    history = service.history(instance_id)
    assert [h["event_type"] for h in history] == [type(e).__name__ for e in events]


def test_task_that_always_fails_runs_retries_plus_one_attempts_then_instance_fails(
    deployment: Settings, fleet: Fleet
) -> None:
    start_roles(fleet, "master", "worker", "projector")
    service = compose.service(deployment)
    doomed = workflow(
        "doomed",
        [
            {"code": "prepare", "command": "true"},
            {"code": "flaky", "command": "exit 7", "depends": ["prepare"], "retries": 2,
             "retry_interval": "200ms"},
        ],
    )  # fmt: skip
    service.register(doomed)
    instance_id = service.start("doomed")["instance_id"]

    final = wait_finished(service, instance_id)

    assert final["state"] == "FAILURE"
    events = instance_events(deployment, instance_id)
    failures = [e for e in events if isinstance(e, TaskFailed)]
    assert [(e.task_code, e.attempt, e.exit_code) for e in failures] == [
        ("flaky", 1, 7), ("flaky", 2, 7), ("flaky", 3, 7)
    ]  # fmt: skip
    assert failures[-1].retry_at is None
    assert isinstance(events[-1], WorkflowFailed)
    assert_read_model_matches_log(service, folded(deployment, instance_id))


def test_same_start_command_delivered_twice_starts_one_instance(
    deployment: Settings, fleet: Fleet
) -> None:
    start_roles(fleet, "master", "worker", "projector")
    service = compose.service(deployment)
    service.register(workflow("once", [{"code": "only", "type": "noop"}]))
    command = StartWorkflow(
        command_id="start-once",
        instance_id=str(uuid.uuid4()),
        workflow=service.definition("once"),
        at=datetime.now(UTC),
    )
    service.send(command)
    service.send(command)

    assert wait_finished(service, command.instance_id)["state"] == "SUCCESS"
    events = instance_events(deployment, command.instance_id)
    assert sum(isinstance(e, WorkflowStarted) for e in events) == 1
    assert sum(isinstance(e, TaskDispatched) for e in events) == 1
    assert not [e for e in events if isinstance(e, CommandRejected)]


def test_garbage_is_dead_lettered_a_misrouted_command_forwarded_and_later_ones_run(
    deployment: Settings, fleet: Fleet
) -> None:
    start_roles(fleet, "master", "worker", "projector")
    service = compose.service(deployment)
    service.register(workflow("after-garbage", [{"code": "only", "type": "noop"}]))
    producer = Producer(deployment.kafka)
    producer.send_raw(deployment.topics.commands, b"junk", b"\x00not avro at all")
    producer.send_raw(deployment.topics.commands, b"junk", b"\xc3\x01" + b"\x01" * 8 + b"body")
    misrouted = StartWorkflow(
        command_id="misrouted", instance_id="i-misrouted",
        workflow=service.definition("after-garbage"), at=datetime.now(UTC),
    )  # fmt: skip
    wrong = (partition_for(misrouted.instance_id, deployment.tideflow_partitions) + 1) % 4
    producer.send(deployment.topics.commands, misrouted.instance_id, misrouted, partition=wrong)
    producer.flush()
    instance_id = service.start("after-garbage")["instance_id"]

    assert wait_finished(service, instance_id)["state"] == "SUCCESS"
    assert wait_finished(service, misrouted.instance_id)["state"] == "SUCCESS"  # forwarded
    dead = wait_until(
        lambda: (
            (d := list(read_to_end(deployment.kafka, deployment.topics.dead_letter)))
            and len(d) >= 2
            and d
        ),
        what="dead letters",
    )
    reasons = sorted(dict(m.headers())["tideflow.reason"].decode() for m in dead)
    assert len(reasons) == 2
    assert any("marker" in r for r in reasons)
    assert any("unknown writer schema fingerprint" in r for r in reasons)


CYCLE = """
code: loop
tasks:
  - {code: a, command: "true", depends: [c]}
  - {code: b, command: "true", depends: [a]}
  - {code: c, command: "true", depends: [b]}
"""


def test_invalid_dag_is_refused_by_api_and_cli_with_the_cycle_named(
    deployment: Settings, tmp_path: Path
) -> None:
    client = TestClient(compose.http_app(deployment))
    response = client.post(
        "/workflows", content=CYCLE, headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 422
    assert any(p.startswith("cycle: ") for p in response.json()["problems"])
    assert "a -> " in " ".join(response.json()["problems"])

    path = tmp_path / "loop.yaml"
    path.write_text(CYCLE)
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "workflow", "apply", str(path)],
        env={**os.environ, **deployment.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "cycle:" in result.stderr


def test_api_starts_a_run_and_serves_it(deployment: Settings, fleet: Fleet) -> None:
    start_roles(fleet, "master", "worker", "projector")
    client = TestClient(compose.http_app(deployment))
    tasks = [{"code": "a", "type": "noop"}, {"code": "b", "command": "echo hi", "depends": ["a"]}]
    definition = {"code": "via-api", "tasks": tasks}
    assert client.post("/workflows", json=definition).status_code == 201
    assert client.post("/workflows", json=definition).status_code == 200  # same content
    assert client.post("/workflows/nope/runs").status_code == 404
    accepted = client.post("/workflows/via-api/runs", json={"params": {"day": "1"}})
    assert accepted.status_code == 202
    instance_id = accepted.json()["instance_id"]

    final = wait_finished(compose.service(deployment), instance_id)

    assert final["state"] == "SUCCESS"
    assert client.get(f"/instances/{instance_id}").json()["state_code"] == 7
    listed = client.get("/instances", params={"workflow": "via-api", "state": "SUCCESS"}).json()
    assert [i["instance_id"] for i in listed] == [instance_id]
    assert (
        client.get(f"/instances/{instance_id}/history").json()[0]["event_type"] == "WorkflowStarted"
    )
    assert client.get("/instances/missing").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_replay_into_a_fresh_schema_equals_the_live_read_models(
    deployment: Settings, fleet: Fleet
) -> None:
    start_roles(fleet, "master", "worker", "projector")
    service = compose.service(deployment)
    service.register(load_file(EXAMPLE))
    service.register(workflow("fails", [{"code": "x", "command": "exit 1"}]))
    ids = [service.start("nightly-etl")["instance_id"], service.start("fails")["instance_id"]]
    for instance_id in ids:
        wait_finished(service, instance_id)
    wait_projected(deployment)  # the projector has taken the last events in

    fresh = f"{deployment.tideflow_db_schema}_replay"
    counts = replay(deployment.kafka, deployment.db, fresh)

    assert sum(counts.values()) > 0
    assert compare(deployment.db, deployment.tideflow_db_schema, fresh) == []


def test_master_killed_mid_run_is_replaced_and_the_instance_finishes(
    deployment: Settings, fleet: Fleet
) -> None:
    start_roles(fleet, "master", "worker", "projector")
    service = compose.service(deployment)
    steps = [{"code": f"step{i}", "command": "sleep 0.3"} for i in range(8)]
    for i, step in enumerate(steps[1:], start=1):
        step["depends"] = [f"step{i - 1}"]
    service.register(workflow("long", steps))
    instance_id = service.start("long")["instance_id"]
    wait_until(
        lambda: "step2" in task_codes(service, instance_id),
        what="step2 to be dispatched",
    )

    fleet.kill("master")  # SIGKILL: no hand-over, state only in the log
    fleet.start("master", name="master-2")

    final = wait_finished(service, instance_id)
    assert final["state"] == "SUCCESS"
    events = instance_events(deployment, instance_id)
    assert sum(isinstance(e, WorkflowStarted) for e in events) == 1
    assert_read_model_matches_log(service, folded(deployment, instance_id))


def test_a_worker_is_never_given_more_attempts_than_it_has_slots(
    deployment: Settings, fleet: Fleet
) -> None:
    """Eight parallel tasks, one worker with two slots: the rest wait in the master (no
    attempt queues behind a busy slot, none times out or is failed over) and all succeed."""
    fleet.start("master")
    fleet.start("projector")
    fleet.start("worker", TIDEFLOW_WORKER_SLOTS="2", TIDEFLOW_WORKER_ID="two-slots")
    service = compose.service(deployment)
    wide = workflow("slots", [{"code": f"t{i}", "command": "sleep 0.3"} for i in range(8)])
    service.register(wide)
    instance_id = service.start(wide.code)["instance_id"]

    assert wait_finished(service, instance_id)["state"] == "SUCCESS"
    events = instance_events(deployment, instance_id)
    assert not [e for e in events if isinstance(e, TaskFailedOver)]
    running = peak = 0
    for e in events:  # attempts handed to the worker and not yet finished, in log order
        if isinstance(e, TaskDispatched):
            running += 1
        elif isinstance(e, TaskSucceeded):
            running -= 1
        peak = max(peak, running)
    assert peak == 2


def test_a_registration_that_loses_its_version_to_another_takes_the_next_one(
    deployment: Settings, fleet: Fleet
) -> None:
    fleet.start("projector")
    service = compose.service(deployment)
    service.register(workflow("race", [{"code": "a", "command": "true"}]))
    fleet.kill("projector")  # so both contenders read version 1 as the latest
    theirs = workflow("race", [{"code": "theirs", "command": "true"}])
    mine = workflow("race", [{"code": "mine", "command": "true"}])
    competing = WorkflowDefinitionRegistered(
        workflow=replace(theirs, version=2),
        content_hash=theirs.content_hash(),
        registered_by="someone else",
        at=datetime.now(UTC),
    )
    producer = Producer(deployment.kafka)
    producer.send(deployment.topics.definitions, f"race@2@{theirs.content_hash()}", competing)
    producer.flush()

    with ThreadPoolExecutor(1) as pool:
        registering = pool.submit(service.register, mine)
        definitions = deployment.topics.definitions
        wait_until(lambda: len(list(read_to_end(deployment.kafka, definitions, [0]))) == 3 or None)
        fleet.start("projector")
        registered = registering.result(timeout=60)

    assert (registered.version, registered.created) == (3, True)
    assert [t.code for t in service.definition("race", 2).tasks] == ["theirs"]
    assert [t.code for t in service.definition("race", 3).tasks] == ["mine"]
