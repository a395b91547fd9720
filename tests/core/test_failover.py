"""Failing over attempts whose worker is gone: worker lost, restarted, or silent on a dispatch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from streams.core.decide import decide
from streams.core.decide.failover import lost_workers, on_lost_worker, on_worker_lost
from streams.core.enums import TaskState
from streams.core.events import (
    CommandRejected,
    TaskDispatched,
    TaskFailedOver,
    TaskKilled,
    WorkflowStopped,
)
from streams.core.placement import NO_WORKERS
from streams.core.rejections import Reason
from streams.core.tick import next_deadline, tick, waiting_for_slots
from tests.core.builders import (
    NOW,
    applied,
    chain,
    dag,
    dispatched,
    given,
    later,
    report_finished,
    running,
    started,
    stop,
    succeeded,
    through,
    workers,
)

TWO = workers("w1", "w2")
ACK = timedelta(seconds=30)


def test_attempts_on_a_lost_worker_fail_over_to_a_live_one_outside_the_retry_budget() -> None:
    state = given(started(chain("a", retries=0)), dispatched("a", 1, "w1"), running("a", 1))

    then = on_lost_worker(state, "w1", None, "worker w1 lost", "lost", later(5), workers("w2"))

    assert [type(e) for e in then] == [TaskFailedOver, TaskDispatched]
    assert (then[0].attempt, then[0].worker_id) == (1, "w1")
    assert (then[1].attempt, then[1].worker_id) == (2, "w2")
    after = applied(state, then)
    assert after.tasks["a"].tries == 1  # a failover is not a retry


def test_a_restarted_worker_loses_only_attempts_sent_to_its_previous_process() -> None:
    state = given(
        started(chain("a")),
        dispatched("a", 1, "w1", at=NOW),
    )

    untouched = on_lost_worker(state, "w1", NOW, "restarted", "lost", later(1), TWO)
    lost = on_lost_worker(state, "w1", later(0.5), "restarted", "lost", later(1), TWO)

    assert untouched == []
    assert [type(e) for e in lost] == [TaskFailedOver, TaskDispatched]


def test_an_attempt_being_killed_on_a_lost_worker_ends_killed_and_the_stop_completes() -> None:
    stopping = decide(given(started(chain("a")), dispatched("a"), running("a")), stop(), NOW)
    state = applied(given(started(chain("a")), dispatched("a"), running("a")), stopping)

    then = on_lost_worker(state, "w1", None, "worker w1 lost", "lost", later(5), TWO)

    assert [type(e) for e in then] == [TaskKilled, WorkflowStopped]


def test_with_no_live_worker_a_failed_over_task_waits_then_tick_dispatches_it() -> None:
    state = given(started(chain("a")), dispatched("a", 1, "w1"), running("a"))
    waiting = applied(
        state, on_lost_worker(state, "w1", None, "lost", "lost", later(5), NO_WORKERS)
    )

    assert waiting.tasks["a"].state is TaskState.NEED_FAULT_TOLERANCE
    assert tick(waiting, later(6), NO_WORKERS) == []
    assert waiting_for_slots(waiting, later(6)) == {"default"}
    then = tick(waiting, later(7), workers("w2"))
    assert [(type(e), e.attempt) for e in then] == [(TaskDispatched, 2)]


def test_a_dispatch_not_acknowledged_in_time_is_failed_over_by_tick() -> None:
    state = given(started(chain("a")), dispatched("a", 1, "w1", at=NOW))

    assert tick(state, NOW + ACK - timedelta(seconds=1), TWO, ACK) == []
    assert next_deadline(state, ACK) == NOW + ACK
    then = tick(state, NOW + ACK, TWO, ACK)

    assert [type(e) for e in then] == [TaskFailedOver, TaskDispatched]
    assert "not acknowledged within 30s" in then[0].reason


def test_a_late_ack_from_a_failed_over_attempt_is_recorded_and_ignored() -> None:
    state = given(started(chain("a")), dispatched("a", 1, "w1"), running("a"))
    state = applied(state, on_lost_worker(state, "w1", None, "lost", "lost", later(5), TWO))

    then = decide(state, report_finished("a", attempt=1, worker_id="w1"), later(6), TWO)

    assert [type(e) for e in then] == [CommandRejected]
    assert then[0].reason is Reason.STALE_ATTEMPT


@dataclass(frozen=True)
class Verdict:
    worker_id: str
    incarnation: datetime = NOW
    reason: str = "no heartbeat for 12.0s"
    dispatched_before: datetime | None = None


def verdicts(*lost: Verdict) -> dict[str, Verdict]:
    return {v.worker_id: v for v in lost}


def test_only_workers_with_a_verdict_lose_their_attempts() -> None:
    state = given(started(dag(a=(), b=(), c=())), dispatched("a", worker_id="w1"),
                  dispatched("b", worker_id="w2"), dispatched("c", worker_id="w3"))  # fmt: skip
    gone = verdicts(Verdict("w3"), Verdict("w1"))

    assert lost_workers(state, gone.get, later(1)) == [gone["w1"], gone["w3"]]  # attempt order


def test_a_worker_with_several_lost_attempts_is_named_once_and_asked_once() -> None:
    state = given(started(dag(a=(), b=())), dispatched("a", worker_id="w1"),
                  dispatched("b", worker_id="w1"))  # fmt: skip
    asked: list[str] = []

    def verdict_of(worker_id: str) -> Verdict:
        asked.append(worker_id)
        return Verdict(worker_id)

    assert lost_workers(state, verdict_of, later(1)) == [Verdict("w1")]
    assert asked == ["w1"]


def test_a_restarted_worker_is_lost_only_to_instances_with_attempts_sent_before() -> None:
    restarted = verdicts(Verdict("w1", reason="worker restarted", dispatched_before=later(5)))
    before = given(started(chain("a")), dispatched("a", worker_id="w1", at=later(4)))
    at_restart = given(started(chain("a")), dispatched("a", worker_id="w1", at=later(5)))

    assert lost_workers(before, restarted.get, later(6)) == [restarted["w1"]]
    assert lost_workers(at_restart, restarted.get, later(6)) == []


def test_a_restarted_worker_is_lost_when_one_of_its_attempts_was_sent_before() -> None:
    restarted = verdicts(Verdict("w1", dispatched_before=later(5)))
    state = given(started(dag(a=(), b=())), dispatched("a", worker_id="w1", at=later(6)),
                  dispatched("b", worker_id="w1", at=later(4)))  # fmt: skip

    assert lost_workers(state, restarted.get, later(7)) == [restarted["w1"]]


def test_an_attempt_with_no_dispatch_time_counts_as_sent_now() -> None:
    run = replace(given(started(chain("a")), dispatched("a")).tasks["a"], dispatched_at=None)
    state = replace(given(started(chain("a")), dispatched("a")), tasks={"a": run})
    restarted = verdicts(Verdict("w1", dispatched_before=later(5)))

    assert lost_workers(state, restarted.get, later(4)) == [restarted["w1"]]
    assert lost_workers(state, restarted.get, later(5)) == []


def test_finished_attempts_lose_nothing() -> None:
    state = given(started(chain("a", "b")), dispatched("a"), running("a"), succeeded("a"))

    assert lost_workers(state, verdicts(Verdict("w1")).get, later(1)) == []


def test_a_lost_worker_process_names_itself_as_the_cause_and_says_why() -> None:
    state = given(started(chain("a")), dispatched("a", 1, "w1"), running("a"))
    verdict = Verdict("w1", incarnation=later(-60), reason="no heartbeat for 12.0s")

    then = on_worker_lost(state, verdict, later(5), workers("w2"))

    assert [type(e) for e in then] == [TaskFailedOver, TaskDispatched]
    cause = f"worker-lost/w1/{later(-60).isoformat()}"
    assert [e.cause for e in then] == [cause, cause]
    assert then[0].reason == "worker w1 lost: no heartbeat for 12.0s"
    assert (then[1].worker_id, then[1].attempt) == ("w2", 2)


def test_a_restarted_worker_keeps_the_attempts_sent_to_its_new_process() -> None:
    state = given(started(dag(a=(), b=())), dispatched("a", worker_id="w1", at=later(4)),
                  dispatched("b", worker_id="w1", at=later(6)))  # fmt: skip

    then = on_worker_lost(state, Verdict("w1", dispatched_before=later(5)), later(7), TWO)

    assert [(type(e), e.task_code) for e in then] == [(TaskFailedOver, "a"), (TaskDispatched, "a")]


def test_an_attempt_being_killed_on_a_lost_worker_says_why_in_its_output() -> None:
    state = through(given(started(chain("a")), dispatched("a"), running("a")), stop())

    then = on_lost_worker(state, "w1", None, "worker w1 lost: gone", "lost", later(5), TWO)

    killed = then[0]
    assert isinstance(killed, TaskKilled)
    assert (killed.output, killed.at, killed.cause) == (
        "[tideflow] worker w1 lost: gone",
        later(5),
        "lost",
    )


def test_the_new_attempt_after_a_failover_is_dispatched_at_the_decision() -> None:
    state = given(started(chain("a")), dispatched("a", 1, "w1"), running("a"))

    then = on_lost_worker(state, "w1", None, "lost", "lost", later(5), workers("w2"))

    assert [(type(e), e.at) for e in then] == [
        (TaskFailedOver, later(5)),
        (TaskDispatched, later(5)),
    ]


def test_a_restarted_worker_loses_an_attempt_with_no_dispatch_time_sent_before_now() -> None:
    base = given(started(chain("a")), dispatched("a"), running("a"))
    state = replace(base, tasks={"a": replace(base.tasks["a"], dispatched_at=None)})

    kept = on_lost_worker(state, "w1", later(5), "restarted", "lost", later(5), TWO)
    lost = on_lost_worker(state, "w1", later(6), "restarted", "lost", later(5), TWO)

    assert kept == []
    assert [type(e) for e in lost] == [TaskFailedOver, TaskDispatched]
