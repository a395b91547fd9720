"""A decision is staged in full before anything is sent (streams/master/decisions.py): each
event stamped with the owner epoch and folded, the dispatch records derived, the next
deadline and slot waits asked of the result; whatever the core raises on the way surfaces
before any side effect."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from streams.core.decide import decide
from streams.core.events import TaskDispatched, TaskFailedOver, WorkflowStarted
from streams.core.evolve import fold
from streams.core.tick import tick
from streams.core.worker_messages import KillTask, TaskAssignment
from streams.master.decisions import stage
from tests.core.builders import IID, NOW, W1, chain, empty, given, later, start, started

ACK = timedelta(seconds=60)


def test_events_are_stamped_folded_and_followed_to_their_dispatch_records() -> None:
    events = decide(empty(), start(chain("a", "b")), NOW, W1)

    d = stage(empty(), events, epoch=7, now=NOW, ack_timeout=ACK)

    assert [type(s.event) for s in d.steps] == [WorkflowStarted, TaskDispatched]
    assert {s.event.epoch for s in d.steps} == {7}
    assert d.after == fold([s.event for s in d.steps], IID)
    assert d.steps[0].before == empty()
    assert d.steps[0].dispatch is None
    record = d.steps[1].dispatch
    assert isinstance(record, TaskAssignment)
    assert (record.task_code, record.attempt, record.worker_id, record.epoch) == ("a", 1, "w1", 7)
    assert d.due == NOW + ACK  # the acknowledgement deadline of the dispatch
    assert d.waits == frozenset()


def test_a_failed_over_attempt_gets_a_kill_record() -> None:
    state = fold([started(chain("a")), *decide_dispatch()], IID)

    d = stage(state, tick(state, later(61), W1, ACK), epoch=1, now=later(61), ack_timeout=ACK)

    over = [s for s in d.steps if isinstance(s.event, TaskFailedOver)]
    assert len(over) == 1
    assert isinstance(over[0].dispatch, KillTask)
    assert over[0].before.tasks["a"].attempt == 1


def test_no_events_still_answer_when_the_instance_next_needs_a_tick() -> None:
    state = given(started(chain("a")))

    d = stage(state, [], epoch=1, now=NOW, ack_timeout=ACK)

    assert d.steps == ()
    assert d.after is state
    assert d.waits == frozenset({"default"})  # ready, no worker placed it yet


def test_an_event_the_core_cannot_follow_raises_before_anything_is_applied() -> None:
    state = given(started(chain("a")))
    ghost = TaskDispatched(
        instance_id=IID, task_code="nope", attempt=1, worker_id="w1",
        worker_group="default", cause="c", at=NOW,
    )  # fmt: skip
    with pytest.raises(KeyError):
        stage(state, [ghost], epoch=1, now=NOW, ack_timeout=ACK)


def decide_dispatch() -> list[TaskDispatched]:
    state = given(started(chain("a")))
    return [e for e in tick(state, NOW, W1, ACK) if isinstance(e, TaskDispatched)]


def test_the_assignments_of_a_dry_run_ask_the_worker_to_run_nothing() -> None:
    for dry_run in (True, False):
        command = replace(start(chain("a")), dry_run=dry_run)
        events = decide(empty(), command, NOW, W1)

        decision = stage(empty(), events, epoch=1, now=NOW, ack_timeout=None)

        [record] = [s.dispatch for s in decision.steps if s.dispatch is not None]
        assert isinstance(record, TaskAssignment)
        assert record.dry_run is dry_run
