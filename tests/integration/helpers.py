"""Shared steps of the end-to-end tests: run a workflow, read the log, compare with PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from api.service import NotFound, Service
from infra.settings import Settings
from schemas.catalog import EVENTS
from schemas.serde import expect
from streams.core.definition import WorkflowDef, parse_workflow
from streams.core.events import InstanceEvent
from streams.core.evolve import fold
from streams.core.instance import InstanceState
from streams.kafka.reader import read_to_end


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


def wait_until(probe: Any, timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


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
