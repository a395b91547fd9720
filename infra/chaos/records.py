"""What the chaos checker reads, as data: log records folded as a master folds them
(`EventLog`: an instance event below its partition's latest owner epoch is fenced, not a
fact), archive rows, the workers' run journal, the bad inputs sent and the dead letters found;
and `Violation`, what a broken invariant reports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.core import transitions
from streams.core.enums import TaskState
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
)
from streams.core.evolve import fold
from streams.core.instance import InstanceState
from streams.core.partition import PartitionLog

TASK_EVENTS = (
    TaskDispatched,
    TaskStarted,
    TaskSucceeded,
    TaskFailed,
    TaskFailedOver,
    TaskKillRequested,
    TaskKilled,
)


# The state an attempt row has after each event (what the projector writes, and evolve).
ATTEMPT_STATE: Mapping[type, TaskState] = transitions.TASK_STATE_AFTER


WORKFLOW_ENDS = transitions.WORKFLOW_ENDS


MAX_EVIDENCE = 12


AttemptKey = tuple[str, str, int]  # (instance id, task code, attempt)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record of the events topic: the decoded event, or None with the decode error."""

    partition: int
    offset: int
    event: Any  # None when undecodable
    key: str | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    subject: str
    message: str
    evidence: tuple[str, ...] = ()

    def render(self) -> str:
        lines = [f"[{self.invariant}] {self.subject}: {self.message}"]
        lines += [f"    {e}" for e in self.evidence]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ArchiveRow:
    partition: int
    offset: int
    event_type: str
    instance_id: str | None
    epoch: int | None


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of a shell attempt on a worker, from the run journal."""

    instance_id: str
    task_code: str
    attempt: int
    worker_id: str = ""
    pid: str = ""


@dataclass(frozen=True, slots=True)
class BadInput:
    """A record the chaos load sent on purpose, and where it must end: the dead-letter topic
    (`dead_letter`, matched on the original value bytes) or a CommandRejected with
    `command_id` and one of `reasons`."""

    kind: str
    topic: str
    value: bytes
    command_id: str = ""
    reasons: frozenset[str] = frozenset()

    @property
    def dead_letter(self) -> bool:
        return not self.command_id


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source_topic: str
    source_partition: str
    source_offset: str
    value: bytes | None
    reason: str


@dataclass(frozen=True, slots=True)
class BadInputOutcome:
    item: BadInput
    ended: str  # "dead-letter", "rejected <REASON>", or "nowhere"
    copies: int  # dead letters or rejections found for it


def timestamp(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%H:%M:%S.%f")[:-3]


def describe(r: LogRecord) -> str:
    """A log record as evidence: position, type, identity, epoch, time and cause."""
    e = r.event
    where = f"events[{r.partition}]@{r.offset}"
    if e is None:
        return f"{where} undecodable ({r.error})"
    name = type(e).__name__
    if isinstance(e, PartitionTakenOver):
        return (
            f"{where} {name} owner={e.owner} previous={e.previous_owner or '-'} "
            f"epoch={e.epoch} at={timestamp(e.at)}"
        )
    if isinstance(e, WorkerLost):
        return f"{where} {name} worker={e.worker_id} epoch={e.epoch} at={timestamp(e.at)}"
    parts = [f"{where} {name} {e.instance_id}"]
    if isinstance(e, TASK_EVENTS):
        parts.append(f"{e.task_code}#{e.attempt}")
    if isinstance(e, TaskDispatched | TaskStarted | TaskFailedOver | TaskKillRequested):
        parts.append(f"worker={e.worker_id}")
    if isinstance(e, TaskFailed):
        parts.append(f"retry_at={timestamp(e.retry_at)}")
    if isinstance(e, CommandRejected):
        parts.append(f"{e.command_type} {e.reason.name} command={e.command_id}")
    parts.append(f"epoch={e.epoch} at={timestamp(e.at)}")
    cause = getattr(e, "cause", "")
    if cause:
        parts.append(f"cause={cause}")
    return " ".join(parts)


def evidence_of(records: Iterable[LogRecord]) -> tuple[str, ...]:
    out = [describe(r) for r in records]
    if len(out) > MAX_EVIDENCE:
        out = [*out[: MAX_EVIDENCE - 1], f"... {len(out) - MAX_EVIDENCE + 1} more"]
    return tuple(out)


@dataclass
class Attempt:
    """Every unfenced fact of one attempt, in log order."""

    dispatched: list[LogRecord] = field(default_factory=list)
    started: list[LogRecord] = field(default_factory=list)
    ends: list[LogRecord] = field(default_factory=list)
    kills: list[LogRecord] = field(default_factory=list)

    def all(self) -> list[LogRecord]:
        return sorted(
            [*self.dispatched, *self.started, *self.ends, *self.kills], key=lambda r: r.offset
        )

    @property
    def state(self) -> TaskState | None:
        """The attempt's state after its last state-changing fact (what its row shows)."""
        changing = [r for r in self.all() if type(r.event) in ATTEMPT_STATE]
        return ATTEMPT_STATE[type(changing[-1].event)] if changing else None


class EventLog:
    """The events topic folded as a master folds it, split into facts and fenced events."""

    def __init__(self, records: Iterable[LogRecord]) -> None:
        self.records = sorted(records, key=lambda r: (r.partition, r.offset))
        self.partitions: dict[int, PartitionLog] = {}
        self.facts: list[LogRecord] = []  # unfenced instance events
        self.fenced: list[LogRecord] = []
        self.takeovers: list[LogRecord] = []
        self.lost_workers: list[LogRecord] = []
        self.undecodable: list[LogRecord] = []
        self.by_instance: dict[str, list[LogRecord]] = defaultdict(list)
        self.attempts: dict[AttemptKey, Attempt] = defaultdict(Attempt)
        for r in self.records:
            e = r.event
            if e is None:
                self.undecodable.append(r)
                continue
            part = self.partitions.setdefault(r.partition, PartitionLog(r.partition))
            counted = part.fold(e)
            if isinstance(e, PartitionTakenOver):
                self.takeovers.append(r)
            elif isinstance(e, WorkerLost):
                self.lost_workers.append(r)
            elif not counted:
                self.fenced.append(r)
            else:
                self.facts.append(r)
                self.by_instance[e.instance_id].append(r)
                if isinstance(e, TASK_EVENTS):
                    a = self.attempts[(e.instance_id, e.task_code, e.attempt)]
                    if isinstance(e, TaskDispatched):
                        a.dispatched.append(r)
                    elif isinstance(e, TaskStarted):
                        a.started.append(r)
                    elif isinstance(e, TaskKillRequested):
                        a.kills.append(r)
                    else:
                        a.ends.append(r)

    def ends(self) -> dict[int, int]:
        """Next offset per partition (the end of what was read)."""
        out: dict[int, int] = {}
        for r in self.records:
            out[r.partition] = max(out.get(r.partition, 0), r.offset + 1)
        return out

    def state(self, instance_id: str) -> InstanceState:
        """A fresh fold of the instance's unfenced events."""
        return fold((r.event for r in self.by_instance.get(instance_id, ())), instance_id)

    def events_of(self, type_: type | tuple[type, ...]) -> list[LogRecord]:
        return [r for r in self.facts if isinstance(r.event, type_)]
