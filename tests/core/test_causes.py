"""Every event names its cause: the command it was decided for, or the tick.

The cause is what makes a redelivered command a no-op (`applied` holds it after the fold),
so a decision that names a wrong cause on any one event is refused, or decided twice, when
the command comes again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from streams.core.commands import Command
from streams.core.decide import decide
from streams.core.enums import FailureStrategy, Outcome
from streams.core.events import (
    CommandRejected,
    InstanceEvent,
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskKilled,
    TaskKillRequested,
    TaskStarted,
    TaskSucceeded,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowPauseRequested,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowStopped,
    WorkflowStopRequested,
    WorkflowSucceeded,
)
from streams.core.ids import tick_id
from streams.core.instance import InstanceState
from streams.core.placement import NO_WORKERS
from streams.core.tick import tick
from tests.core.builders import (
    IID,
    W1,
    applied,
    chain,
    dag,
    empty,
    later,
    pause,
    report_failed,
    report_finished,
    report_started,
    resume,
    start,
    stop,
    through,
    types,
    workflow,
)

END = FailureStrategy.END


@dataclass(frozen=True)
class Case:
    name: str
    given: Callable[[], InstanceState]
    when: Command
    then: list[type]


def _end_with_a_kill_requested() -> InstanceState:
    """Strategy END after a's final failure: b's kill is already requested."""
    return through(empty(), start(dag(END, a=(), b=())), report_started("b"), report_failed("a"))


CASES = [
    Case("start", empty, start(chain("a")), [WorkflowStarted, TaskDispatched]),
    Case("start-empty", empty, start(workflow()), [WorkflowStarted, WorkflowSucceeded]),
    Case(
        "started",
        lambda: through(empty(), start(chain("a"))),
        report_started("a"),
        [TaskStarted],
    ),
    Case(
        "succeeded-next",
        lambda: through(empty(), start(chain("a", "b"))),
        report_finished("a"),
        [TaskSucceeded, TaskDispatched],
    ),
    Case(
        "succeeded-last",
        lambda: through(empty(), start(chain("a"))),
        report_finished("a"),
        [TaskSucceeded, WorkflowSucceeded],
    ),
    Case(
        "failed-last",
        lambda: through(empty(), start(chain("a"))),
        report_failed("a"),
        [TaskFailed, WorkflowFailed],
    ),
    Case(
        "failed-under-end",
        lambda: through(empty(), start(dag(END, a=(), b=())), report_started("b")),
        report_failed("a"),
        [TaskFailed, TaskKillRequested],
    ),
    Case(
        "killed-under-end",
        _end_with_a_kill_requested,
        report_finished("b", outcome=Outcome.KILLED),
        [TaskKilled, WorkflowFailed],
    ),
    Case(
        "pause-running",
        lambda: through(empty(), start(chain("a"))),
        pause(),
        [WorkflowPauseRequested],
    ),
    Case(
        "paused",
        lambda: through(empty(), start(chain("a", "b")), pause()),
        report_finished("a"),
        [TaskSucceeded, WorkflowPaused],
    ),
    Case(
        "stop-running",
        lambda: through(empty(), start(chain("a"))),
        stop(),
        [WorkflowStopRequested, TaskKillRequested],
    ),
    Case(
        "stop-idle",
        lambda: through(empty(), start(chain("a")), workers=NO_WORKERS),
        stop(),
        [WorkflowStopRequested, WorkflowStopped],
    ),
    Case(
        "stop-under-end-kills-already-asked",
        _end_with_a_kill_requested,
        stop(),
        [WorkflowStopRequested],
    ),
    Case(
        "resume",
        lambda: through(empty(), start(chain("a")), report_failed("a")),
        resume(),
        [WorkflowResumed, TaskDispatched],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_event_a_command_causes_names_it_and_is_dated_at_the_decision(case: Case) -> None:
    state = case.given()

    then = decide(state, case.when, later(1), W1)

    assert types(then) == case.then
    assert [e.cause for e in then if not isinstance(e, CommandRejected)] == [
        case.when.command_id
    ] * len(then)
    assert [e.at for e in then] == [later(1)] * len(then)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_command_redelivered_after_its_events_is_ignored_not_refused(case: Case) -> None:
    state = applied(case.given(), decide(case.given(), case.when, later(1), W1))

    assert decide(state, case.when, later(2), W1) == []


def test_every_event_a_tick_causes_names_the_tick() -> None:
    ack = timedelta(seconds=30)
    state = through(empty(), start(dag(a=(), b=("a",), c=())), workers=NO_WORKERS)
    state = applied(state, tick(state, later(1), W1))  # a and c dispatched by the tick
    state = through(state, report_finished("c"), now=later(2))

    then: list[InstanceEvent] = tick(state, later(31), W1, ack)  # a never acknowledged

    assert types(then) == [TaskFailedOver, TaskDispatched]
    assert {e.cause for e in then} == {tick_id(IID, later(31).isoformat())}
