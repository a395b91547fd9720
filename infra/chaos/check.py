"""The chaos suite's invariant checker: pure functions over the event log and the read models.

Input is data only (records read from the events topic, rows read from PostgreSQL, the
workers' run journal, the bad inputs sent and the dead letters found), so every rule is unit
tested on hand-made logs (tests/chaos/test_check.py). The log is folded exactly as a master
folds it (`streams.core.partition.PartitionLog`): an instance event whose epoch is below
the latest `PartitionTakenOver` already seen in its partition is fenced, i.e. not a fact, and
every rule below looks at unfenced facts only.

Invariants (each violation names the rule, the instance or partition, and event evidence):

* ``terminal``: every started instance reaches SUCCESS, FAILURE, STOP or PAUSE.
* ``lost-attempt``: every dispatched attempt ends in TaskSucceeded, TaskFailed, TaskKilled
  or TaskFailedOver.
* ``unexplained-attempt``: attempt n > 1 of a task follows attempt n-1's end, and that end
  explains it: TaskFailed with `retry_at`, TaskFailedOver, or a WorkflowResumed after a
  final failure or kill. Attempt numbers have no gaps.
* ``started-twice``: TaskStarted at most once per attempt.
* ``applied-twice``: no two identical task-level facts (instance, task, attempt, event
  type) and no second WorkflowStarted; no task fact after the instance ended (until a
  WorkflowResumed); the event archive holds each (partition, offset) once, with the same
  event as the log, and as many rows per partition as the log has decodable records.
* ``read-model``: the instance row, each task's valid attempt and every attempt row in
  PostgreSQL equal a fresh fold of the instance's unfenced events.
* ``ran-twice`` / ``ran-undispatched``: from the run journal the shell tasks append to, an
  attempt ran at most once on the workers, and only if the log dispatched it.
* ``bad-input``: each bad input ended in the dead-letter topic or as a CommandRejected,
  and no other record was dead-lettered.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
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
    WorkflowResumed,
    WorkflowStarted,
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


def _ts(at: datetime | None) -> str:
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
            f"epoch={e.epoch} at={_ts(e.at)}"
        )
    if isinstance(e, WorkerLost):
        return f"{where} {name} worker={e.worker_id} epoch={e.epoch} at={_ts(e.at)}"
    parts = [f"{where} {name} {e.instance_id}"]
    if isinstance(e, TASK_EVENTS):
        parts.append(f"{e.task_code}#{e.attempt}")
    if isinstance(e, TaskDispatched | TaskStarted | TaskFailedOver | TaskKillRequested):
        parts.append(f"worker={e.worker_id}")
    if isinstance(e, TaskFailed):
        parts.append(f"retry_at={_ts(e.retry_at)}")
    if isinstance(e, CommandRejected):
        parts.append(f"{e.command_type} {e.reason.name} command={e.command_id}")
    parts.append(f"epoch={e.epoch} at={_ts(e.at)}")
    cause = getattr(e, "cause", "")
    if cause:
        parts.append(f"cause={cause}")
    return " ".join(parts)


def _evidence(records: Iterable[LogRecord]) -> tuple[str, ...]:
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


# -- invariants ---------------------------------------------------------------------------------


def check_terminal(log: EventLog, started: Iterable[str]) -> list[Violation]:
    out = []
    for iid in started:
        history = log.by_instance.get(iid, [])
        state = log.state(iid)
        if not state.exists:
            fenced = [r for r in log.fenced if getattr(r.event, "instance_id", None) == iid]
            out.append(
                Violation(
                    "terminal",
                    iid,
                    "started, but no WorkflowStarted in the log",
                    _evidence([*history, *fenced]),
                )
            )
            continue
        assert state.state is not None
        if not state.state.finished:
            active = ", ".join(f"{t.code}#{t.attempt} {t.state.name}" for t in state.active())
            message = f"not terminal: {state.state.name}" + (
                f" (active: {active})" if active else ""
            )
            out.append(Violation("terminal", iid, message, _evidence(history[-MAX_EVIDENCE:])))
    return out


def _explains(prev: LogRecord, dispatch: LogRecord, history: Sequence[LogRecord]) -> bool:
    """Whether attempt n-1's end `prev` explains dispatching attempt n at `dispatch`."""
    e = prev.event
    if isinstance(e, TaskFailedOver):
        return True
    if isinstance(e, TaskFailed) and e.retry_at is not None:
        return True
    if isinstance(e, TaskFailed | TaskKilled):  # a resume runs failed and killed tasks again
        return any(
            isinstance(r.event, WorkflowResumed) and prev.offset < r.offset < dispatch.offset
            for r in history
        )
    return False


def check_attempts(log: EventLog) -> list[Violation]:
    """Lost attempts, attempts nothing explains, attempts started or ended twice."""
    out: list[Violation] = []
    tasks: dict[tuple[str, str], dict[int, Attempt]] = defaultdict(dict)
    for (iid, code, n), a in log.attempts.items():
        tasks[(iid, code)][n] = a
    for (iid, code), attempts in sorted(tasks.items()):
        subject = f"{iid} {code}"
        history = log.by_instance.get(iid, [])
        for n, a in sorted(attempts.items()):
            who = f"{subject}#{n}"
            if not a.dispatched:
                out.append(
                    Violation(
                        "unexplained-attempt",
                        who,
                        "facts about an attempt that was never dispatched",
                        _evidence(a.all()),
                    )
                )
                continue
            if len(a.dispatched) > 1:
                out.append(
                    Violation("applied-twice", who, "dispatched twice", _evidence(a.dispatched))
                )
            if len(a.started) > 1:
                out.append(
                    Violation(
                        "started-twice", who, "TaskStarted more than once", _evidence(a.started)
                    )
                )
            if not a.ends:
                out.append(
                    Violation(
                        "lost-attempt",
                        who,
                        "dispatched but never succeeded, failed, was killed or failed over",
                        _evidence(a.all()),
                    )
                )
            elif len({type(r.event) for r in a.ends}) > 1:  # identical ends: check_applied_once
                ends = "/".join(sorted({type(r.event).__name__ for r in a.ends}))
                out.append(
                    Violation("applied-twice", who, f"ended twice ({ends})", _evidence(a.ends))
                )
            if n == 1:
                continue
            prev = attempts.get(n - 1)
            if prev is None or not prev.dispatched:
                out.append(
                    Violation(
                        "unexplained-attempt",
                        who,
                        f"attempt {n} dispatched, attempt {n - 1} never was",
                        _evidence(a.dispatched),
                    )
                )
                continue
            dispatch = a.dispatched[0]
            ended_before = [r for r in prev.ends if r.offset < dispatch.offset]
            if not ended_before:
                out.append(
                    Violation(
                        "unexplained-attempt",
                        who,
                        f"dispatched while attempt {n - 1} was still active",
                        _evidence([*prev.all(), dispatch]),
                    )
                )
            elif not _explains(ended_before[0], dispatch, history):
                out.append(
                    Violation(
                        "unexplained-attempt",
                        who,
                        f"attempt {n - 1} ended with no retry, failover or resume "
                        "to explain another attempt",
                        _evidence([*prev.all(), dispatch]),
                    )
                )
    return out


def check_applied_once(log: EventLog) -> list[Violation]:
    """No fact twice: identical task-level facts, a second start, task facts after the end."""
    out: list[Violation] = []
    seen: dict[tuple[str, str, int, str], list[LogRecord]] = defaultdict(list)
    for r in log.events_of(TASK_EVENTS):
        e = r.event
        seen[(e.instance_id, e.task_code, e.attempt, type(e).__name__)].append(r)
    for (iid, code, n, name), found in sorted(seen.items()):
        if len(found) > 1 and name not in ("TaskDispatched", "TaskStarted"):  # reported above
            out.append(
                Violation(
                    "applied-twice",
                    f"{iid} {code}#{n}",
                    f"{name} appears {len(found)} times",
                    _evidence(found),
                )
            )
    for iid, history in sorted(log.by_instance.items()):
        starts = [r for r in history if isinstance(r.event, WorkflowStarted)]
        if len(starts) > 1:
            out.append(
                Violation("applied-twice", iid, "WorkflowStarted more than once", _evidence(starts))
            )
        ended: LogRecord | None = None
        for r in history:
            e = r.event
            if isinstance(e, WorkflowResumed):
                ended = None
            elif ended is not None and not isinstance(e, CommandRejected):
                out.append(
                    Violation(
                        "applied-twice",
                        iid,
                        f"{type(e).__name__} after the instance ended",
                        _evidence([ended, r]),
                    )
                )
                break
            elif isinstance(e, WORKFLOW_ENDS):
                ended = r
    return out


def check_read_model(
    log: EventLog, instances: Mapping[str, Mapping[str, Any] | None]
) -> list[Violation]:
    """PostgreSQL's rows (`projections.queries.get_instance` per instance) against the fold."""
    out: list[Violation] = []
    for iid, row in sorted(instances.items()):
        state = log.state(iid)
        history = log.by_instance.get(iid, [])
        if row is None:
            if state.exists:
                out.append(
                    Violation(
                        "read-model",
                        iid,
                        "in the log, missing in PostgreSQL",
                        _evidence(history[:3]),
                    )
                )
            continue
        if not state.exists:
            out.append(Violation("read-model", iid, "in PostgreSQL, not in the log"))
            continue
        assert state.state is not None
        problems: list[str] = []
        if row.get("state_code") != state.state.value:
            problems.append(
                f"instance: PostgreSQL {row.get('state')}({row.get('state_code')}), "
                f"log {state.state.name}({state.state.value})"
            )
        valid = {t["task_code"]: t for t in row.get("tasks", [])}
        for code in sorted(set(valid) | set(state.tasks)):
            run, db = state.tasks.get(code), valid.get(code)
            if run is None or db is None:
                problems.append(f"task {code}: only in {'the log' if db is None else 'PostgreSQL'}")
                continue
            if db["attempt"] != run.attempt or db["state_code"] != run.state.value:
                problems.append(
                    f"task {code}: PostgreSQL #{db['attempt']} {db['state']}, "
                    f"log #{run.attempt} {run.state.name}"
                )
        rows = {(t["task_code"], t["attempt"]): t for t in row.get("attempts", [])}
        logged = {(c, n): a for (i, c, n), a in log.attempts.items() if i == iid and a.dispatched}
        for key in sorted(set(rows) | set(logged)):
            db, a = rows.get(key), logged.get(key)
            code, n = key
            if a is None:
                problems.append(f"attempt {code}#{n}: a row in PostgreSQL, no dispatch in the log")
            elif db is None:
                problems.append(f"attempt {code}#{n}: dispatched in the log, no row in PostgreSQL")
            elif a.state is not None and db["state_code"] != a.state.value:
                problems.append(f"attempt {code}#{n}: PostgreSQL {db['state']}, log {a.state.name}")
        if problems:
            fenced = [r for r in log.fenced if getattr(r.event, "instance_id", None) == iid]
            out.append(
                Violation(
                    "read-model", iid, "; ".join(problems), _evidence([*history[-6:], *fenced])
                )
            )
    return out


def check_archive(log: EventLog, rows: Sequence[ArchiveRow]) -> list[Violation]:
    """The event archive against the log, for offsets below the end of what was read."""
    out: list[Violation] = []
    ends = log.ends()
    rows = [r for r in rows if r.offset < ends.get(r.partition, 0)]
    by_pos: dict[tuple[int, int], list[ArchiveRow]] = defaultdict(list)
    for row in rows:
        by_pos[(row.partition, row.offset)].append(row)
    for (p, o), found in sorted(by_pos.items()):
        if len(found) > 1:
            out.append(
                Violation("applied-twice", f"events[{p}]@{o}", f"archived {len(found)} times")
            )
    decodable = {(r.partition, r.offset): r for r in log.records if r.event is not None}
    missing = [r for pos, r in sorted(decodable.items()) if pos not in by_pos]
    if missing:
        out.append(
            Violation(
                "applied-twice",
                "event_archive",
                f"{len(missing)} events of the log not archived (lost rows)",
                _evidence(missing),
            )
        )
    extra = sorted(pos for pos in by_pos if pos not in decodable)
    if extra:
        out.append(
            Violation(
                "applied-twice",
                "event_archive",
                f"{len(extra)} archived rows at positions the log has no event at",
                tuple(f"events[{p}]@{o}" for p, o in extra[:MAX_EVIDENCE]),
            )
        )
    differ = []
    for pos, found in sorted(by_pos.items()):
        r = decodable.get(pos)
        if r is None:
            continue
        row = found[0]
        epoch = getattr(r.event, "epoch", None)
        if (row.event_type, row.instance_id, row.epoch) != (
            type(r.event).__name__,
            getattr(r.event, "instance_id", None),
            epoch,
        ):
            differ.append(
                f"{describe(r)} archived as {row.event_type} {row.instance_id} epoch={row.epoch}"
            )
    if differ:
        out.append(
            Violation(
                "applied-twice",
                "event_archive",
                f"{len(differ)} archived rows differ from the log",
                tuple(differ[:MAX_EVIDENCE]),
            )
        )
    log_counts = Counter(p for p, _ in decodable)
    archive_counts = Counter(row.partition for row in rows)
    for p in sorted(set(log_counts) | set(archive_counts)):
        if log_counts[p] != archive_counts[p]:
            out.append(
                Violation(
                    "applied-twice",
                    f"events[{p}]",
                    f"archive holds {archive_counts[p]} rows, the log "
                    f"{log_counts[p]} decodable events",
                )
            )
    return out


def check_runs(log: EventLog, runs: Iterable[Run]) -> list[Violation]:
    """Executions on the workers (run journal) against the dispatches in the log."""
    out: list[Violation] = []
    counts: dict[AttemptKey, list[Run]] = defaultdict(list)
    for run in runs:
        counts[(run.instance_id, run.task_code, run.attempt)].append(run)
    for key, found in sorted(counts.items()):
        iid, code, n = key
        a = log.attempts.get(key)
        if a is None or not a.dispatched:
            fenced = [
                r
                for r in log.fenced
                if isinstance(r.event, TASK_EVENTS)
                and (r.event.instance_id, r.event.task_code, r.event.attempt) == key
            ]
            out.append(
                Violation(
                    "ran-undispatched",
                    f"{iid} {code}#{n}",
                    "ran on a worker, but the log never dispatched it"
                    + (" (only a fenced dispatch)" if fenced else ""),
                    _evidence(fenced),
                )
            )
        elif any(r.worker_id and r.worker_id != a.dispatched[0].event.worker_id for r in found):
            where = ", ".join(sorted({r.worker_id for r in found}))
            out.append(
                Violation(
                    "ran-undispatched",
                    f"{iid} {code}#{n}",
                    f"ran on {where}, the log dispatched it elsewhere",
                    _evidence(a.all()),
                )
            )
        if len(found) > 1:
            pids = ", ".join(f"{r.worker_id}/{r.pid}" for r in found)
            out.append(
                Violation(
                    "ran-twice",
                    f"{iid} {code}#{n}",
                    f"the same attempt ran {len(found)} times (shell pids {pids})",
                    _evidence(a.all() if a else []),
                )
            )
    return out


def bad_input_outcomes(
    log: EventLog, sent: Sequence[BadInput], dead: Sequence[DeadLetter]
) -> tuple[list[BadInputOutcome], list[Violation]]:
    """Where each bad input ended; violations for one that ended nowhere (or not as
    expected) and for every dead letter that is not one of ours."""
    out: list[Violation] = []
    outcomes: list[BadInputOutcome] = []
    dead_by_value: dict[bytes | None, list[DeadLetter]] = defaultdict(list)
    for d in dead:
        dead_by_value[d.value].append(d)
    rejected: dict[str, list[LogRecord]] = defaultdict(list)
    for r in log.events_of(CommandRejected):
        rejected[r.event.command_id].append(r)
    ours: set[bytes] = set()
    for item in sent:
        if item.dead_letter:
            ours.add(item.value)
            found = [d for d in dead_by_value.get(item.value, []) if d.source_topic == item.topic]
            ended = "dead-letter" if found else "nowhere"
            outcomes.append(BadInputOutcome(item, ended, len(found)))
            if not found:
                out.append(
                    Violation(
                        "bad-input",
                        f"{item.kind} on {item.topic}",
                        "sent, never dead-lettered",
                        (f"value {item.value[:24].hex()}",),
                    )
                )
            continue
        ours.add(item.value)  # a command refused as undecodable would be ours too
        refusals = rejected.get(item.command_id, [])
        reasons = sorted({r.event.reason.name for r in refusals})
        ended = f"rejected {'/'.join(reasons)}" if refusals else "nowhere"
        outcomes.append(BadInputOutcome(item, ended, len(refusals)))
        if not refusals:
            out.append(
                Violation(
                    "bad-input", f"{item.kind} {item.command_id}", "sent, no CommandRejected for it"
                )
            )
        elif item.reasons and not set(reasons) <= item.reasons:
            out.append(
                Violation(
                    "bad-input",
                    f"{item.kind} {item.command_id}",
                    f"rejected as {'/'.join(reasons)}, expected {'/'.join(sorted(item.reasons))}",
                    _evidence(refusals),
                )
            )
    strangers = [d for d in dead if d.value not in ours]
    if strangers:
        out.append(
            Violation(
                "bad-input",
                "dead-letter topic",
                f"{len(strangers)} records dead-lettered that the chaos load did "
                "not send as bad input",
                tuple(
                    f"{d.source_topic}[{d.source_partition}]@{d.source_offset}: {d.reason}"
                    for d in strangers[:MAX_EVIDENCE]
                ),
            )
        )
    return outcomes, out


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the checker looks at, gathered after the run."""

    records: Sequence[LogRecord]
    started: Sequence[str]
    instances: Mapping[str, Mapping[str, Any] | None]  # read model per started instance
    archive: Sequence[ArchiveRow] | None = None
    runs: Sequence[Run] = ()
    bad_inputs: Sequence[BadInput] = ()
    dead_letters: Sequence[DeadLetter] = ()


@dataclass
class CheckResult:
    log: EventLog
    violations: list[Violation]
    bad_inputs: list[BadInputOutcome]


def check(evidence: Evidence) -> CheckResult:
    log = EventLog(evidence.records)
    violations = [
        *check_terminal(log, evidence.started),
        *check_attempts(log),
        *check_applied_once(log),
        *check_read_model(log, evidence.instances),
        *(check_archive(log, evidence.archive) if evidence.archive is not None else []),
        *check_runs(log, evidence.runs),
    ]
    outcomes, bad = bad_input_outcomes(log, evidence.bad_inputs, evidence.dead_letters)
    violations += bad
    return CheckResult(log, violations, outcomes)
