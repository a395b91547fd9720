"""Shared steps of the end-to-end tests: run a workflow, read the log, compare with PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from api.service import NotFound, Service
from infra.settings import Settings
from schemas.catalog import COMMANDS, EVENTS
from schemas.serde import expect
from streams.core.commands import ReportTaskFinished, StartWorkflow
from streams.core.definition import WorkflowDef, parse_workflow
from streams.core.events import InstanceEvent
from streams.core.evolve import fold
from streams.core.instance import InstanceState
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from streams.postgres.connection import connect


def workflow(code: str, tasks: list[dict[str, Any]], **extra: Any) -> WorkflowDef:
    return parse_workflow({"code": code, "tasks": tasks, **extra})


def wait_finished(service: Service, instance_id: str, timeout_s: float = 90.0) -> dict[str, Any]:
    *_, final = service.wait_for_instance(instance_id, timeout_s)
    return final


def task_codes(service: Service, instance_id: str) -> set[str]:
    """Codes of the tasks the read model shows for the instance (none before it is projected)."""
    try:
        return {t["task_code"] for t in service.instance(instance_id)["tasks"]}
    except NotFound:
        return set()


def instance_events(settings: Settings, instance_id: str) -> list[InstanceEvent]:
    out = []
    for msg in read_to_end(settings.kafka, settings.topics.events):
        event = expect(msg.value(), EVENTS)
        if getattr(event, "instance_id", None) == instance_id:
            out.append(event)
    return out


def send_start(
    settings: Settings,
    name: str,
    tasks: list[dict[str, Any]],
    params: dict[str, str] | None = None,
) -> str:
    """Send a StartWorkflow of a one-off workflow straight to the commands topic (no
    registration, no projector needed); returns the new instance id."""
    instance_id = f"{name}-{uuid.uuid4().hex[:8]}"
    start = StartWorkflow(
        command_id=f"start/{instance_id}",
        instance_id=instance_id,
        workflow=workflow(name, tasks),
        params=params or {},
        at=datetime.now(UTC),
    )
    producer = Producer(settings.kafka)
    producer.send(settings.topics.commands, instance_id, start)
    producer.flush()
    return instance_id


def finished_acks(settings: Settings, instance_id: str) -> list[ReportTaskFinished]:
    """Workers' finished acks for the instance on the commands topic, in log order."""
    commands = (
        expect(m.value(), COMMANDS) for m in read_to_end(settings.kafka, settings.topics.commands)
    )
    return [
        c for c in commands if isinstance(c, ReportTaskFinished) and c.instance_id == instance_id
    ]


def ended_with(settings: Settings, instance_id: str, kind: type) -> bool:
    """The instance's events, in the log, include one of `kind` (e.g. WorkflowSucceeded)."""
    return any(isinstance(e, kind) for e in instance_events(settings, instance_id))


def wait_projector_running(settings: Settings, timeout_s: float = 90.0) -> None:
    """Wait until the projector, just started, has taken in a worker's heartbeat. Registering
    a workflow waits a bounded time (15 s) for the projector, which its start-up under load
    can exceed: tests that register right after starting the fleet wait here first."""

    def projected_workers() -> list[dict[str, Any]]:
        service = Service(settings.kafka, settings.db)
        try:
            return service.workers()
        finally:
            service.close()

    wait_until(projected_workers, timeout_s, what="the projector to take in a heartbeat")


def wait_until(probe: Any, timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def log_ends(settings: Settings, topic: str) -> dict[int, int]:
    """The next offset after the last record of each non-empty partition of `topic`."""
    ends: dict[int, int] = {}
    for msg in read_to_end(settings.kafka, topic):
        p, offset = msg.partition(), msg.offset()
        if p is not None and offset is not None:
            ends[p] = max(ends.get(p, 0), offset + 1)
    return ends


def projector_checkpoints(settings: Settings, topic: str) -> dict[int, int]:
    """The projector's checkpoint (next offset to project) per partition of `topic`."""
    with connect(settings.db) as conn:
        rows = conn.execute(
            "SELECT partition, next_offset FROM projector_checkpoints"
            " WHERE consumer = 'projector' AND topic = %s",
            (topic,),
        ).fetchall()
    return {int(p): int(n) for p, n in rows}


def wait_projected(settings: Settings, timeout_s: float = 30.0) -> None:
    """Wait until the projector's checkpoints reach the current end of the events and
    definitions topics (heartbeats keep coming: not waited for)."""
    topics = (settings.topics.events, settings.topics.definitions)
    ends = {topic: log_ends(settings, topic) for topic in topics}

    def caught_up() -> bool:
        return all(
            projector_checkpoints(settings, topic).get(p, 0) >= n
            for topic, by_partition in ends.items()
            for p, n in by_partition.items()
        )

    wait_until(caught_up, timeout_s, what="the projector to reach the end of the log")


def assert_read_model_matches_log(service: Service, state: InstanceState) -> None:
    """PostgreSQL's instance row and latest task attempts equal a fresh fold of the log."""
    row = service.instance(state.instance_id)
    assert state.state is not None
    assert row["state_code"] == state.state.value
    assert row["state"] == state.state.name
    tasks = {t["task_code"]: t for t in row["tasks"]}
    assert set(tasks) == set(state.tasks)
    for code, run in state.tasks.items():
        assert tasks[code]["attempt"] == run.attempt, code
        assert tasks[code]["state_code"] == run.state.value, code


def folded(settings: Settings, instance_id: str) -> InstanceState:
    return fold(instance_events(settings, instance_id), instance_id)


def cli(settings: Settings, *args: str) -> str:
    """`tideflow ARGS` as an operator's shell runs it; its output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        env={**os.environ, **settings.to_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
