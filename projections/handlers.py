"""One handler per record type: `(changes, record, meta) -> None`, idempotent upserts into the
read models (sql/001_read_models.sql). `project` archives the record, then runs its handler.
Handlers only state their writes; `Changes` (changes.py) coalesces them per row and sends
them when the batch is flushed.

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

from psycopg.types.json import Jsonb

from projections.backfill_handlers import BACKFILL_HANDLERS
from projections.changes import Changes, Cur
from projections.schedule_handlers import SCHEDULE_HANDLERS
from schemas.mapping import PlainForm, to_plain_converter
from streams.core.definition import workflow_to_dict
from streams.core.enums import TaskState, WorkflowState
from streams.core.events import (
    CommandRejected,
    PartitionTakenOver,
    TaskDelayed,
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskKilled,
    TaskKillRequested,
    TasksRerun,
    TaskStarted,
    TaskSucceeded,
    TaskSuccessForced,
    TaskTimedOut,
    WorkerLost,
    WorkflowDefinitionRegistered,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowPauseRequested,
    WorkflowRerun,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowStopped,
    WorkflowStopRequested,
    WorkflowSucceeded,
    WorkflowTimedOut,
)
from streams.core.ids import task_instance_id
from streams.core.partition import is_fenced
from streams.core.transitions import TASK_STATE_AFTER, WORKFLOW_STATE_AFTER
from streams.core.worker_messages import WorkerHeartbeat


@dataclass(frozen=True, slots=True)
class Meta:
    """Where a record was read. `topic` is the name without the deployment's prefix."""

    topic: str
    partition: int
    offset: int
    key: str | None


Handler = Callable[[Changes, Any, Meta], None]


def text(value: str | None) -> str | None:
    """PostgreSQL text and jsonb refuse NUL characters (task output may hold them)."""
    return None if value is None else value.replace("\x00", "\ufffd")


def _key(value: object) -> str | None:
    """A map key as the archive writes it: a string, without NUL (as `text`)."""
    return text(str(value))


# The archive's JSON form of a record is its Avro converter's (`schemas.mapping`, built once
# per class from its annotations) with ISO times and NUL-free text: 3.1 us per event (best of
# 25) on the 23,365 events of tests/projections/bench_apply_batch.py's burst, against 4.1 us
# for the walk by value it replaced. msgspec.to_builtins takes 0.95 us but writes enums by
# value and UTC times with "Z", with no option for names: the stored payloads would change.
_ARCHIVE_FORM: Final = PlainForm(time=datetime.isoformat, text=text, key=_key)
_RECORDS: dict[type, Callable[[Any], Any]] = {}


def jsonable(value: Any) -> Any:
    """A record, or a plain value (mapping, list), as plain JSON values: enum names, ISO
    datetimes, lists for tuples, text (map keys too) without NUL."""
    kind = type(value)
    if kind is str:
        return text(value)
    if value is None or kind is int or kind is bool or kind is float:
        return value
    convert = _RECORDS.get(kind)
    if convert is None and dataclasses.is_dataclass(kind):
        convert = _RECORDS[kind] = to_plain_converter(kind, _ARCHIVE_FORM)
    if convert is not None:
        return convert(value)
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {_key(k): jsonable(v) for k, v in value.items()}
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


def _insert(w: Changes, table: str, row: dict[str, Any], key: tuple[str, ...], **kw: Any) -> None:
    """A write to a table that is not coalesced (definitions, rejections, workers, owners)."""
    w.execute(_upsert(table, row, key, **kw), row)


def archive(w: Changes, record: Any, meta: Meta, fenced: bool = False) -> None:
    row = {
        "topic": meta.topic,
        "partition": meta.partition,
        "offset": meta.offset,
        "key": text(meta.key),
        "event_type": type(record).__name__,
        # A fire names the instance it started, but sits on the schedules topic: an instance's
        # history is its events in (partition, offset) order, which a fire is not part of.
        "instance_id": getattr(record, "instance_id", None) if meta.topic != "schedules" else None,
        "epoch": getattr(record, "epoch", None),
        "at": record.at,
        "payload": jsonable(record),
        "fenced": fenced,
    }
    w.archive(row)


# -- workflow instances -------------------------------------------------------------------------


def _set_instance(w: Changes, e: Any, meta: Meta, **values: Any) -> None:
    """Record that `e` was applied to its instance (updated_at, last_offset), plus `values`;
    nothing when the instance has no row."""
    values.update(updated_at=e.at, last_offset=meta.offset)
    w.update("workflow_instances", e.instance_id, values)


def _state(state: TaskState | WorkflowState) -> dict[str, Any]:
    """A row's state columns: DolphinScheduler's code and its name."""
    return {"state_code": state.value, "state": state.name}


def _instance_state(e: Any) -> dict[str, Any]:
    """The state columns of the instance row after `e` (the core's table says which)."""
    return _state(WORKFLOW_STATE_AFTER[type(e)])


def _attempt_state(e: Any) -> dict[str, Any]:
    """The state columns of the attempt row after `e` (the core's table says which)."""
    return _state(TASK_STATE_AFTER[type(e)])


def _workflow_started(w: Changes, e: WorkflowStarted, meta: Meta) -> None:
    row = {
        "instance_id": e.instance_id,
        "workflow_code": e.workflow.code,
        "workflow_version": e.workflow.version,
        **_instance_state(e),
        "started_at": e.at,
        "ended_at": None,
        "updated_at": e.at,
        "failure_reason": None,
        "requested_by": text(e.requested_by),
        "params": jsonable(e.params),
        "last_offset": meta.offset,
        "dry_run": e.dry_run,
        "schedule_time": e.schedule_time,
        "priority_code": e.priority.value,
        "priority": e.priority.name,
    }
    w.upsert("workflow_instances", row)


def _workflow_to(w: Changes, e: Any, meta: Meta) -> None:
    """A workflow-level transition: state, and ended_at = `at` when it ends (else NULL)."""
    ends = WORKFLOW_STATE_AFTER[type(e)].finished
    _set_instance(w, e, meta, **_instance_state(e), ended_at=e.at if ends else None)


def _workflow_failed(w: Changes, e: WorkflowFailed, meta: Meta) -> None:
    _set_instance(w, e, meta, **_instance_state(e), ended_at=e.at,
                  failure_reason=text(e.reason))  # fmt: skip


def _workflow_resumed(w: Changes, e: WorkflowResumed, meta: Meta) -> None:
    # Attempt rows keep the outcome they had (FAILURE, KILL): an attempt is history. The task
    # runs again as a new attempt, whose dispatch makes the old row invalid.
    _set_instance(w, e, meta, **_instance_state(e), ended_at=None, failure_reason=None)


def _workflow_rerun(w: Changes, e: WorkflowRerun, meta: Meta) -> None:
    # REPEAT_RUNNING: every earlier attempt row stays, as DolphinScheduler's flag=NO; the
    # start time is reset. The new attempts' dispatches add valid rows.
    w.invalidate_attempts(e.instance_id)
    _set_instance(w, e, meta, **_instance_state(e), started_at=e.at, ended_at=None,
                  failure_reason=None)  # fmt: skip


def _tasks_rerun(w: Changes, e: TasksRerun, meta: Meta) -> None:
    # EXECUTE_TASK: every attempt row of the chosen tasks becomes not valid (no attempt 0
    # exists); their new attempts' dispatches add valid rows. Other tasks' rows are kept.
    for code in e.task_codes:
        w.make_current(e.instance_id, code, 0)
    _set_instance(w, e, meta, **_instance_state(e), ended_at=None, failure_reason=None)


# -- task instances (one row per attempt) -------------------------------------------------------


def _task_dispatched(w: Changes, e: TaskDispatched, meta: Meta) -> None:
    # Earlier attempts become invalid, so at most one row per task is valid at any time.
    w.make_current(e.instance_id, e.task_code, e.attempt)
    row = {
        "task_instance_id": task_instance_id(e.instance_id, e.task_code, e.attempt),
        "instance_id": e.instance_id,
        "task_code": e.task_code,
        "attempt": e.attempt,
        **_attempt_state(e),
        "worker_id": e.worker_id,
        "worker_group": e.worker_group,
        "dispatched_at": e.at,
        **dict.fromkeys(("started_at", "ended_at", "exit_code", "output", "reason", "retry_at")),
        "valid": True,
    }
    w.upsert("task_instances", row)
    _set_instance(w, e, meta)


def _task_delayed(w: Changes, e: TaskDelayed, meta: Meta) -> None:
    # The attempt's row exists from the delay on (DolphinScheduler's DELAY_EXECUTION row);
    # its dispatch overwrites it. `retry_at` says when the delay ends.
    w.make_current(e.instance_id, e.task_code, e.attempt)
    row = {
        "task_instance_id": task_instance_id(e.instance_id, e.task_code, e.attempt),
        "instance_id": e.instance_id,
        "task_code": e.task_code,
        "attempt": e.attempt,
        **_attempt_state(e),
        **dict.fromkeys(("worker_id", "worker_group", "dispatched_at", "started_at")),
        **dict.fromkeys(("ended_at", "exit_code", "output", "reason")),
        "retry_at": e.until,
        "valid": True,
    }
    w.upsert("task_instances", row)
    _set_instance(w, e, meta)


def _set_task(w: Changes, e: Any, meta: Meta, **values: Any) -> None:
    """`values` on the attempt's row (nothing when it has none), then `_set_instance`."""
    w.update("task_instances", task_instance_id(e.instance_id, e.task_code, e.attempt), values)
    _set_instance(w, e, meta)


def _task_started(w: Changes, e: TaskStarted, meta: Meta) -> None:
    _set_task(w, e, meta, **_attempt_state(e), worker_id=e.worker_id, started_at=e.at)


def _task_succeeded(w: Changes, e: TaskSucceeded, meta: Meta) -> None:
    _set_task(w, e, meta, **_attempt_state(e), ended_at=e.at, exit_code=e.exit_code,
              output=text(e.output))  # fmt: skip


def _task_failed(w: Changes, e: TaskFailed, meta: Meta) -> None:
    _set_task(w, e, meta, **_attempt_state(e), ended_at=e.at, exit_code=e.exit_code,
              output=text(e.output), reason=text(e.reason), retry_at=e.retry_at)  # fmt: skip


def _task_failed_over(w: Changes, e: TaskFailedOver, meta: Meta) -> None:
    _set_task(w, e, meta, **_attempt_state(e), ended_at=e.at, reason=text(e.reason),
              retry_at=e.at)  # fmt: skip


def _archived_only(w: Changes, e: Any, meta: Meta) -> None:
    """Partition-level facts that live in the archive alone (lost workers)."""


def _partition_taken_over(w: Changes, e: PartitionTakenOver, meta: Meta) -> None:
    row = {
        "partition": meta.partition,
        "epoch": e.epoch,
        "owner": e.owner,
        "previous_owner": e.previous_owner,
        "taken_over_at": e.at,
    }
    _insert(w, "partition_owners", row, ("partition",), update=True,
            where=" WHERE partition_owners.epoch <= EXCLUDED.epoch")  # fmt: skip


def _warning(w: Changes, e: TaskTimedOut | WorkflowTimedOut, meta: Meta) -> None:
    _set_instance(w, e, meta)  # a warning for alerts (in the archive): no state changes


def _task_kill_requested(w: Changes, e: TaskKillRequested, meta: Meta) -> None:
    _set_instance(w, e, meta)  # no state change until the worker reports TaskKilled


def _task_killed(w: Changes, e: TaskKilled, meta: Meta) -> None:
    _set_task(w, e, meta, **_attempt_state(e), ended_at=e.at, output=text(e.output),
              retry_at=None)  # fmt: skip


def _task_success_forced(w: Changes, e: TaskSuccessForced, meta: Meta) -> None:
    # The attempt keeps its times, exit code and output: only its state (13) and its retry.
    _set_task(w, e, meta, **_attempt_state(e), retry_at=None)


# -- rejections, definitions, workers -----------------------------------------------------------


def _command_rejected(w: Changes, e: CommandRejected, meta: Meta) -> None:
    row = {
        "command_id": e.command_id,
        "instance_id": e.instance_id,
        "command_type": e.command_type,
        "reason": e.reason.name,
        "message": text(e.message),
        "at": e.at,
    }
    _insert(w, "command_rejections", row, ("command_id",), update=False)  # first one wins
    _set_instance(w, e, meta)  # no-op for an instance that does not exist


def _definition_registered(w: Changes, e: WorkflowDefinitionRegistered, meta: Meta) -> None:
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
    _insert(w, "workflow_definitions", row, ("code", "version"), update=False)


def _worker_heartbeat(w: Changes, h: WorkerHeartbeat, meta: Meta) -> None:
    row = {f: getattr(h, f) for f in _WORKER_FIELDS}
    row["last_heartbeat_at"] = h.at
    _insert(w, "workers", row, ("worker_id",), update=True,
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
    TaskSuccessForced: _task_success_forced,
    WorkflowPauseRequested: _workflow_to,
    WorkflowStopRequested: _workflow_to,
    WorkflowResumed: _workflow_resumed,
    WorkflowRerun: _workflow_rerun,
    TasksRerun: _tasks_rerun,
    WorkflowPaused: _workflow_to,
    WorkflowStopped: _workflow_to,
    WorkflowSucceeded: _workflow_to,
    WorkflowFailed: _workflow_failed,
    CommandRejected: _command_rejected,
    WorkflowDefinitionRegistered: _definition_registered,
    WorkerHeartbeat: _worker_heartbeat,
    PartitionTakenOver: _partition_taken_over,
    WorkerLost: _archived_only,
    **SCHEDULE_HANDLERS,  # the schedules topic (schedule_handlers.py)
    **BACKFILL_HANDLERS,  # its backfill facts (backfill_handlers.py)
    TaskTimedOut: _warning,
    WorkflowTimedOut: _warning,
    TaskDelayed: _task_delayed,
}

# Heartbeats are too chatty for the audit archive (and compacted anyway).
NOT_ARCHIVED: Final[frozenset[type]] = frozenset({WorkerHeartbeat})


class Fence:
    """The owner epoch of each events partition as far as the log has been projected; what
    it fences is the core's rule (`streams.core.partition.is_fenced`)."""

    def __init__(self, cur: Cur) -> None:
        cur.execute("SELECT partition, epoch FROM partition_owners")
        self._epochs: dict[int, int] = {int(p): int(e) for p, e in cur.fetchall()}

    def fenced(self, record: Any, meta: Meta) -> bool:
        if meta.topic != "events":
            return False
        if isinstance(record, PartitionTakenOver):
            self._epochs[meta.partition] = max(self._epochs.get(meta.partition, 0), record.epoch)
        return is_fenced(self._epochs.get(meta.partition, 0), record)


def project(w: Changes, record: Any, meta: Meta, fence: Fence | None = None) -> None:
    """Archive `record` (unless a heartbeat) and apply its handler; an event fenced by a
    newer owner epoch is archived as fenced and not applied. Sent at `w.flush()`."""
    fenced = fence is not None and fence.fenced(record, meta)
    if type(record) not in NOT_ARCHIVED:
        archive(w, record, meta, fenced)
    if not fenced:
        HANDLERS[type(record)](w, record, meta)
