"""Time travel: an instance as it was at a point of its history, folded from the log itself.

The read models show the latest state; an auditor asks what the state was at 02:13, or just
after offset 4,812. The answer comes from the events topic, not from PostgreSQL: the
instance's partition is read from its beginning up to the point, with the core's own rules
(`PartitionLog`: an event a fenced owner wrote is not a fact; `evolve`: what each event
does; `TASK_STATE_AFTER`: what it does to an attempt). Only the instance's records and the
partition's takeovers are decoded. A point is an offset of that partition (the last event
folded is at or before it) or a time (events whose `at` is at or before it; the log is in
append order, so the first event after the time ends the read).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.catalog import EVENTS
from schemas.serde import expect
from streams.core.enums import TaskState
from streams.core.errors import TideflowError
from streams.core.instance import InstanceState
from streams.core.partition import PartitionLog
from streams.core.transitions import TASK_STATE_AFTER
from streams.kafka.config import KafkaConfig
from streams.kafka.partitioning import partition_for
from streams.kafka.reader import partition_count, read_to_end


class InvalidPoint(TideflowError, ValueError):
    """A point in history that is neither an offset nor a time."""


@dataclass(frozen=True, slots=True)
class Point:
    """Where to stop: after the event at `offset`, or after the last event at or before `at`."""

    offset: int | None = None
    at: datetime | None = None

    @classmethod
    def parse(cls, text: str) -> Point:
        """An offset ("4812") or an ISO time ("2026-11-30T02:13:00", UTC unless it says)."""
        text = text.strip()
        try:
            return cls.of(int(text) if text.isdigit() else datetime.fromisoformat(text))
        except ValueError:
            raise InvalidPoint(
                f"expected an offset (a whole number) or an ISO time, found {text!r}"
            ) from None

    @classmethod
    def of(cls, value: int | datetime) -> Point:
        """The point of an offset, or of a time (UTC unless it says)."""
        if isinstance(value, datetime):
            return cls(at=value if value.tzinfo else value.replace(tzinfo=UTC))
        return cls(offset=value)

    def passed(self, offset: int, at: datetime) -> bool:
        """Whether an event at `offset`, written at `at`, lies after this point."""
        if self.offset is not None:
            return offset > self.offset
        return self.at is not None and at > self.at


def point_text(point: Point) -> str:
    return f"offset {point.offset}" if point.offset is not None else f"{_plain(point.at)}"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if hasattr(value, "name") and hasattr(value, "value"):  # an enum
        return value.name
    return value


def _attempts(events: list[tuple[int, Any]]) -> list[dict[str, Any]]:
    """Every attempt the folded events made, in order of its first event, in the state the
    core's table gives after its latest event (`TASK_STATE_AFTER`)."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for offset, e in events:
        state = TASK_STATE_AFTER.get(type(e))
        if state is None:
            continue
        row = rows.setdefault(
            (e.task_code, e.attempt),
            {"task_code": e.task_code, "attempt": e.attempt, "worker_id": "", "valid": True},
        )
        row.update(state=state.name, state_code=state.value, last_offset=offset)
        row["worker_id"] = getattr(e, "worker_id", "") or row["worker_id"]
        if state is TaskState.DISPATCH:
            row["dispatched_at"] = _plain(e.at)
        elif state is TaskState.RUNNING_EXECUTION:
            row["started_at"] = _plain(e.at)
        else:
            row["ended_at"] = _plain(e.at)
            row["exit_code"] = getattr(e, "exit_code", None)
    return list(rows.values())


def _event_row(offset: int, event: Any) -> dict[str, Any]:
    return {
        "offset": offset,
        "event_type": type(event).__name__,
        "at": _plain(event.at),
        "cause": getattr(event, "cause", ""),
    }


def instance_at(
    kafka: KafkaConfig, events_topic: str, instance_id: str, point: Point
) -> dict[str, Any] | None:
    """The instance as of `point`, with the attempts, the requests that were made and every
    event folded; None when it did not exist yet at that point (or never)."""
    partition = partition_for(instance_id, partition_count(kafka, events_topic))
    log = PartitionLog(partition)
    folded: list[tuple[int, Any]] = []
    fenced: list[int] = []
    takeovers = f"partition/{partition}"
    for msg in read_to_end(kafka, events_topic, [partition]):
        key = (msg.key() or b"").decode(errors="replace")
        if key != instance_id and key != takeovers:
            continue
        event = expect(msg.value(), EVENTS)
        offset = msg.offset() or 0
        if point.passed(offset, event.at):
            break
        if key == takeovers:
            log.fold(event)
        elif log.fold(event):
            folded.append((offset, event))
        else:
            fenced.append(offset)
    state: InstanceState = log.get(instance_id)
    if state.workflow is None or not folded:
        return None
    last_offset, last = folded[-1]
    return {
        "instance_id": instance_id,
        "as_of": {"partition": partition, "offset": last_offset, "at": _plain(last.at)},
        "workflow_code": state.workflow.code,
        "workflow_version": state.workflow.version,
        "state": _plain(state.state),
        "state_code": state.state.value if state.state is not None else None,
        "started_at": _plain(state.started_at),
        "ended_at": _plain(state.ended_at),
        "failure_reason": state.failure_reason,
        "params": dict(state.params),
        "dry_run": state.dry_run,
        "attempts": _attempts(folded),
        "requests": [
            {"event_type": type(e).__name__, "requested_by": e.requested_by, "at": _plain(e.at)}
            for _, e in folded
            if getattr(e, "requested_by", "")
        ],
        "events": [_event_row(o, e) for o, e in folded],
        "fenced_offsets": fenced,
    }
