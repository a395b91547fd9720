"""Folding a partition's log: the owner epoch fences a master that lost the partition."""

from __future__ import annotations

from dataclasses import replace

from streams.core.enums import TaskState
from streams.core.events import PartitionTakenOver, WorkerLost
from streams.master.partitions import PartitionState
from tests.core.builders import IID, NOW, chain, dispatched, running, started, succeeded


def takeover(epoch: int, owner: str = "m2") -> PartitionTakenOver:
    return PartitionTakenOver(partition=0, owner=owner, epoch=epoch, events_offset=0, at=NOW)


def test_events_of_an_older_epoch_after_a_takeover_are_fenced() -> None:
    part = PartitionState(0)
    for e in (takeover(1, "m1"), replace(started(chain("a")), epoch=1),
              replace(dispatched("a"), epoch=1), takeover(2, "m2"),
              replace(running("a"), epoch=1),  # the old owner woke up and kept writing
              replace(running("a"), epoch=2)):  # fmt: skip
        part.fold(e)

    assert (part.epoch, part.owner, part.fenced) == (2, "m2", 1)
    assert part.get(IID).tasks["a"].state is TaskState.RUNNING_EXECUTION


def test_events_written_before_a_takeover_still_count() -> None:
    part = PartitionState(0)
    for e in (replace(started(chain("a")), epoch=1), replace(dispatched("a"), epoch=1),
              replace(running("a"), epoch=1), replace(succeeded("a"), epoch=1),
              takeover(2)):  # fmt: skip
        part.fold(e)

    assert part.fenced == 0
    assert part.get(IID).tasks["a"].state is TaskState.SUCCESS


def test_a_lost_worker_is_remembered_per_incarnation() -> None:
    part = PartitionState(0)
    part.fold(WorkerLost(worker_id="w1", worker_group="default", incarnation=NOW,
                         last_heartbeat_at=NOW, partition=0, at=NOW))  # fmt: skip
    assert ("w1", NOW) in part.lost
