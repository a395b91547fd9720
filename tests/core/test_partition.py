"""Folding a partition's log: the owner epoch fences a master that lost the partition."""

from __future__ import annotations

from dataclasses import replace

from streams.core.enums import TaskState
from streams.core.events import PartitionTakenOver, WorkerLost
from streams.core.partition import PartitionLog, is_fenced
from tests.core.builders import IID, NOW, chain, dispatched, later, running, started, succeeded


def takeover(epoch: int, owner: str = "m2") -> PartitionTakenOver:
    return PartitionTakenOver(partition=0, owner=owner, epoch=epoch, events_offset=0, at=NOW)


def lost(worker_id: str = "w1", epoch: int = 0) -> WorkerLost:
    return WorkerLost(worker_id=worker_id, worker_group="default", incarnation=NOW,
                      last_heartbeat_at=NOW, partition=0, at=NOW, epoch=epoch)  # fmt: skip


def test_an_event_below_the_partition_epoch_is_fenced_one_at_or_above_is_not() -> None:
    event = replace(running("a"), epoch=1)

    assert is_fenced(2, event)
    assert not is_fenced(1, event)
    assert not is_fenced(0, event)


def test_a_takeover_is_never_fenced_whatever_its_epoch() -> None:
    assert not is_fenced(5, takeover(1))


def test_a_worker_lost_of_an_older_epoch_is_fenced_by_the_rule() -> None:
    assert is_fenced(2, lost(epoch=1))


def test_events_of_an_older_epoch_after_a_takeover_are_fenced() -> None:
    part = PartitionLog(0)
    for e in (takeover(1, "m1"), replace(started(chain("a")), epoch=1),
              replace(dispatched("a"), epoch=1), takeover(2, "m2"),
              replace(running("a"), epoch=1),  # the old owner woke up and kept writing
              replace(running("a"), epoch=2)):  # fmt: skip
        part.fold(e)

    assert (part.epoch, part.owner, part.fenced) == (2, "m2", 1)
    assert part.get(IID).tasks["a"].state is TaskState.RUNNING_EXECUTION


def test_fold_says_which_events_counted() -> None:
    part = PartitionLog(0)
    log = [takeover(2), replace(started(chain("a")), epoch=1),
           replace(started(chain("a")), epoch=2), lost(epoch=1)]  # fmt: skip

    counted = [part.fold(e) for e in log]

    assert counted == [True, False, True, True]
    assert part.fenced == 1


def test_a_fenced_event_changes_no_instance() -> None:
    part = PartitionLog(0)
    part.fold(takeover(3))

    part.fold(replace(started(chain("a")), epoch=2))

    assert part.instances == {}
    assert not part.get(IID).exists


def test_events_written_before_a_takeover_still_count() -> None:
    part = PartitionLog(0)
    for e in (replace(started(chain("a")), epoch=1), replace(dispatched("a"), epoch=1),
              replace(running("a"), epoch=1), replace(succeeded("a"), epoch=1),
              takeover(2)):  # fmt: skip
        part.fold(e)

    assert part.fenced == 0
    assert part.get(IID).tasks["a"].state is TaskState.SUCCESS


def test_an_older_takeover_never_lowers_the_epoch() -> None:
    part = PartitionLog(0)

    part.fold(takeover(3, "m3"))
    part.fold(takeover(2, "m2"))

    assert part.epoch == 3


def test_a_lost_worker_is_remembered_per_incarnation_whatever_its_epoch() -> None:
    part = PartitionLog(0)
    part.fold(takeover(2))

    part.fold(lost("w1", epoch=1))
    part.fold(replace(lost("w1"), incarnation=later(1)))

    assert part.lost == {("w1", NOW), ("w1", later(1))}
    assert part.fenced == 0


def test_an_instance_not_in_the_partition_is_an_empty_state() -> None:
    part = PartitionLog(0)

    state = part.get("nobody")

    assert state.instance_id == "nobody"
    assert not state.exists
    assert part.instances == {}


def test_every_fenced_event_is_counted() -> None:
    part = PartitionLog(0)
    part.fold(takeover(3))

    for e in (replace(started(chain("a")), epoch=1), replace(dispatched("a"), epoch=2)):
        part.fold(e)

    assert part.fenced == 2
