"""`evolve`: one evolver per event class, each remembering its cause; folds are plain."""

from __future__ import annotations

import pytest

from streams.core import events as events_module
from streams.core.enums import TaskState, WorkflowState
from streams.core.events import (
    INSTANCE_EVENT_TYPES,
    CommandRejected,
    InstanceEvent,
    TaskFailedOver,
    WorkflowResumed,
    WorkflowStopped,
)
from streams.core.evolve import EVOLVERS, evolve, fold
from streams.core.rejections import Reason
from tests.core.builders import (
    IID,
    NOW,
    chain,
    dispatched,
    failed,
    given,
    kill_requested,
    killed,
    later,
    one_of_each,
    running,
    started,
    succeeded,
)


def test_every_instance_event_type_has_an_evolver() -> None:
    missing = [t.__name__ for t in INSTANCE_EVENT_TYPES if t not in EVOLVERS]

    assert missing == []
    assert set(EVOLVERS) == set(INSTANCE_EVENT_TYPES)


def test_instance_event_types_list_every_member_of_the_union() -> None:
    assert set(InstanceEvent.__args__) == set(INSTANCE_EVENT_TYPES)  # type: ignore[attr-defined]


def test_every_event_class_on_the_instance_key_is_listed() -> None:
    classes = {
        obj
        for obj in vars(events_module).values()
        if isinstance(obj, type)
        and obj.__module__ == events_module.__name__
        and "instance_id" in getattr(obj, "__dataclass_fields__", {})
    }

    assert classes == set(INSTANCE_EVENT_TYPES)


def test_fold_of_no_events_needs_an_instance_id() -> None:
    with pytest.raises(ValueError, match="needs an instance_id"):
        fold([])
    assert not fold([], IID).exists


def test_fold_takes_the_instance_id_from_the_first_event() -> None:
    assert fold([started(chain("a"))]).instance_id == IID


def test_evolve_records_every_cause_as_applied() -> None:
    state = given(started(chain("a")))
    rejected = CommandRejected(
        instance_id=IID,
        command_id="cmd-9",
        command_type="PauseWorkflow",
        reason=Reason.INVALID_STATE,
        message="expected RUNNING_EXECUTION, found PAUSE",
        at=NOW,
    )

    after = evolve(state, rejected)

    assert after.applied == {"start-1", "cmd-9"}
    assert after.state is state.state


def test_samples_cover_every_instance_event_type() -> None:
    assert {type(e) for e in one_of_each()} == set(INSTANCE_EVENT_TYPES)


@pytest.mark.parametrize("event", one_of_each(), ids=lambda e: type(e).__name__)
def test_evolve_remembers_the_cause_of_every_event_type(event: InstanceEvent) -> None:
    base = given(started(chain("a")), dispatched("a"))

    after = evolve(base, event)

    assert "cause-x" in after.applied
    assert base.applied <= after.applied


def test_evolve_task_lifecycle_tracks_attempt_tries_and_times() -> None:
    state = given(
        started(chain("a", retries=2)),
        dispatched("a", 1, at=later(1)),
        running("a", 1, at=later(2)),
        failed("a", 1, retry_at=later(10), at=later(3)),
    )
    a = state.tasks["a"]
    assert (a.state, a.attempt, a.tries, a.retry_at, a.ended_at) == (
        TaskState.FAILURE,
        1,
        1,
        later(10),
        later(3),
    )
    assert [t.code for t in state.awaiting_retry()] == ["a"]

    state = given(
        *[started(chain("a", retries=2)), dispatched("a", 1), failed("a", 1, retry_at=NOW)],
        dispatched("a", 2, worker_id="w2", at=later(11)),
        succeeded("a", 2, at=later(12)),
    )

    a = state.tasks["a"]
    assert (a.state, a.attempt, a.tries, a.worker_id) == (TaskState.SUCCESS, 2, 2, "w2")
    assert (a.dispatched_at, a.started_at, a.ended_at, a.retry_at) == (
        later(11),
        None,
        later(12),
        None,
    )


def test_evolve_kill_request_then_kill_ends_the_attempt_without_retry() -> None:
    state = given(started(chain("a")), dispatched("a"), kill_requested("a"))
    assert state.tasks["a"].kill_requested
    assert [t.code for t in state.active()] == ["a"]

    state = evolve(state, killed("a", at=later(1)))

    a = state.tasks["a"]
    assert (a.state, a.retry_at, a.ended_at) == (TaskState.KILL, None, later(1))
    assert state.active() == []


def test_evolve_workflow_started_orders_dispatch_by_priority_then_topology() -> None:
    state = given(started(chain("c", "b", "a")))

    assert state.order == ("c", "b", "a")
    assert state.state is WorkflowState.RUNNING_EXECUTION
    assert set(state.defs) == {"a", "b", "c"}


def test_evolve_never_touches_the_state_it_was_given() -> None:
    before = given(started(chain("a")), dispatched("a"))
    snapshot = (dict(before.tasks), before.applied, before.state)

    evolve(before, succeeded("a"))

    assert (dict(before.tasks), before.applied, before.state) == snapshot


def test_evolve_failed_over_attempt_ends_and_awaits_its_new_attempt_at_once() -> None:
    state = given(started(chain("a")), dispatched("a"), running("a"))
    over = TaskFailedOver(instance_id=IID, task_code="a", attempt=1, worker_id="w1",
                          reason="lost", cause="lost", at=later(5))  # fmt: skip

    a = evolve(state, over).tasks["a"]

    assert (a.state, a.ended_at, a.retry_at) == (TaskState.NEED_FAULT_TOLERANCE, later(5), later(5))


def test_evolve_killed_attempt_awaits_no_retry_whatever_it_awaited() -> None:
    state = given(started(chain("a", retries=1)), dispatched("a"), failed("a", retry_at=later(9)))

    a = evolve(state, killed("a", at=later(1))).tasks["a"]

    assert (a.state, a.retry_at, a.ended_at) == (TaskState.KILL, None, later(1))


def test_evolve_resume_forgets_the_kill_requests_of_the_tasks_it_reruns() -> None:
    state = given(started(chain("a")), dispatched("a"), kill_requested("a"), killed("a"),
                  WorkflowStopped(instance_id=IID, cause="s", at=NOW))  # fmt: skip

    a = evolve(state, WorkflowResumed(instance_id=IID, cause="r", at=later(1))).tasks["a"]

    assert (a.state, a.kill_requested, a.tries, a.retry_at) == (
        TaskState.SUBMITTED_SUCCESS,
        False,
        0,
        later(1),
    )


def test_fold_of_no_events_says_exactly_what_it_needs() -> None:
    with pytest.raises(ValueError, match=r"^fold of no events needs an instance_id$"):
        fold([])
