"""The master's deadline wheel over the core's partition fold (tests/core/test_partition.py)."""

from __future__ import annotations

from datetime import timedelta

from streams.core.partition import PartitionLog
from streams.master.partitions import PartitionState
from tests.core.builders import IID, NOW, chain, dispatched, given, later, started

ACK = timedelta(seconds=30)


def test_the_master_state_is_the_core_fold() -> None:
    assert isinstance(PartitionState(0), PartitionLog)


def test_an_armed_instance_is_due_once_at_its_deadline() -> None:
    part = PartitionState(0, ack_timeout=ACK)
    state = given(started(chain("a")), dispatched("a", at=NOW))

    part.arm(state, NOW)
    part.arm(state, NOW)

    assert part.due(NOW + ACK - timedelta(seconds=1)) == []
    assert part.due(NOW + ACK) == [IID]
    assert part.due(NOW + ACK) == []


def test_arming_never_brings_a_tick_before_not_before() -> None:
    part = PartitionState(0, ack_timeout=ACK)
    state = given(started(chain("a")), dispatched("a", at=NOW))

    part.arm(state, NOW, not_before=later(60))

    assert part.due(NOW + ACK) == []
    assert part.due(later(60)) == [IID]


def test_an_instance_with_nothing_due_is_not_armed() -> None:
    part = PartitionState(0)  # no acknowledgement deadline

    part.arm(given(started(chain("a")), dispatched("a")), NOW)

    assert part.due(later(3600)) == []
