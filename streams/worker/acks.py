"""The acks a worker sends for one attempt: `ReportTaskStarted`, then `ReportTaskFinished`.

Their command ids derive from (instance, task, attempt, kind), so a re-sent ack is the same
command and the master decides it once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.core.commands import ReportTaskFinished, ReportTaskStarted
from streams.core.ids import ack_command_id
from streams.core.worker_messages import KillTask, TaskAssignment
from streams.worker.result import Result


def _fields(
    a: TaskAssignment | KillTask, kind: str, worker_id: str, at: datetime
) -> dict[str, Any]:
    return {
        "command_id": ack_command_id(a.instance_id, a.task_code, a.attempt, kind),
        "instance_id": a.instance_id,
        "task_code": a.task_code,
        "attempt": a.attempt,
        "worker_id": worker_id,
        "at": at,
    }


def started(a: TaskAssignment, worker_id: str, at: datetime) -> ReportTaskStarted:
    return ReportTaskStarted(**_fields(a, "started", worker_id, at))


def finished(
    a: TaskAssignment | KillTask, r: Result, worker_id: str, at: datetime
) -> ReportTaskFinished:
    return ReportTaskFinished(
        **_fields(a, "finished", worker_id, at),
        outcome=r.outcome,
        exit_code=r.exit_code,
        output=r.output,
        out_params=r.out_params,
    )
