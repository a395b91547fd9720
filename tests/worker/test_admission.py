"""Which dispatch records a worker acts on: epoch fencing per instance partition, duplicates,
and assignments made before the process started."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from streams.core.enums import TaskType
from streams.core.worker_messages import KillTask, TaskAssignment
from streams.kafka.partitioning import partition_for
from streams.worker.admission import Admission, key_of

STARTED = datetime(2024, 1, 1, tzinfo=UTC)
PARTITIONS = 4


def assignment(instance_id: str = "i-1", attempt: int = 1, epoch: int = 1) -> TaskAssignment:
    return TaskAssignment(
        instance_id=instance_id, task_code="t", attempt=attempt, worker_id="w-1",
        type=TaskType.SHELL, command="true", epoch=epoch, at=STARTED + timedelta(seconds=1),
    )  # fmt: skip


def same_partition_as(instance_id: str) -> str:
    p = partition_for(instance_id, PARTITIONS)
    return next(
        c
        for n in range(1000)
        if partition_for(c := f"other-{n}", PARTITIONS) == p and c != instance_id
    )


def test_a_record_below_an_epoch_seen_for_its_partition_is_fenced() -> None:
    admission = Admission(STARTED, PARTITIONS)
    neighbour = same_partition_as("i-1")

    assert not admission.fenced(assignment("i-1", epoch=2))
    assert admission.fenced(assignment(neighbour, epoch=1))  # same partition, older owner
    assert not admission.fenced(assignment(neighbour, epoch=2))
    assert not admission.fenced(assignment(neighbour, epoch=3))
    assert admission.fenced(assignment("i-1", epoch=2))  # the newer owner is 3 now


def test_epochs_of_other_partitions_do_not_fence() -> None:
    admission = Admission(STARTED, PARTITIONS)
    other = next(
        f"x-{n}" for n in range(1000)
        if partition_for(f"x-{n}", PARTITIONS) != partition_for("i-1", PARTITIONS)
    )  # fmt: skip

    assert not admission.fenced(assignment("i-1", epoch=5))
    assert not admission.fenced(assignment(other, epoch=1))


def test_a_kill_is_fenced_like_an_assignment() -> None:
    admission = Admission(STARTED, PARTITIONS)
    admission.fenced(assignment(epoch=2))
    kill = KillTask(
        instance_id="i-1", task_code="t", attempt=1, worker_id="w-1", epoch=1, at=STARTED
    )

    assert admission.fenced(kill)


def test_an_attempt_is_seen_once_remembered_and_the_oldest_forgotten_past_the_limit() -> None:
    admission = Admission(STARTED, PARTITIONS, limit=2)
    first, second, third = (key_of(assignment(attempt=n)) for n in (1, 2, 3))

    assert not admission.seen(first)
    admission.remember(first)
    admission.remember(second)
    assert admission.seen(first) and admission.seen(second)
    admission.remember(third)
    assert not admission.seen(first)
    assert admission.seen(second) and admission.seen(third)


def test_an_assignment_made_before_the_process_started_is_not_run_here() -> None:
    admission = Admission(STARTED, PARTITIONS)

    assert admission.before_start(replace(assignment(), at=STARTED - timedelta(microseconds=1)))
    assert not admission.before_start(replace(assignment(), at=STARTED))
