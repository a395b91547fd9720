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

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.chaos.log_invariants import (
    check_applied_once,
    check_attempts,
    check_runs,
    check_terminal,
)
from infra.chaos.records import (
    MAX_EVIDENCE,
    ArchiveRow,
    BadInput,
    BadInputOutcome,
    DeadLetter,
    EventLog,
    LogRecord,
    Run,
    Violation,
    evidence_of,
)
from infra.chaos.store_invariants import check_archive, check_read_model
from streams.core.events import (
    CommandRejected,
)


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
                    evidence_of(refusals),
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
