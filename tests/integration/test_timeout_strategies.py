"""Timeout strategies and delays through a real master, worker and projector: WARN records a
warning and the task runs on to success; WARNFAILED warns and the worker kills the task;
a workflow timeout warns once; a delayed task waits in DELAY_EXECUTION on the master's
timers before its dispatch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra import compose
from infra.processes import Fleet
from infra.settings import Settings
from streams.core.commands import StartWorkflow
from streams.core.definition import parse_workflow
from streams.core.enums import TimeoutStrategy
from streams.core.events import (
    TaskDelayed,
    TaskDispatched,
    TaskFailed,
    TaskTimedOut,
    WorkflowTimedOut,
)
from streams.kafka.producer import Producer
from tests.integration.helpers import (
    assert_read_model_matches_log,
    folded,
    instance_events,
    wait_finished,
)

pytestmark = pytest.mark.integration


def _start(settings: Settings, name: str, raw: dict[str, Any]) -> str:
    instance_id = f"{name}-{uuid.uuid4().hex[:8]}"
    start = StartWorkflow(
        command_id=f"start/{instance_id}",
        instance_id=instance_id,
        workflow=parse_workflow({"code": name, **raw}),
        at=datetime.now(UTC),
    )
    producer = Producer(settings.kafka)
    producer.send(settings.topics.commands, instance_id, start)
    producer.flush()
    return instance_id


def test_warnings_kills_and_delays_on_the_real_stack(deployment: Settings, fleet: Fleet) -> None:
    for role in ("master", "worker", "projector"):
        fleet.start(role)
    service = compose.service(deployment)
    warned = _start(
        deployment,
        "warned",
        {
            "timeout": "1s",
            "tasks": [
                {"code": "slow", "command": "sleep 2", "timeout": "1s", "timeout_strategy": "warn"},
                {"code": "late", "type": "noop", "delay": "1s", "depends": ["slow"]},
            ],
        },
    )
    killed = _start(
        deployment,
        "killed",
        {
            "tasks": [
                {
                    "code": "nap",
                    "command": "sleep 30",
                    "timeout": "1s",
                    "timeout_strategy": "warnfailed",
                }
            ]
        },
    )

    assert wait_finished(service, warned, timeout_s=60)["state"] == "SUCCESS"
    assert wait_finished(service, killed, timeout_s=60)["state"] == "FAILURE"

    events = instance_events(deployment, warned)
    [task_warning] = [e for e in events if isinstance(e, TaskTimedOut)]
    assert (task_warning.task_code, task_warning.strategy) == ("slow", TimeoutStrategy.WARN)
    [workflow_warning] = [e for e in events if isinstance(e, WorkflowTimedOut)]
    assert workflow_warning.at - folded(deployment, warned).started_at >= timedelta(seconds=1)  # type: ignore[operator]
    [delayed] = [e for e in events if isinstance(e, TaskDelayed)]
    [dispatched] = [e for e in events if isinstance(e, TaskDispatched) and e.task_code == "late"]
    assert (delayed.attempt, dispatched.attempt) == (1, 1)
    assert dispatched.at >= delayed.until == delayed.at + timedelta(seconds=1)
    assert_read_model_matches_log(service, folded(deployment, warned))

    kinds = [type(e) for e in instance_events(deployment, killed)]
    assert kinds.index(TaskTimedOut) < kinds.index(TaskFailed)
    assert_read_model_matches_log(service, folded(deployment, killed))
