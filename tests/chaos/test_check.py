"""The chaos checker on hand-made event logs: it must catch a lost attempt, a duplicate run
with no failover or retry to explain it, a non-terminal instance, a read model that differs
from the fold, and an event applied twice, while fenced events (an old owner writing after
a takeover) are not facts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from infra.chaos.check import Evidence, check
from infra.chaos.faults import FaultRecord, plan_faults
from infra.chaos.measure import failover_times, owner_pid
from infra.chaos.records import (
    ArchiveRow,
    BadInput,
    DeadLetter,
    EventLog,
    LogRecord,
    Run,
    Violation,
)
from streams.core.events import (
    CommandRejected,
    PartitionTakenOver,
    TaskFailedOver,
    WorkflowFailed,
    WorkflowResumed,
    WorkflowSucceeded,
)
from streams.core.rejections import Reason
from tests.core.builders import (
    IID,
    NOW,
    chain,
    dispatched,
    failed,
    later,
    running,
    started,
    succeeded,
)


def takeover(
    epoch: int, owner: str = "host-100-aaaaaa", seconds: float = 0.0
) -> PartitionTakenOver:
    return PartitionTakenOver(
        partition=0, owner=owner, epoch=epoch, events_offset=0, at=later(seconds)
    )


def records(*events: Any, partition: int = 0) -> list[LogRecord]:
    return [LogRecord(partition, offset, e) for offset, e in enumerate(events)]


def succeeded_wf() -> WorkflowSucceeded:
    return WorkflowSucceeded(instance_id=IID, cause="given", at=NOW)


def failed_wf() -> WorkflowFailed:
    return WorkflowFailed(instance_id=IID, reason="failed: a", cause="given", at=NOW)


def failed_over(code: str, attempt: int = 1) -> TaskFailedOver:
    return TaskFailedOver(
        instance_id=IID,
        task_code=code,
        attempt=attempt,
        worker_id="w1",
        reason="worker w1 lost",
        cause="worker-lost/w1",
        at=NOW,
    )


def read_model(log: EventLog, iid: str = IID) -> dict[str, Any]:
    """What a correct projector shows for `iid`: the fold's state, and one row per attempt
    in the state of its last fact (the shape of `projections.queries.get_instance`)."""
    state = log.state(iid)
    assert state.state is not None
    attempts = []
    for (i, code, n), a in sorted(log.attempts.items()):
        if i == iid and a.state is not None:
            attempts.append(
                {
                    "task_code": code,
                    "attempt": n,
                    "state_code": a.state.value,
                    "state": a.state.name,
                    "valid": state.tasks[code].attempt == n,
                }
            )
    return {
        "instance_id": iid,
        "state_code": state.state.value,
        "state": state.state.name,
        "tasks": [a for a in attempts if a["valid"]],
        "attempts": attempts,
    }


def archive_of(recs: list[LogRecord]) -> list[ArchiveRow]:
    return [
        ArchiveRow(
            r.partition,
            r.offset,
            type(r.event).__name__,
            getattr(r.event, "instance_id", None),
            getattr(r.event, "epoch", None),
        )
        for r in recs
        if r.event is not None
    ]


def run_check(
    recs: list[LogRecord],
    *,
    instances: dict[str, Any] | None = None,
    archive: list[ArchiveRow] | None = None,
    runs: tuple[Run, ...] = (),
    bad: tuple[BadInput, ...] = (),
    dead: tuple[DeadLetter, ...] = (),
    started_ids: tuple[str, ...] = (IID,),
) -> list[Violation]:
    log = EventLog(recs)
    if instances is None:
        instances = {
            iid: read_model(log, iid) if log.state(iid).exists else None for iid in started_ids
        }
    evidence = Evidence(
        recs,
        started_ids,
        instances,
        archive_of(recs) if archive is None else archive,
        runs,
        bad,
        dead,
    )
    return check(evidence).violations


def kinds(violations: list[Violation]) -> set[str]:
    return {v.invariant for v in violations}


# A clean history: a chain a -> b where b fails once and succeeds on its retry.
WF = chain("a", "b", retries=1)
CLEAN = (
    takeover(1),
    replace(started(WF), epoch=1),
    replace(dispatched("a"), epoch=1),
    replace(running("a"), epoch=1),
    replace(succeeded("a"), epoch=1),
    replace(dispatched("b"), epoch=1),
    replace(running("b"), epoch=1),
    replace(failed("b", retry_at=later(1)), epoch=1),
    replace(dispatched("b", 2), epoch=1),
    replace(running("b", 2), epoch=1),
    replace(succeeded("b", 2), epoch=1),
    replace(succeeded_wf(), epoch=1),
)
CLEAN_RUNS = (Run(IID, "a", 1, "w1"), Run(IID, "b", 1, "w1"), Run(IID, "b", 2, "w1"))


def test_a_clean_history_with_a_retry_passes() -> None:
    assert run_check(records(*CLEAN), runs=CLEAN_RUNS) == []


def test_a_dispatched_attempt_that_never_ends_is_lost() -> None:
    events = (started(WF), dispatched("a"), running("a"))

    found = run_check(records(*events))

    lost = [v for v in found if v.invariant == "lost-attempt"]
    assert [v.subject for v in lost] == [f"{IID} a#1"]
    assert any("TaskDispatched" in e for e in lost[0].evidence)


def test_a_second_attempt_after_a_final_failure_is_unexplained() -> None:
    events = (started(WF), dispatched("a"), failed("a"), dispatched("a", 2), succeeded("a", 2))

    found = run_check(records(*events), started_ids=())

    assert [v.subject for v in found if v.invariant == "unexplained-attempt"] == [f"{IID} a#2"]


def test_a_second_attempt_while_the_first_is_active_is_unexplained() -> None:
    events = (started(WF), dispatched("a"), running("a"), dispatched("a", 2), succeeded("a", 2))

    found = run_check(records(*events), started_ids=())

    assert "unexplained-attempt" in kinds(found)
    assert "lost-attempt" in kinds(found)  # attempt 1 never ended either


def test_failover_retry_and_resume_explain_more_attempts() -> None:
    events = (
        started(WF),
        dispatched("a"),
        failed_over("a"),  # failover -> attempt 2
        dispatched("a", 2),
        failed("a", 2, retry_at=later(1)),  # retry -> attempt 3
        dispatched("a", 3),
        failed("a", 3),
        failed_wf(),  # final failure, then a resume
        WorkflowResumed(instance_id=IID, cause="resume-1", at=later(5)),
        dispatched("a", 4),
        succeeded("a", 4),
        dispatched("b"),
        succeeded("b"),
        succeeded_wf(),
    )
    runs = (Run(IID, "a", 2, "w1"), Run(IID, "a", 3, "w1"), Run(IID, "a", 4, "w1"))

    assert run_check(records(*events), runs=runs) == []


def test_an_attempt_started_twice_is_caught() -> None:
    events = (*CLEAN[:4], replace(running("a"), epoch=1), *CLEAN[4:])

    found = run_check(records(*events))

    assert [v.subject for v in found if v.invariant == "started-twice"] == [f"{IID} a#1"]


def test_an_instance_that_never_ends_is_not_terminal() -> None:
    found = run_check(records(*CLEAN[:-1]))  # no WorkflowSucceeded

    assert kinds(found) == {"terminal"}
    assert "RUNNING_EXECUTION" in found[0].message


def test_a_started_instance_missing_from_the_log_is_not_terminal() -> None:
    found = run_check(records(*CLEAN), started_ids=(IID, "ghost"), instances={})

    assert [(v.invariant, v.subject) for v in found] == [("terminal", "ghost")]


def test_a_read_model_that_differs_from_the_fold_is_caught() -> None:
    recs = records(*CLEAN)
    row = read_model(EventLog(recs))
    wrong_instance = {**row, "state_code": 6, "state": "FAILURE"}
    wrong_attempt = {
        **row,
        "attempts": [
            {**a, "state_code": 8, "state": "NEED_FAULT_TOLERANCE"} if a["attempt"] == 1 else a
            for a in row["attempts"]
        ],
    }
    missing_attempt = {**row, "attempts": row["attempts"][:-1]}

    for bad in (wrong_instance, wrong_attempt, missing_attempt):
        found = run_check(recs, instances={IID: bad})
        assert kinds(found) == {"read-model"}, bad
    assert kinds(run_check(recs, instances={IID: None})) == {"read-model"}


def test_fenced_events_are_not_facts_and_a_projection_that_applied_them_is_caught() -> None:
    # The old owner (epoch 1) kept writing after the new one (epoch 2) took over.
    events = (
        takeover(1),
        replace(started(WF), epoch=1),
        replace(dispatched("a"), epoch=1),
        takeover(2, "host-200-bbbbbb"),
        replace(succeeded("a"), epoch=1),  # fenced: not a fact
        replace(dispatched("b"), epoch=1),  # fenced
        replace(failed_over("a"), epoch=2),
        replace(dispatched("a", 2), epoch=2),
        replace(succeeded("a", 2), epoch=2),
        replace(dispatched("b"), epoch=2),
        replace(succeeded("b"), epoch=2),
        replace(succeeded_wf(), epoch=2),
    )
    recs = records(*events)
    log = EventLog(recs)

    assert len(log.fenced) == 2
    assert run_check(recs) == []  # the duplicate dispatch of b#1 is fenced, not applied twice

    # A projector that applied the fenced TaskSucceeded shows a#1 SUCCESS: caught.
    row = read_model(log)
    applied_fenced = {
        **row,
        "attempts": [
            {**a, "state_code": 7, "state": "SUCCESS"}
            if a["attempt"] == 1 and a["task_code"] == "a"
            else a
            for a in row["attempts"]
        ],
    }
    found = run_check(recs, instances={IID: applied_fenced})
    assert kinds(found) == {"read-model"}
    assert any("epoch=1" in e for e in found[0].evidence)


def test_an_event_applied_twice_is_caught() -> None:
    duplicate = (*CLEAN[:5], replace(succeeded("a"), epoch=1), *CLEAN[5:])

    found = run_check(records(*duplicate))

    assert [(v.invariant, v.subject) for v in found] == [("applied-twice", f"{IID} a#1")]
    assert "TaskSucceeded appears 2 times" in found[0].message


def test_a_task_fact_after_the_instance_ended_is_caught() -> None:
    events = (*CLEAN, replace(dispatched("b", 3), epoch=1))

    assert "applied-twice" in kinds(run_check(records(*events)))


def test_the_archive_must_hold_each_event_once() -> None:
    recs = records(*CLEAN)
    archive = archive_of(recs)

    doubled = [*archive, archive[3]]
    assert kinds(run_check(recs, archive=doubled)) == {"applied-twice"}
    lost = archive[:3] + archive[4:]
    found = run_check(recs, archive=lost)
    assert kinds(found) == {"applied-twice"}
    assert any("not archived" in v.message for v in found)
    wrong = [*archive[:3], replace(archive[3], event_type="TaskFailed"), *archive[4:]]
    assert any("differ" in v.message for v in run_check(recs, archive=wrong))
    beyond = [*archive, ArchiveRow(0, len(recs) + 5, "TaskStarted", IID, 1)]
    assert run_check(recs, archive=beyond) == []  # past the end of what was read: ignored


def test_the_run_journal_catches_an_attempt_run_twice_or_never_dispatched() -> None:
    recs = records(*CLEAN)

    twice = run_check(recs, runs=(*CLEAN_RUNS, Run(IID, "a", 1, "w1", "42")))
    assert [(v.invariant, v.subject) for v in twice] == [("ran-twice", f"{IID} a#1")]
    stray = run_check(recs, runs=(*CLEAN_RUNS, Run(IID, "b", 3, "w1")))
    assert [(v.invariant, v.subject) for v in stray] == [("ran-undispatched", f"{IID} b#3")]
    elsewhere = run_check(recs, runs=(Run(IID, "a", 1, "w2"),))
    assert kinds(elsewhere) == {"ran-undispatched"}


def test_bad_input_must_end_in_the_dead_letter_topic_or_as_a_rejection() -> None:
    rejected = CommandRejected(
        instance_id="ghost",
        command_id="bad-1",
        command_type="StopWorkflow",
        reason=Reason.NOT_FOUND,
        message="no",
        at=NOW,
        epoch=1,
    )
    recs = records(*CLEAN, rejected)
    garbage = BadInput("garbage-command", "t.commands", b"\x00junk")
    refused = BadInput(
        "unknown-instance-command", "t.commands", b"cmd", "bad-1", frozenset({"NOT_FOUND"})
    )
    dead = DeadLetter("t.commands", "1", "7", b"\x00junk", "not Avro")

    assert run_check(recs, bad=(garbage, refused), dead=(dead,)) == []
    nowhere = run_check(recs, bad=(garbage, refused), dead=())
    assert [v.subject for v in nowhere] == ["garbage-command on t.commands"]
    wrong_reason = replace(refused, reasons=frozenset({"STALE_ATTEMPT"}))
    assert kinds(run_check(recs, bad=(garbage, wrong_reason), dead=(dead,))) == {"bad-input"}
    stranger = DeadLetter("t.events", "0", "3", b"a real event", "cannot apply")
    found = run_check(recs, bad=(garbage, refused), dead=(dead, stranger))
    assert [v.subject for v in found] == ["dead-letter topic"]


def test_failover_times_from_kill_to_takeover_and_to_next_progress() -> None:
    events = (
        takeover(1, "host-a-100-aaaaaa", 0),
        replace(started(WF, later(1)), epoch=1),
        replace(dispatched("a", at=later(1)), epoch=1),
        takeover(2, "host-b-200-bbbbbb", 14),  # the kill was at 10 s
        replace(running("a", at=later(15)), epoch=2),
        replace(succeeded("a", at=later(16)), epoch=2),
    )
    log = EventLog(records(*events))
    kill = FaultRecord("master", "master-1", "SIGKILL", later(10), pid=100)
    worker_kill = FaultRecord("worker", "w1", "SIGKILL", later(12))

    timings = {t.label: t for t in failover_times(log, [kill, worker_kill])}

    assert timings["master SIGKILL -> PartitionTakenOver"].samples == [4.0]
    assert timings["master SIGKILL -> next progress of an affected instance"].samples == [5.0]
    assert timings["worker SIGKILL -> next progress of an affected instance"].samples == [3.0]
    assert owner_pid("my-host-1234-abcdef") == 1234


def test_the_fault_plan_is_a_function_of_the_seed() -> None:
    a = plan_faults(7, 60, 4.0)
    assert a == plan_faults(7, 60, 4.0)
    assert a != plan_faults(8, 60, 4.0)
    assert all(2.0 <= f.offset_s < 60 for f in a)
    assert not [f for f in plan_faults(7, 60, 4.0, postgres=False) if f.role == "postgres"]
