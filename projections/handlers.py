"""One handler per record type: `(cursor, record, meta) -> None`, idempotent upserts into the
read models (sql/001_read_models.sql). `project` archives the record, then runs its handler.

Handlers mirror `streams.core.evolve` (the instance state and each task's latest attempt
equal a fold of the same events) and never read a clock: every timestamp is an event's
`at`. Applying a record twice, or a log suffix again in order, converges to the same rows.
They do not commit: the projector (or replay) owns the transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final

from psycopg import Cursor
from psycopg.types.json import Jsonb

from streams.core.definition import workflow_to_dict
from streams.core.events import (
    CommandRejected,
    PartitionTakenOver,
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskKilled,
    TaskKillRequested,
    TaskStarted,
    TaskSucceeded,
    WorkerLost,
    WorkflowDefinitionRegistered,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowPauseRequested,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowStopped,
    WorkflowStopRequested,
    WorkflowSucceeded,
)
from streams.core.ids import task_instance_id
from streams.core.records import WorkerHeartbeat
from streams.core.states import TaskState, WorkflowState

Cur = Cursor[Any]


@dataclass(frozen=True, slots=True)
class Meta:
    """Where a record was read. `topic` is the name without the deployment's prefix."""

    topic: str
    partition: int
    offset: int
    key: str | None


Handler = Callable[[Cur, Any, Meta], None]


def text(value: str | None) -> str | None:
    """PostgreSQL text and jsonb refuse NUL characters (task output may hold them)."""
    return None if value is None else value.replace("\x00", "\ufffd")


def jsonable(value: Any) -> Any:
    """A record as plain JSON values: enum names, ISO datetimes, lists for tuples."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def _upsert(table: str, row: dict[str, Any], key: tuple[str, ...], *, update: bool,
            where: str = "") -> str:  # fmt: skip
    """INSERT of `row`'s columns (named placeholders); on a `key` conflict either nothing or
    every non-key column is overwritten (optionally only `where`). Built from literals."""
    cols = ", ".join(f'"{c}"' for c in row)
    values = ", ".join(f"%({c})s" for c in row)
    conflict = ", ".join(f'"{c}"' for c in key)
    sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in row if c not in key)
    action = f"DO UPDATE SET {sets}{where}" if update else "DO NOTHING"
    return f"INSERT INTO {table} ({cols}) VALUES ({values}) ON CONFLICT ({conflict}) {action}"


def _insert(cur: Cur, table: str, row: dict[str, Any], key: tuple[str, ...], **kw: Any) -> None:
    cur.execute(_upsert(table, row, key, **kw), row)


def archive(cur: Cur, record: Any, meta: Meta, fenced: bool = False) -> None:
    row = {
        "topic": meta.topic,
        "partition": meta.partition,
        "offset": meta.offset,
        "key": text(meta.key),
        "event_type": type(record).__name__,
        "instance_id": getattr(record, "instance_id", None),
        "epoch": getattr(record, "epoch", None),
        "at": record.at,
        "payload": Jsonb(jsonable(record)),
        "fenced": fenced,
    }
    _insert(cur, "event_archive", row, ("topic", "partition", "offset"), update=False)


# -- workflow instances -------------------------------------------------------------------------


def _set_instance(
    cur: Cur, e: Any, meta: Meta, assignments: str = "", params: tuple[Any, ...] = ()
) -> None:
    """Record that `e` was applied to its instance (updated_at, last_offset), plus `assignments`."""
    cur.execute(
        f"UPDATE workflow_instances SET {assignments} updated_at = %s, last_offset = %s"
        " WHERE instance_id = %s",
        (*params, e.at, meta.offset, e.instance_id),
    )


def _workflow_started(cur: Cur, e: WorkflowStarted, meta: Meta) -> None:
    running = WorkflowState.RUNNING_EXECUTION
    row = {
        "instance_id": e.instance_id,
        "workflow_code": e.workflow.code,
        "workflow_version": e.workflow.version,
        "state_code": running.value,
        "state": running.name,
        "started_at": e.at,
        "ended_at": None,
        "updated_at": e.at,
        "failure_reason": None,
        "requested_by": text(e.requested_by),
        "params": Jsonb(jsonable(e.params)),
        "last_offset": meta.offset,
    }
    _insert(cur, "workflow_instances", row, ("instance_id",), update=True)


def _workflow_to(state: WorkflowState, *, ends: bool) -> Handler:
    """A workflow-level transition: state, and ended_at = `at` when it ends (else NULL)."""

    def apply(cur: Cur, e: Any, meta: Meta) -> None:
        _set_instance(cur, e, meta, "state_code = %s, state = %s, ended_at = %s,",
                      (state.value, state.name, e.at if ends else None))  # fmt: skip

    return apply


def _workflow_failed(cur: Cur, e: WorkflowFailed, meta: Meta) -> None:
    failure = WorkflowState.FAILURE
    _set_instance(cur, e, meta,
                  "state_code = %s, state = %s, ended_at = %s, failure_reason = %s,",
                  (failure.value, failure.name, e.at, text(e.reason)))  # fmt: skip


def _workflow_resumed(cur: Cur, e: WorkflowResumed, meta: Meta) -> None:
    # Attempt rows keep the outcome they had (FAILURE, KILL): an attempt is history. The task
    # runs again as a new attempt, whose dispatch makes the old row invalid.
    running = WorkflowState.RUNNING_EXECUTION
    _set_instance(cur, e, meta,
                  "state_code = %s, state = %s, ended_at = NULL, failure_reason = NULL,",
                  (running.value, running.name))  # fmt: skip


# -- task instances (one row per attempt) -------------------------------------------------------


def _task_dispatched(cur: Cur, e: TaskDispatched, meta: Meta) -> None:
    # Earlier attempts first, so at most one row per task is valid at any time.
    cur.execute(
        "UPDATE task_instances SET valid = false"
        " WHERE instance_id = %s AND task_code = %s AND attempt <> %s AND valid",
        (e.instance_id, e.task_code, e.attempt),
    )
    dispatch = TaskState.DISPATCH
    row = {
        "task_instance_id": task_instance_id(e.instance_id, e.task_code, e.attempt),
        "instance_id": e.instance_id,
        "task_code": e.task_code,
        "attempt": e.attempt,
        "state_code": dispatch.value,
        "state": dispatch.name,
        "worker_id": e.worker_id,
        "worker_group": e.worker_group,
        "dispatched_at": e.at,
        **dict.fromkeys(("started_at", "ended_at", "exit_code", "output", "reason", "retry_at")),
        "valid": True,
    }
    _insert(cur, "task_instances", row, ("task_instance_id",), update=True)
    _set_instance(cur, e, meta)


def _set_task(cur: Cur, e: Any, meta: Meta, assignments: str, params: tuple[Any, ...]) -> None:
    cur.execute(
        f"UPDATE task_instances SET {assignments} WHERE task_instance_id = %s",
        (*params, task_instance_id(e.instance_id, e.task_code, e.attempt)),
    )
    _set_instance(cur, e, meta)


def _task_started(cur: Cur, e: TaskStarted, meta: Meta) -> None:
    running = TaskState.RUNNING_EXECUTION
    _set_task(cur, e, meta, "state_code = %s, state = %s, worker_id = %s, started_at = %s",
              (running.value, running.name, e.worker_id, e.at))  # fmt: skip


def _task_succeeded(cur: Cur, e: TaskSucceeded, meta: Meta) -> None:
    success = TaskState.SUCCESS
    _set_task(cur, e, meta,
              "state_code = %s, state = %s, ended_at = %s, exit_code = %s, output = %s",
              (success.value, success.name, e.at, e.exit_code, text(e.output)))  # fmt: skip


def _task_failed(cur: Cur, e: TaskFailed, meta: Meta) -> None:
    failure = TaskState.FAILURE
    _set_task(cur, e, meta,
              "state_code = %s, state = %s, ended_at = %s, exit_code = %s, output = %s,"
              " reason = %s, retry_at = %s",
              (failure.value, failure.name, e.at, e.exit_code, text(e.output), text(e.reason),
               e.retry_at))  # fmt: skip


def _task_failed_over(cur: Cur, e: TaskFailedOver, meta: Meta) -> None:
    nft = TaskState.NEED_FAULT_TOLERANCE
    _set_task(cur, e, meta,
              "state_code = %s, state = %s, ended_at = %s, reason = %s, retry_at = %s",
              (nft.value, nft.name, e.at, text(e.reason), e.at))  # fmt: skip


def _archived_only(cur: Cur, e: Any, meta: Meta) -> None:
    """Partition-level facts that live in the archive alone (lost workers)."""


def _partition_taken_over(cur: Cur, e: PartitionTakenOver, meta: Meta) -> None:
    row = {
        "partition": meta.partition,
        "epoch": e.epoch,
        "owner": e.owner,
        "previous_owner": e.previous_owner,
        "taken_over_at": e.at,
    }
    _insert(cur, "partition_owners", row, ("partition",), update=True,
            where=" WHERE partition_owners.epoch <= EXCLUDED.epoch")  # fmt: skip


def _task_kill_requested(cur: Cur, e: TaskKillRequested, meta: Meta) -> None:
    _set_instance(cur, e, meta)  # no state change until the worker reports TaskKilled


def _task_killed(cur: Cur, e: TaskKilled, meta: Meta) -> None:
    kill = TaskState.KILL
    _set_task(cur, e, meta,
              "state_code = %s, state = %s, ended_at = %s, output = %s, retry_at = NULL",
              (kill.value, kill.name, e.at, text(e.output)))  # fmt: skip


# -- rejections, definitions, workers -----------------------------------------------------------


def _command_rejected(cur: Cur, e: CommandRejected, meta: Meta) -> None:
    row = {
        "command_id": e.command_id,
        "instance_id": e.instance_id,
        "command_type": e.command_type,
        "reason": e.reason.name,
        "message": text(e.message),
        "at": e.at,
    }
    _insert(cur, "command_rejections", row, ("command_id",), update=False)  # first one wins
    _set_instance(cur, e, meta)  # no-op for an instance that does not exist


def _definition_registered(cur: Cur, e: WorkflowDefinitionRegistered, meta: Meta) -> None:
    row = {
        "code": e.workflow.code,
        "version": e.workflow.version,
        "description": text(e.workflow.description),
        "definition": Jsonb(jsonable(workflow_to_dict(e.workflow))),
        "content_hash": e.content_hash,
        "registered_at": e.at,
        "registered_by": text(e.registered_by),
    }
    # A version is immutable: the first registration of (code, version) in the log wins.
    _insert(cur, "workflow_definitions", row, ("code", "version"), update=False)


def _worker_heartbeat(cur: Cur, h: WorkerHeartbeat, meta: Meta) -> None:
    row = {f: getattr(h, f) for f in _WORKER_FIELDS}
    row["last_heartbeat_at"] = h.at
    _insert(cur, "workers", row, ("worker_id",), update=True,
            where=" WHERE workers.last_heartbeat_at <= EXCLUDED.last_heartbeat_at")  # fmt: skip


_WORKER_FIELDS = (
    "worker_id", "worker_group", "host", "pid", "slots_total", "slots_free", "cpu_percent",
    "memory_percent", "load_average", "version", "started_at",
)  # fmt: skip


HANDLERS: Final[Mapping[type, Handler]] = {
    WorkflowStarted: _workflow_started,
    TaskDispatched: _task_dispatched,
    TaskStarted: _task_started,
    TaskSucceeded: _task_succeeded,
    TaskFailed: _task_failed,
    TaskFailedOver: _task_failed_over,
    TaskKillRequested: _task_kill_requested,
    TaskKilled: _task_killed,
    WorkflowPauseRequested: _workflow_to(WorkflowState.READY_PAUSE, ends=False),
    WorkflowStopRequested: _workflow_to(WorkflowState.READY_STOP, ends=False),
    WorkflowResumed: _workflow_resumed,
    WorkflowPaused: _workflow_to(WorkflowState.PAUSE, ends=True),
    WorkflowStopped: _workflow_to(WorkflowState.STOP, ends=True),
    WorkflowSucceeded: _workflow_to(WorkflowState.SUCCESS, ends=True),
    WorkflowFailed: _workflow_failed,
    CommandRejected: _command_rejected,
    WorkflowDefinitionRegistered: _definition_registered,
    WorkerHeartbeat: _worker_heartbeat,
    PartitionTakenOver: _partition_taken_over,
    WorkerLost: _archived_only,
}

# Heartbeats are too chatty for the audit archive (and compacted anyway).
NOT_ARCHIVED: Final[frozenset[type]] = frozenset({WorkerHeartbeat})


class Fence:
    """The owner epoch of each events partition as far as the log has been projected."""

    def __init__(self, cur: Cur) -> None:
        cur.execute("SELECT partition, epoch FROM partition_owners")
        self._epochs: dict[int, int] = {int(p): int(e) for p, e in cur.fetchall()}

    def fenced(self, record: Any, meta: Meta) -> bool:
        if meta.topic != "events":
            return False
        if isinstance(record, PartitionTakenOver):
            self._epochs[meta.partition] = max(self._epochs.get(meta.partition, 0), record.epoch)
            return False
        epoch = getattr(record, "epoch", None)
        return epoch is not None and epoch < self._epochs.get(meta.partition, 0)


def project(cur: Cur, record: Any, meta: Meta, fence: Fence | None = None) -> None:
    """Archive `record` (unless a heartbeat) and apply its handler; an event fenced by a
    newer owner epoch is archived as fenced and not applied."""
    fenced = fence is not None and fence.fenced(record, meta)
    if type(record) not in NOT_ARCHIVED:
        archive(cur, record, meta, fenced)
    if not fenced:
        HANDLERS[type(record)](cur, record, meta)
