"""Workflow priority through a real master: when a worker slot frees, the waiting instance of
the higher priority gets it, though it came later."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from streams.core.commands import StartWorkflow
from streams.core.definition import parse_workflow
from streams.core.enums import Priority
from streams.core.events import TaskDispatched, WorkflowStarted, WorkflowSucceeded
from streams.kafka.producer import Producer
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import ended_with, instance_events, wait_until

pytestmark = pytest.mark.integration


def start(settings: Settings, name: str, command: str, priority: Priority) -> str:
    instance_id = f"{name}-{uuid.uuid4().hex[:8]}"
    task = {"code": "t", "command": command}
    producer = Producer(settings.kafka)
    producer.send(
        settings.topics.commands,
        instance_id,
        StartWorkflow(
            command_id=f"start/{instance_id}",
            instance_id=instance_id,
            workflow=parse_workflow({"code": name, "tasks": [task]}),
            at=datetime.now(UTC),
            priority=priority,
        ),
    )
    producer.flush()
    return instance_id


def has(settings: Settings, instance_id: str, kind: type) -> bool:
    return any(isinstance(e, kind) for e in instance_events(settings, instance_id))


def dispatched_at(settings: Settings, instance_id: str) -> datetime:
    [d] = [e for e in instance_events(settings, instance_id) if isinstance(e, TaskDispatched)]
    return d.at


def test_the_higher_priority_instance_gets_the_freed_slot_first(
    stack: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings(stack, tideflow_heartbeat_interval_s=0.5)
    prepare(settings)
    with Fleet(settings, log_dir=tmp_path / "logs") as fleet:
        fleet.start("master")
        fleet.start("worker", TIDEFLOW_WORKER_SLOTS="1")
        blocker = start(settings, "blocker", "sleep 2", Priority.MEDIUM)
        # the first wait includes the master joining and the worker's first heartbeat
        wait_until(
            lambda: has(settings, blocker, TaskDispatched), timeout_s=90, what="the blocker placed"
        )
        low = start(settings, "low", "true", Priority.LOW)
        wait_until(lambda: has(settings, low, WorkflowStarted), what="the low one waiting")
        high = start(settings, "high", "true", Priority.HIGHEST)

        for iid in (blocker, low, high):
            wait_until(lambda i=iid: ended_with(settings, i, WorkflowSucceeded), what=iid)

        assert dispatched_at(settings, blocker) < dispatched_at(settings, high)
        assert dispatched_at(settings, high) < dispatched_at(settings, low)
